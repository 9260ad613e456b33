"""V-MusProd nets -> ONNX: per stage an encoder graph (run once) and a decoder step graph.

    <stage>.encoder.onnx   melody/accompaniment: source tokens, context, bars -> cross_k_i, cross_v_i
                           chord: video features (B,S,d_video) -> cross_k_i, cross_v_i
    <stage>.decoder.onnx   token, context, memory_bar, past_k_i, past_v_i, cross_k_i, cross_v_i
                           -> type_logits, field_logits, present_k_i, present_v_i
    <stage>.decoder.int8.onnx  the decoder with dynamically quantised int8 weights (MatMul)
    <stage>.decoder.inplace.onnx  the same step over preallocated caches (B,H,capacity,Dh), which
                           ONNX Runtime's GroupQueryAttention (a CPU contrib op) appends to in place:
                           + seqlens_k, total_sequence_length; what the runtime runs on the CPU
                           (runtime/kv_cache.py); .inplace.int8.onnx its int8 variant

i = 0..n_layers-1: every cache is one (B,H,len,Dh) tensor per layer, so a step
neither splits a stacked cache nor joins it again (a step of these small nets
is mostly such small ops). The cross-attention K/V of every layer come out of
the encoder graph once and go into each decoder step unchanged; each step's
present_k_i/present_v_i are the next step's past_k_i/past_v_i. `verify` runs both graphs through ONNX
Runtime against the torch net on real crops (max |delta logit|, greedy agreement).

    python -m cuesmith.exporters.onnx_export --checkpoint out/vmusprod/chord/best.pt --out models/vmusprod
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from cuesmith.engine.nets import NETS, config_from_dict
from cuesmith.engine.nets.transformer import EventTransformer

OPSET = 18
ENCODER_INPUTS = {"chord": ("video",), "melody": ("source", "source_context", "source_bar"),
                  "accompaniment": ("source", "source_context", "source_bar")}
DECODER_HEAD_INPUTS = ("token", "context", "memory_bar")
DECODER_HEAD_OUTPUTS = ("type_logits", "field_logits")
DECODER_FILES = {"decoder": "{stage}.decoder.onnx", "decoder_in_place": "{stage}.decoder.inplace.onnx",
                 "decoder_int8": "{stage}.decoder.int8.onnx", "decoder_int8_in_place": "{stage}.decoder.inplace.int8.onnx"}
IN_PLACE_LENGTHS = ("seqlens_k", "total_sequence_length")  # GroupQueryAttention's names: tokens held, + 1


def layer_names(prefix: str, n_layers: int) -> tuple[str, ...]:
    """prefix_k_0, prefix_v_0, prefix_k_1, ...: one K and one V per layer, interleaved."""
    return tuple(f"{prefix}_{kv}_{i}" for i in range(n_layers) for kv in "kv")


def decoder_input_names(n_layers: int) -> tuple[str, ...]:
    return DECODER_HEAD_INPUTS + layer_names("past", n_layers) + layer_names("cross", n_layers)


def decoder_output_names(n_layers: int) -> tuple[str, ...]:
    return DECODER_HEAD_OUTPUTS + layer_names("present", n_layers)


def _interleaved(keys, values) -> tuple:
    return tuple(t for pair in zip(keys, values) for t in pair)


class TokenEncoderGraph(nn.Module):
    """Melody/accompaniment: source tokens -> cross-attention K/V of every decoder layer."""

    def __init__(self, net: EventTransformer):
        super().__init__()
        self.net = net

    def forward(self, source, source_context, source_bar):
        return per_layer_kv(self.net, self.net.encode(source, source_context, source_bar))


class VideoEncoderGraph(nn.Module):
    """Chord: video features (zeros: no video) -> cross-attention K/V of every decoder layer."""

    def __init__(self, net: EventTransformer):
        super().__init__()
        self.net = net

    def forward(self, video):
        return per_layer_kv(self.net, self.net.encode_video(video))


def per_layer_kv(net: EventTransformer, memory: torch.Tensor) -> tuple:
    pairs = [block.cross.memory_kv(memory) for block in net.decoder]
    return _interleaved([k for k, _ in pairs], [v for _, v in pairs])


class DecoderStepGraph(nn.Module):
    """token, context, memory_bar, then past K/V and cross K/V per layer (`decoder_input_names`)."""

    def __init__(self, net: EventTransformer):
        super().__init__()
        self.net = net

    def forward(self, token, context, memory_bar, *caches):
        n = self.net.config.n_layers
        past, cross = caches[:2 * n], caches[2 * n:]
        type_logits, field_logits, keys, values = self.net.step(
            token, context, list(past[0::2]), list(past[1::2]), list(cross[0::2]), list(cross[1::2]), memory_bar)
        return (type_logits, field_logits) + _interleaved(keys, values)


class InPlaceStepGraph(nn.Module):
    """The decoder step over preallocated caches (`EventTransformer.step_in_place`): token, context,
    memory_bar, seqlens_k, total_sequence_length, then the caches and cross K/V per layer
    (`in_place_input_names`); present_k_i is past_k_i with the token's K written in (the same buffer
    when the host binds it as both)."""

    def __init__(self, net: EventTransformer):
        super().__init__()
        self.net = net

    def forward(self, token, context, memory_bar, seqlens_k, total_length, *caches):
        n = self.net.config.n_layers
        past, cross = caches[:2 * n], caches[2 * n:]
        type_logits, field_logits, keys, values = self.net.step_in_place(
            token, context, list(past[0::2]), list(past[1::2]), seqlens_k, total_length, list(cross[0::2]),
            list(cross[1::2]), memory_bar)
        return (type_logits, field_logits) + _interleaved(keys, values)


def in_place_input_names(n_layers: int) -> tuple[str, ...]:
    return DECODER_HEAD_INPUTS + IN_PLACE_LENGTHS + layer_names("past", n_layers) + layer_names("cross", n_layers)


def load_checkpoint(path: Path) -> tuple[EventTransformer, dict]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    config = config_from_dict(state["stage"], state["net_config"])
    net = NETS[state["stage"]][1](config)
    net.load_state_dict(state["model"])
    return net.eval(), state


def example_encoder_inputs(net: EventTransformer, batch: int = 2, length: int = 7) -> tuple[torch.Tensor, ...]:
    c = net.config
    if not c.has_token_encoder:
        return (torch.zeros(batch, length, c.d_video),)
    source = torch.ones(batch, length, len(c.field_sizes), dtype=torch.long)
    context = torch.zeros(batch, length, len(c.context_sizes), dtype=torch.long)
    bars = torch.zeros(batch, length, dtype=torch.long)
    return source, context, bars


def example_decoder_inputs(net: EventTransformer, batch: int = 2, past: int = 3, memory: int = 7):
    c = net.config
    cache = (batch, c.n_heads, past, c.head_dim)
    cross = (batch, c.n_heads, memory, c.head_dim)
    return ((torch.ones(batch, 1, len(c.field_sizes), dtype=torch.long),
             torch.zeros(batch, 1, len(c.context_sizes), dtype=torch.long),
             torch.zeros(batch, memory, dtype=torch.long))
            + tuple(torch.randn(cache) for _ in range(2 * c.n_layers))
            + tuple(torch.randn(cross) for _ in range(2 * c.n_layers)))


def export_encoder(net: EventTransformer, path: Path) -> Path:
    names = ENCODER_INPUTS[net.config.stage]
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("source_len")
    dynamic = {name: {0: batch, 1: seq} for name in names}
    graph = TokenEncoderGraph(net) if net.config.has_token_encoder else VideoEncoderGraph(net)
    _export(graph, example_encoder_inputs(net), path, names, layer_names("cross", net.config.n_layers), dynamic)
    return path


def export_decoder(net: EventTransformer, path: Path) -> Path:
    batch, past, memory = torch.export.Dim("batch"), torch.export.Dim("past_len"), torch.export.Dim("memory_len")
    n = net.config.n_layers
    dynamic = {"token": {0: batch}, "context": {0: batch}, "memory_bar": {0: batch, 1: memory}}
    dynamic.update({name: {0: batch, 2: past} for name in layer_names("past", n)})
    dynamic.update({name: {0: batch, 2: memory} for name in layer_names("cross", n)})
    _export(DecoderStepGraph(net), example_decoder_inputs(net), path, decoder_input_names(n),
            decoder_output_names(n), dynamic)
    return path


def export_decoder_in_place(net: EventTransformer, path: Path) -> Path:
    """The step graph whose self-attention appends to preallocated caches (GroupQueryAttention, a CPU
    contrib op of ONNX Runtime; the TorchScript exporter, which takes the op's symbolic)."""
    from cuesmith.engine.files import atomic_path

    n = net.config.n_layers
    token, context, memory_bar, *caches = example_decoder_inputs(net, past=9)
    held = torch.tensor([4, 6], dtype=torch.int32)
    inputs = (token, context, memory_bar, held, held.max().reshape(()) + 1, *caches)
    axes = {"token": {0: "batch"}, "context": {0: "batch"}, "memory_bar": {0: "batch", 1: "memory_len"},
            "seqlens_k": {0: "batch"}, "type_logits": {0: "batch"}, "field_logits": {0: "batch"}}
    axes.update({name: {0: "batch", 2: "capacity"} for name in layer_names("past", n) + layer_names("present", n)})
    axes.update({name: {0: "batch", 2: "memory_len"} for name in layer_names("cross", n)})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, torch.no_grad():
        torch.onnx.export(InPlaceStepGraph(net).eval(), inputs, str(tmp), input_names=list(in_place_input_names(n)),
                          output_names=list(decoder_output_names(n)), dynamic_axes=axes, opset_version=OPSET,
                          custom_opsets={"com.microsoft": 1}, dynamo=False)
    return path


def _export(module: nn.Module, inputs: tuple, path: Path, input_names, output_names, dynamic: dict) -> None:
    # batch >= 2 in the examples: dynamo fixes a dimension that is 1 in the example
    path.parent.mkdir(parents=True, exist_ok=True)
    program = torch.onnx.export(module.eval(), inputs, dynamo=True, opset_version=OPSET,
                                input_names=list(input_names), output_names=list(output_names),
                                dynamic_shapes=_dynamic_shapes(module, input_names, dynamic), optimize=True,
                                external_data=False)
    program.save(str(path))


def _dynamic_shapes(module: nn.Module, input_names, dynamic: dict):
    """torch.export wants the shapes in the forward's signature: the cache inputs sit in *caches."""
    shapes = [dynamic.get(n) for n in input_names]
    if isinstance(module, DecoderStepGraph):
        head = len(DECODER_HEAD_INPUTS)
        return tuple(shapes[:head]) + (tuple(shapes[head:]),)
    return tuple(shapes)


def export_traced(graphs: dict, out: Path, files: dict[str, str]) -> dict[str, Path]:
    """Each role's (module, example inputs, input names, output names, dynamic axes) written to
    out/files[role] atomically with the TorchScript exporter (the codec's and MTM's graphs, which the
    dynamo exporter does not take as they are); role -> path."""
    from cuesmith.engine.files import atomic_path

    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, (graph, inputs, names_in, names_out, axes) in graphs.items():
        path = out / files[role]
        with atomic_path(path) as tmp, torch.no_grad():
            torch.onnx.export(graph, inputs, str(tmp), input_names=names_in, output_names=names_out,
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        paths[role] = path
    return paths


def quantize_int8(source: Path, target: Path, op_types: tuple[str, ...] = ("MatMul",), per_channel: bool = False) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # the exporter's intermediate shape annotations can carry example sizes that
    # the quantiser's shape inference then rejects; the graph does not need them
    model = onnx.load(str(source))
    del model.graph.value_info[:]
    stripped = target.with_name(target.name + ".fp32.tmp")
    onnx.save(model, str(stripped))
    try:
        # DefaultTensorType: ONNX's shape inference gives contrib ops' outputs (GroupQueryAttention) no type
        quantize_dynamic(str(stripped), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=list(op_types),
                         per_channel=per_channel, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        stripped.unlink(missing_ok=True)
    return target


def export_decoders(net: EventTransformer, out: Path, int8: bool = True) -> dict[str, Path]:
    """The stage's decoder step graphs, role -> path (`DECODER_FILES`): the portable one, which concatenates
    its caches (any provider), the in-place one (CPU), and their int8 variants."""
    stage = net.config.stage
    paths = {role: out / name.format(stage=stage) for role, name in DECODER_FILES.items()}
    export_decoder(net, paths["decoder"])
    export_decoder_in_place(net, paths["decoder_in_place"])
    if not int8:
        return {role: paths[role] for role in ("decoder", "decoder_in_place")}
    for role in ("decoder", "decoder_in_place"):
        quantize_int8(paths[role], paths[role.replace("decoder", "decoder_int8")])
    return paths


def export_stage(checkpoint: Path, out: Path, int8: bool = True) -> dict:
    """Export one checkpoint's encoder and decoders; returns the stage's manifest entry."""
    net, state = load_checkpoint(checkpoint)
    stage = state["stage"]
    files = {"encoder": export_encoder(net, out / f"{stage}.encoder.onnx"), **export_decoders(net, out, int8)}
    return {"stage": stage, "files": {k: p.name for k, p in files.items()},
            "net_config": state["net_config"], "epochs": state["epoch"], "steps": state["step"],
            "best_valid_nll": state["best_valid"], "history": state["history"],
            "train_config": state["train_config"]}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="export V-MusProd checkpoints to ONNX and verify them")
    parser.add_argument("--checkpoint", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-int8", action="store_true")
    args = parser.parse_args(argv)
    from .verify import verify_stage

    for checkpoint in args.checkpoint:
        entry = export_stage(checkpoint, args.out, int8=not args.no_int8)
        report = verify_stage(checkpoint, args.out)
        print(json.dumps({"stage": entry["stage"], **report}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
