"""Warm start: the shipped graphs' weights read back into torch compute what the graphs compute."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from cuesmith.engine.nets import build_net  # noqa: E402
from cuesmith.engine.training.warm import load_shipped  # noqa: E402

from vmusprod_helpers import shipped_model  # noqa: E402


def shipped_net(folder, stage: str):
    config = json.loads((folder / "manifest.json").read_text())["stages"][stage]["net_config"]
    sizes = {k: config[k] for k in ("d_model", "n_heads", "n_layers", "d_ff", "max_bars")}
    if stage != "chord":
        sizes["n_encoder_layers"] = config["n_encoder_layers"]
    net = build_net(stage, **sizes).eval()
    return net, load_shipped(net, folder, stage)


@pytest.mark.parametrize("stage", ["chord", "melody", "accompaniment"])
def test_shipped_weights_load_back_exactly(stage):
    folder = shipped_model()
    net, kept = shipped_net(folder, stage)
    assert all(".context." in name for name in kept), kept  # only controls the graphs never had
    c = net.config
    rng = np.random.default_rng(0)
    encoder = ort.InferenceSession(str(folder / f"{stage}.encoder.onnx"), providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(folder / f"{stage}.decoder.onnx"), providers=["CPUExecutionProvider"])
    width = next(i.shape[-1] for i in decoder.get_inputs() if i.name == "context")
    if stage == "chord":
        feeds, bars = {"video": np.zeros((1, 1, c.d_video), np.float32)}, np.zeros((1, 1), np.int64)
        with torch.no_grad():
            memory = net.encode_video(torch.zeros(1, 1, c.d_video))
    else:
        source = np.ones((1, 20, len(c.field_sizes)), np.int64)
        source[..., 0], source[..., 6] = 6, rng.integers(40, 80, (1, 20))
        context = np.zeros((1, 20, len(c.context_sizes)), np.int64)
        context[..., 0] = np.arange(20) // 5
        bars = context[..., 0].copy()
        feeds = {"source": source, "source_context": context[..., :width], "source_bar": bars}
        with torch.no_grad():
            memory = net.encode(torch.from_numpy(source), torch.from_numpy(context), torch.from_numpy(bars))
    cross = dict(zip([o.name for o in encoder.get_outputs()], encoder.run(None, feeds)))
    with torch.no_grad():
        cross_k, cross_v = net.memory_kv(memory)
        past_k, past_v = net.empty_cache(1)
    names = [o.name.replace("present", "past") for o in decoder.get_outputs()[2:]]
    per_layer = len(names) == 2 * c.n_layers
    cache = {n: np.zeros((1, c.n_heads, 1, c.head_dim) if per_layer else past_k.shape, np.float32) for n in names}
    token = np.ones((1, 1, len(c.field_sizes)), np.int64)
    token[..., 0], token[..., 6] = 6, 60
    step_context = np.zeros((1, 1, len(c.context_sizes)), np.int64)
    for _ in range(3):  # three steps: the fed-back cache is compared too
        out = decoder.run(None, {"token": token, "context": step_context[..., :width], "memory_bar": bars,
                                 **cache, **cross})
        cache = dict(zip(names, out[2:]))
        with torch.no_grad():
            type_logits, field_logits, past_k, past_v = net.step(
                torch.from_numpy(token), torch.from_numpy(step_context), past_k, past_v, cross_k, cross_v,
                torch.from_numpy(bars))
        assert np.abs(out[0] - type_logits.numpy()).max() < 1e-4
        assert np.abs(out[1] - field_logits.numpy()).max() < 1e-4
