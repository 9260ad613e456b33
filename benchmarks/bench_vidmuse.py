"""VidMuse decode step: ONNX Runtime with the cross K/V cached vs torch recomputing them every step
(the reference's way) vs torch with them cached, at 60 and 3,000 video tokens; and one window's
generation time (real-time factor) through the runtime. The CPU config with random weights (no
VidMuse weights exist yet; step time does not depend on the values).

    python benchmarks/bench_vidmuse.py
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import bench_vmusprod  # the one median-of-repeats timer

TITLE = "VidMuse decode step (CPU config, random weights): ORT with cached cross K/V vs torch"
CONFIG = "cpu"
VIDEO_TOKENS = (60, 3000)
PAST = 256  # decoder steps already in the self-attention cache
BATCH = 2  # the conditional and the null-video row of classifier-free guidance
REPEATS = 30
THREADS = 1  # torch and ORT alike: on the shared 2-core machine extra threads mostly wait for each other


def _median_ms(fn, repeats: int = REPEATS) -> float:
    return bench_vmusprod._median_ms(fn, repeats)


def step_rows(net, folder: Path, files: dict) -> list[str]:
    import torch

    from cuesmith.engine.pipelines.vidmuse.decode import run_step
    from cuesmith.engine.runtime.sessions import open_session

    c = net.config
    session = open_session(folder / files["step"], threads=THREADS)
    codes = torch.full((BATCH, c.codebooks, 1), 7, dtype=torch.long)
    position = torch.full((BATCH,), PAST, dtype=torch.long)
    past = [torch.randn(BATCH, c.n_heads, PAST, c.head_dim) for _ in range(c.n_layers)]
    rows = []
    for tokens_count in VIDEO_TOKENS:
        tokens = torch.randn(BATCH, tokens_count, c.d_model)
        with torch.no_grad():
            cross_k, cross_v = net.cross_kv(tokens)
            recompute = _median_ms(lambda: net.step(codes, position, past, past, *net.cross_kv(tokens)))
            cached = _median_ms(lambda: net.step(codes, position, past, past, cross_k, cross_v))
        caches = [p.numpy() for p in past + past]
        cross = [t.numpy() for t in cross_k + cross_v]
        ort_ms = _median_ms(lambda: run_step(session, codes.numpy(), position.numpy(), caches, cross))
        rows.append(f"| {tokens_count} | {recompute:.2f} | {cached:.2f} | {ort_ms:.2f} | {recompute / ort_ms:.1f}x |")
    return rows


def window_row(folder: Path, seconds: float) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "families"))
    from standin_codec import StandInCodec

    from cuesmith.engine.pipelines.vidmuse import VidMuse

    model = VidMuse(folder, codec=StandInCodec())
    timings: dict = {}
    t = time.perf_counter()
    model.generate_codes(None, seconds, 1, 0, model.guidance, timings=timings)
    spent = time.perf_counter() - t
    return (f"One {seconds:.0f} s window, 1 variation with CFG (batch 2), {int(seconds * 50) + 3} steps: "
            f"{spent:.1f} s ({timings['decode_steps']:.1f} s in the step loop), real-time factor "
            f"{spent / seconds:.2f} (ORT default threads; codec decoding not included).")


def run() -> str:
    import torch

    from cuesmith.engine.nets.vidmuse import CONFIGS, VidMuse
    from cuesmith.engine.training.vidmuse import CONFIGS as TRAIN, save
    from cuesmith.exporters.vidmuse_export import package

    torch.manual_seed(0)
    torch.set_num_threads(THREADS)
    load_before = os.getloadavg()[0]
    net = VidMuse(CONFIGS[CONFIG]).eval()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "last.pt"
        optimizer = torch.optim.AdamW(net.parameters())
        save(checkpoint, net, net.state_dict(), optimizer, 0, TRAIN[CONFIG], np.random.default_rng(0), [])
        manifest = package(checkpoint, Path(tmp) / "vidmuse", int8=False)
        files = manifest["stages"]["vidmuse"]["files"]
        rows = step_rows(net, Path(tmp) / "vidmuse", files)
        window = window_row(Path(tmp) / "vidmuse", CONFIGS[CONFIG].window_seconds)
    c = CONFIGS[CONFIG]
    verification = manifest["stages"]["vidmuse"]["verification"]["step"]
    return "\n".join([
        f"Config `{CONFIG}`: decoder {c.n_layers} x {c.d_model} ({c.n_heads} heads), codebooks {c.codebooks} x "
        f"{c.codebook_size + 1} logits; one step for a batch of {BATCH} with {PAST} steps in the self-attention "
        f"cache; median of {REPEATS}. torch eager fp32 and ORT fp32, {THREADS} thread each. Load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (a shared machine: figures vary with it).",
        "",
        "| video tokens | torch, cross K/V recomputed (ms) | torch, cached (ms) | ORT, cached (ms) "
        "| ORT vs recompute |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Export check: max |delta logit| {verification['max_abs_logit_delta']:.2e}, greedy agreement "
        f"{verification['greedy_agreement']:.3f}. {window}",
    ])


if __name__ == "__main__":
    print(run())
