"""VidMuse -> ONNX: three graphs, so the decode step never sees the video tokens.

    vidmuse.video.onnx      local (B,Ns,50,F), global (B,Nl,50,F) -> tokens (B,Ns*50,d_model)
                            visual encoder + LSTV, once per window
    vidmuse.cross.onnx      tokens -> cross_k_<i> (B,H,hd,S), cross_v_<i> (B,H,S,hd) for each layer i:
                            the cross-attention K/V, once per window (the reference recomputes them
                            at every step); K transposed, as the step multiplies by it
    vidmuse.step.onnx       codes (B,K,1), position (B,), past_k_<i>, past_v_<i> (B,H,P,hd),
                            cross_k_<i>, cross_v_<i> -> logits (B,K,V), present_k_<i>, present_v_<i>
                            (one tensor per layer: slicing a stacked one copied it at every step)
    vidmuse.step.int8.onnx  the step with dynamically quantised int8 MatMul weights

`verify` runs the graphs through ONNX Runtime step by step against the torch net's teacher-forced
logits on random codes and video statistics (max |delta logit|, greedy agreement).

    python -m cuesmith.exporters.vidmuse_export --checkpoint out/vidmuse/last.pt --out models/vidmuse
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from cuesmith.engine.files import write_json_atomic
from cuesmith.engine.pipelines.vidmuse.decode import run_step
from cuesmith.engine.nets.vidmuse import VidMuse, VidMuseConfig
from cuesmith.engine.runtime.store import sha256

from .onnx_export import OPSET, quantize_int8

FAMILY = "vidmuse"
VIDEO_INPUTS, VIDEO_OUTPUTS = ("local", "global"), ("tokens",)


def per_layer(n_layers: int, *prefixes: str) -> list[str]:
    return [f"{prefix}_{i}" for prefix in prefixes for i in range(n_layers)]


def step_inputs(n_layers: int) -> list[str]:
    return ["codes", "position"] + per_layer(n_layers, "past_k", "past_v", "cross_k", "cross_v")
FILES = {"video": "vidmuse.video.onnx", "cross": "vidmuse.cross.onnx", "step": "vidmuse.step.onnx",
         "step_int8": "vidmuse.step.int8.onnx"}
DEFAULT_CODEC = {"model": "codec"}  # the issue-15 codec from the model store (engine/codec/runtime.py)


class VideoGraph(nn.Module):
    def __init__(self, net: VidMuse):
        super().__init__()
        self.net = net

    def forward(self, local, globl):
        return self.net.video_tokens(local, globl)


class CrossGraph(nn.Module):
    def __init__(self, net: VidMuse):
        super().__init__()
        self.net = net

    def forward(self, tokens):
        cross_k, cross_v = self.net.cross_kv(tokens)
        return *cross_k, *cross_v


class StepGraph(nn.Module):
    def __init__(self, net: VidMuse):
        super().__init__()
        self.net = net

    def forward(self, codes, position, past_k: list, past_v: list, cross_k: list, cross_v: list):
        logits, present_k, present_v = self.net.step(codes, position, past_k, past_v, cross_k, cross_v)
        return logits, *present_k, *present_v


def load_checkpoint(path: Path, ema: bool = True) -> tuple[VidMuse, dict]:
    """The net of a training checkpoint (its EMA weights when it has them)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    net = VidMuse(VidMuseConfig.from_dict(state["net_config"]))
    net.load_state_dict(state["ema"] if ema and state.get("ema") else state["model"])
    return net.eval(), state


def _export(module: nn.Module, inputs: tuple, path: Path, names, outputs, dynamic: tuple) -> Path:
    # batch >= 2 and no dimension of 1 in the examples: dynamo fixes a dimension that is 1
    path.parent.mkdir(parents=True, exist_ok=True)
    program = torch.onnx.export(module.eval(), inputs, dynamo=True, opset_version=OPSET, input_names=list(names),
                                output_names=list(outputs), dynamic_shapes=dynamic, optimize=True,
                                external_data=False)
    program.save(str(path))
    return path


def export_graphs(net: VidMuse, out: Path, int8: bool = True) -> dict[str, str]:
    """Write the graphs into `out`; returns role -> file name."""
    c, batch = net.config, torch.export.Dim("batch")
    frames, stream = torch.export.Dim("local_frames"), torch.export.Dim("global_frames")
    seq = torch.export.Dim("video_tokens")
    past = torch.export.Dim("past")
    local = torch.randn(2, 3, c.tokens_per_frame, c.visual_dim)
    globl = torch.randn(2, 5, c.tokens_per_frame, c.visual_dim)
    with torch.no_grad():
        _export(VideoGraph(net), (local, globl), out / FILES["video"], VIDEO_INPUTS, VIDEO_OUTPUTS,
                ({0: batch, 1: frames}, {0: batch, 1: stream}))
        tokens = net.video_tokens(local, globl)
        n = c.n_layers
        _export(CrossGraph(net), (tokens,), out / FILES["cross"], ["tokens"], per_layer(n, "cross_k", "cross_v"),
                ({0: batch, 1: seq},))
        cross_k, cross_v = net.cross_kv(tokens)
        caches = [[torch.randn(2, c.n_heads, 3, c.head_dim) for _ in range(n)] for _ in range(2)]
        codes = torch.full((2, c.codebooks, 1), 5, dtype=torch.long)
        example = (codes, torch.tensor([3, 3]), *caches, cross_k, cross_v)
        cache_dims, keys_dims, values_dims = {0: batch, 2: past}, {0: batch, 3: seq}, {0: batch, 2: seq}
        _export(StepGraph(net), example, out / FILES["step"], step_inputs(n),
                ["logits"] + per_layer(n, "present_k", "present_v"),
                ({0: batch}, {0: batch}, [cache_dims] * n, [cache_dims] * n, [keys_dims] * n, [values_dims] * n))
    files = {role: FILES[role] for role in ("video", "cross", "step")}
    if int8:
        files["step_int8"] = quantize_int8(out / FILES["step"], out / FILES["step_int8"]).name
    return files


