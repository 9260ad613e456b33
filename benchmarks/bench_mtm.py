"""MTM (issue 17): one DiT step through ONNX Runtime vs torch eager, and the diffusion time of a 30 s clip.

Untrained weights of the `cpu` config (speed does not depend on them); a 30 s clip is 1500 latent frames
(the codec's 50 Hz). With CFG each step runs the graph twice (conditional and null). Whether conditioning
steers (tempo/mood of generated audio vs the description) needs a trained model: not measured yet.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

TITLE = "MTM: DiT step, ONNX Runtime vs torch eager (issue 17)"
FRAMES, TOKENS, REPEATS, STEPS = 1500, 32, 3, 25


def best_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def run() -> str:
    import torch

    from cuesmith.engine.nets.mtm import MTMDiT, cpu
    from cuesmith.engine.runtime.sessions import open_session
    from cuesmith.exporters.mtm_export import FILES, example_inputs, export, step_feeds

    torch.manual_seed(0)
    model = MTMDiT(cpu()).eval()
    feeds = step_feeds(model, example_inputs(model, batch=1, frames=FRAMES, tokens=TOKENS))
    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        export(model, Path(folder))
        session = open_session(Path(folder) / FILES["step"])
        arrays = {k: v.numpy() for k, v in feeds.items()}
        ort_s = best_of(lambda: session.run(None, arrays))
        torch_s = best_of(lambda: model.step(*feeds.values()))
        delta = float(np.abs(session.run(None, arrays)[0] - model.step(*feeds.values()).numpy()).max())
    c = model.config
    return "\n".join([
        f"`cpu` config: width {c.width}, {c.layers} layers ({c.control_layers} in the ControlFormer), "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters; one step on {FRAMES} frames "
        f"(30 s), {TOKENS} text tokens, batch 1, best of {REPEATS}. max |ORT - torch| = {delta:.2e}.",
        "",
        "| runtime | one step, s | 30 s clip, 25 steps x 2 (CFG), s |",
        "| --- | --- | --- |",
        f"| ONNX Runtime (this version) | {ort_s:.3f} | {ort_s * STEPS * 2:.1f} |",
        f"| torch eager (baseline) | {torch_s:.3f} (ORT x{torch_s / ort_s:.2f}) | {torch_s * STEPS * 2:.1f} |",
    ])