def verify(net: VidMuse, out: Path, files: dict, steps: int = 12, seed: int = 0) -> dict:
    """ORT (video -> cross -> step by step, KV cache fed back) against the torch net, teacher-forced on
    random codes: max |delta logit| and the share of argmax agreement, per step graph."""
    from cuesmith.engine.runtime.sessions import open_session

    c = net.config
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, c.codebook_size + 1, (2, c.codebooks, steps), generator=g)
    local = torch.rand(2, 4, c.tokens_per_frame, c.visual_dim, generator=g)
    globl = torch.rand(2, 6, c.tokens_per_frame, c.visual_dim, generator=g)
    with torch.no_grad():
        expected = net(codes, local, globl).numpy()
    video = open_session(out / files["video"])
    tokens = video.run(None, {"local": local.numpy(), "global": globl.numpy()})[0]
    cross = open_session(out / files["cross"]).run(None, {"tokens": tokens})
    report = {}
    for role in [r for r in ("step", "step_int8") if r in files]:
        session = open_session(out / files[role])
        got = step_logits(session, codes.numpy(), cross, c)
        report[role] = {"max_abs_logit_delta": float(np.abs(got - expected).max()),
                        "rms_logit_delta_over_std": float(np.sqrt(np.mean((got - expected) ** 2)) / expected.std()),
                        "greedy_agreement": float((got.argmax(-1) == expected.argmax(-1)).mean())}
    return report


def step_logits(session, codes: np.ndarray, cross: list, c: VidMuseConfig) -> np.ndarray:
    """(B, K, T, V) logits of the step graph run T times from an empty cache."""
    b, _, t = codes.shape
    caches = [np.zeros((b, c.n_heads, 0, c.head_dim), np.float32)] * (2 * c.n_layers)
    out = []
    for s in range(t):
        logits, caches = run_step(session, codes[:, :, s:s + 1], np.full(b, s, np.int64), caches, cross)
        out.append(logits)
    return np.stack(out, axis=2)


def package(checkpoint: Path, out: Path, int8: bool = True, codec: Optional[dict] = None,
            sampling: Optional[dict] = None, clip: Optional[Path] = None, provenance: Optional[dict] = None) -> dict:
    """Export, verify and write `out/manifest.json` (files with sha256 and size, net config, the training
    history, verification). `clip`: a CLIP checkpoint (the net must have been trained on its features:
    visual_dim = its width). `provenance`: top-level entries such as the command, data, hardware."""
    net, state = load_checkpoint(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    files = export_graphs(net, out, int8=int8)
    if clip is not None:
        files["clip"] = add_clip(clip, net.config, out)
    manifest = {
        "family": FAMILY,
        "id": f"vidmuse-{net.config.name}-step{state.get('step', 0)}-{time.strftime('%Y%m%d')}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "checkpoint": str(checkpoint),
        **(provenance or {}),
        "codec": codec or DEFAULT_CODEC,
        "sampling": sampling or {"top_k": 250, "temperature": 1.0, "cfg_scale": 3.0},
        "files": {name: {"sha256": sha256(out / name), "bytes": (out / name).stat().st_size}
                  for name in files.values()},
        "stages": {FAMILY: {"files": files, "net_config": net.config.to_dict(),
                            "steps": state.get("step", 0), "train_config": state.get("train_config", {}),
                            "history": state.get("history", []), "verification": verify(net, out, files)}},
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def add_clip(checkpoint: Path, config: VidMuseConfig, out: Path) -> str:
    from cuesmith.engine.nets.clip_vit import load_vision_state

    from .clip_export import export_clip

    tower = load_vision_state(checkpoint)
    if tower.config.width != config.visual_dim:
        raise ValueError(f"{checkpoint}: CLIP width {tower.config.width}, but the net reads {config.visual_dim}-wide "
                         "visual tokens")
    return export_clip(tower, out).name


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="export a VidMuse checkpoint to ONNX, verify it, write the manifest")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument("--clip", type=Path, help="the CLIP checkpoint whose features the net was trained on")
    parser.add_argument("--provenance", type=Path, help="a JSON object of top-level manifest entries "
                        "(command, data, seed, hardware, minutes)")
    args = parser.parse_args(argv)
    provenance = json.loads(args.provenance.read_text()) if args.provenance else None
    manifest = package(args.checkpoint, args.out, int8=not args.no_int8, clip=args.clip, provenance=provenance)
    print(json.dumps(manifest["stages"][FAMILY]["verification"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
