"""V-MusProd: decode speed (ORT fp32/int8 vs torch eager with and without KV cache),
end-to-end `cuesmith score` cold and warm, music-quality metrics of generations
vs the validation songs (beside seed 003's table 4), validation NLL per stage.

    python benchmarks/bench_vmusprod.py [--metrics-json FILE] [--songs N]
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TITLE = "V-MusProd symbolic stack (ONNX Runtime vs torch eager; quality vs POP909 701-800)"
ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "vmusprod"
RUN = ROOT / "out" / "vmusprod" / "run"  # training checkpoints, for the torch side
NAMES = ("SC", "PE", "PCE", "EBR", "IOI")
TABLE4 = {"Real (POP909, paper)": {"SC": 0.965, "PE": 4.455, "PCE": 2.774, "EBR": 0.005, "IOI": 0.125},
          "V-MusProd (paper)": {"SC": 0.967, "PE": 4.070, "PCE": 2.774, "EBR": 0.005, "IOI": 0.171},
          "Music Transformer (paper)": {"SC": 0.985, "PE": 3.934, "PCE": 2.581, "EBR": 0.034, "IOI": 0.216}}
STEP_PREFIX = 256  # tokens already in the cache when a step is timed
CLIP_STEPS = 400  # decode steps of one stage for a ~30 s clip (accompaniment, ~14 bars)


# -- decode speed --------------------------------------------------------------------

def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def decode_speed(stage: str = "accompaniment") -> list[str]:
    import torch

    from cuesmith.exporters.onnx_export import load_checkpoint
    from cuesmith.engine.pipelines.vmusprod.decode import DECODER_THREADS
    from cuesmith.engine.runtime.sessions import open_session

    manifest = json.loads((MODEL / "manifest.json").read_text())
    checkpoint = ROOT / manifest["stages"][stage].get("checkpoint", RUN / stage / "best.pt")
    if not checkpoint.is_file():  # training checkpoints live in out/, not in the repository
        return [f"Decode step: skipped, the torch checkpoint {checkpoint.relative_to(ROOT)} is not on this "
                "machine (run the training command in models/vmusprod/manifest.json first)."]
    net, _ = load_checkpoint(checkpoint)
    c = net.config
    files = manifest["stages"][stage]["files"]
    memory_len = 300
    rng = np.random.default_rng(0)
    tokens = np.zeros((1, CLIP_STEPS + 1, len(c.field_sizes)), dtype=np.int64)
    tokens[..., 0] = 6  # NOTE rows with valid fields
    tokens[..., 6], tokens[..., 7], tokens[..., 8] = rng.integers(40, 90, tokens.shape[:2]), 2, 8
    context = np.zeros((1, CLIP_STEPS + 1, len(c.context_sizes)), dtype=np.int64)
    source = torch.from_numpy(tokens[:, :memory_len])
    source_ctx, source_bar = torch.from_numpy(context[:, :memory_len]), torch.zeros(1, memory_len, dtype=torch.long)
    with torch.no_grad():
        cross_k, cross_v = net.memory_kv(net.encode(source, source_ctx, source_bar))

    def torch_cached(steps: int, start: int = 0, past=None):
        past_k, past_v = past or net.empty_cache(1)
        with torch.no_grad():
            for t in range(start, start + steps):
                _, _, past_k, past_v = net.step(torch.from_numpy(tokens[:, t:t + 1]), torch.from_numpy(context[:, t:t + 1]),
                                                past_k, past_v, cross_k, cross_v, source_bar)
        return past_k, past_v

    def torch_uncached(steps: int, start: int = 0):
        with torch.no_grad():
            for t in range(start, start + steps):
                h = net.hidden(torch.from_numpy(tokens[:, :t + 1]), torch.from_numpy(context[:, :t + 1]),
                               cross_k, cross_v, source_bar)
                net.heads.all_types(h[:, -1])

    feeds_base = {"cross_k": cross_k.numpy(), "cross_v": cross_v.numpy(), "memory_bar": source_bar.numpy()}

    def ort_loop(session, steps: int, start: int = 0, past=None):
        past_k, past_v = past or (np.zeros((c.n_layers, 1, c.n_heads, 1, c.head_dim), np.float32),) * 2
        for t in range(start, start + steps):
            out = session.run(None, {"token": tokens[:, t:t + 1], "context": context[:, t:t + 1],
                                     "past_k": past_k, "past_v": past_v, **feeds_base})
            past_k, past_v = out[2], out[3]
        return past_k, past_v

    step, clip = {}, {}
    for threads in (2, 1):
        torch.set_num_threads(threads)
        name = f"torch eager, KV cache, {threads} thread{'s' * (threads > 1)}"
        prefix_t = torch_cached(STEP_PREFIX)
        step[name] = _median_ms(lambda: torch_cached(1, STEP_PREFIX, prefix_t), 50)
        clip[name] = _median_ms(lambda: torch_cached(CLIP_STEPS), 2)
    torch.set_num_threads(2)
    step["torch eager, no cache, 2 threads"] = _median_ms(lambda: torch_uncached(1, STEP_PREFIX), 20)
    clip["torch eager, no cache, 2 threads"] = _median_ms(lambda: torch_uncached(CLIP_STEPS), 1)
    for role, label in (("decoder", "fp32"), ("decoder_int8", "int8")):
        for threads, what in ((0, "ORT default threads"), (DECODER_THREADS, f"{DECODER_THREADS} thread (runtime)")):
            session, name = open_session(MODEL / files[role], threads), f"ORT {label}, KV cache, {what}"
            prefix_o = ort_loop(session, STEP_PREFIX)
            step[name] = _median_ms(lambda: ort_loop(session, 1, STEP_PREFIX, prefix_o), 200)
            clip[name] = _median_ms(lambda: ort_loop(session, CLIP_STEPS), 3)
    baseline = min((n for n in step if "torch eager, KV cache" in n), key=step.get)  # the faster torch
    base_step, base_clip = step[baseline], clip[baseline]
    rows = [f"| {name} | {step[name]:.3f} | {base_step / step[name]:.2f}× | {clip[name]:.0f} | "
            f"{base_clip / clip[name]:.2f}× |" for name in step]
    return [f"Decode, {stage} net ({c.n_layers} layers × {c.d_model}, {c.n_heads} heads), batch 1, "
            f"memory {memory_len} tokens. Step: one token with {STEP_PREFIX} already decoded (median). "
            f"Clip: {CLIP_STEPS} steps from an empty cache (≈ a 30 s clip's accompaniment). "
            f"Baseline: the faster torch eager with KV cache ({baseline}), same weights, same run. "
            "The runtime opens decoder sessions with 1 intra-op thread (engine/pipelines/vmusprod/decode.py). "
            "Goal: ORT fp32 ≥ 4× the baseline.", "",
            "| backend | step ms | vs baseline | clip ms | vs baseline |", "| --- | --- | --- | --- | --- |", *rows]


# -- end to end ---------------------------------------------------------------------------

def end_to_end() -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from media import Shot, make_video

    from cuesmith.engine.api import Engine

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "clip30.mp4"
        shots = [Shot(6.0), Shot(5.0, mood="cold", speed=0.8), Shot(7.0, mood="dusk"), Shot(6.0, speed=1.2),
                 Shot(6.0, mood="cold")]
        make_video(clip, shots, fps=30, size=(1280, 720))
        env = {"CUESMITH_CACHE_DIR": str(tmp / "cache")}
        cli = ROOT / ".venv" / "bin" / "cuesmith"
        cold = {}
        for stems in (False, True):
            t = time.perf_counter()
            done = subprocess.run([str(cli), "score", str(clip), "--out", str(tmp / f"cold{stems}")]
                                  + ([] if stems else ["--no-stems"]),
                                  capture_output=True, text=True, env={**_environ(), **env})
            cold[stems] = time.perf_counter() - t
            if done.returncode != 0:
                return [f"end to end failed: {done.stderr.strip()}"]
        engine = Engine(cache_dir=tmp / "cache2")
        request = {"video": str(clip), "out_dir": str(tmp / "warm0"), "stems": False}
        engine.score_and_save(request)  # loads the sessions and fills the analysis cache
        warm, in_memory = {}, {}
        for stems in (False, True):
            t = time.perf_counter()
            score = engine.score({**request, "out_dir": str(tmp / f"warm{stems}"), "stems": stems})
            in_memory[stems] = time.perf_counter() - t
            result = engine.save(score)
            warm[stems] = time.perf_counter() - t
        parts = ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items())
        return ["End to end on a 30 s 1280×720 H.264 clip (5 shots, 4 cuts), 1 variation. Cold: a new "
                "`cuesmith score` process with an empty analysis cache. Warm: a second `Engine.score` in one "
                "process (sessions loaded, analysis cached). Goal: warm under 3 s.", "",
                "| run | MIDI only, s | MIDI + stems, s |", "| --- | --- | --- |",
                f"| cold (CLI) | {cold[False]:.2f} | {cold[True]:.2f} |",
                f"| warm (Engine) | {warm[False]:.2f} | {warm[True]:.2f} |",
                f"| of which in memory (Engine.score, before save) | {in_memory[False]:.2f} | {in_memory[True]:.2f} |",
                "",
                f"Warm run with stems, seconds per step: {parts}."]


def _environ() -> dict:
    import os

    return dict(os.environ)


# -- quality ---------------------------------------------------------------------------------

def validation_plan(number: int, bars: int):
    """A plan with a validation song's own bars, tempo, key and measured controls."""
    from cuesmith.engine.music.dataset import song_tokens
    from cuesmith.engine.music.key import detect_key
    from cuesmith.engine.music.score import Key
    from cuesmith.engine.planning.plan import ScorePlan
    from cuesmith.engine.training.data import song_controls, tokens_song

    sequences = song_tokens(number)
    real = tokens_song(sequences["chord+melody"], sequences["accompaniment"])
    controls = song_controls(number)
    n = min(bars, len(controls))
    bar_ticks = real.bars()[:n]
    end = bar_ticks[-1] + real.time_signature_at(bar_ticks[-1]).ticks_per_bar
    key = detect_key(real)
    plan = ScorePlan(duration=real.tick_to_seconds(end), tempos=[t for t in real.tempos if t.tick < end],
                     time_signatures=[t for t in real.time_signatures if t.tick < end], bar_ticks=bar_ticks,
                     controls=controls[:n], key=Key(key.tonic, key.mode))
    for part in real.parts:
        part.notes = [x for x in part.notes if x.start < end]
    real.chords = [c for c in real.chords if c.start < end]
    return plan, real


def quality(n_songs: int = 100, bars: int = 16, seed: int = 0) -> tuple[list[str], dict]:
    from cuesmith.engine.music.metrics import quality_metrics
    from cuesmith.engine.music.pop909 import VALID_SONGS
    from cuesmith.engine.pipelines.vmusprod import VMusProd

    model = VMusProd(MODEL)
    real, ours = [], []
    t = time.perf_counter()
    for i, number in enumerate(list(VALID_SONGS)[:n_songs]):
        plan, song = validation_plan(number, bars)
        real.append(quality_metrics(song))
        ours.append(quality_metrics(model.generate_stages(plan, variations=1, seed=seed + i).songs[0]))
    seconds = time.perf_counter() - t
    mean = {"Real (ours, 701-800 first bars)": _mean(real), "V-MusProd ONNX (ours)": _mean(ours)}
    rows = []
    for name, values in {**TABLE4, **mean}.items():
        rows.append(f"| {name} | " + " | ".join(f"{values[k]:.3f}" for k in NAMES) + " |")
    ref_real, ours_m = mean["Real (ours, 701-800 first bars)"], mean["V-MusProd ONNX (ours)"]
    paper_real = TABLE4["Real (POP909, paper)"]
    gaps = {k: abs(ours_m[k] - ref_real[k]) for k in NAMES}
    mt = {k: abs(TABLE4["Music Transformer (paper)"][k] - paper_real[k]) for k in NAMES}
    vm = {k: abs(TABLE4["V-MusProd (paper)"][k] - paper_real[k]) for k in NAMES}
    rows.append("| gap ours vs our Real | " + " | ".join(f"{gaps[k]:.3f}" for k in NAMES) + " |")
    rows.append("| gap Music Transformer vs paper Real | " + " | ".join(f"{mt[k]:.3f}" for k in NAMES) + " |")
    rows.append("| gap V-MusProd vs paper Real | " + " | ".join(f"{vm[k]:.3f}" for k in NAMES) + " |")
    beats_mt = [k for k in NAMES if gaps[k] < mt[k]]
    beats_vm = [k for k in ("PE", "IOI") if gaps[k] < vm[k]]
    lines = [f"{n_songs} generations ({bars} bars each), plans taken from validation songs 701-"
             f"{700 + n_songs} (their bars, tempo, detected key and measured per-bar controls), one seed each; "
             f"vs those songs' first {bars} bars. {seconds:.0f} s. Closer to Real is better.", "",
             "| | " + " | ".join(NAMES) + " |", "| --- |" + " --- |" * len(NAMES), *rows, "",
             f"Gap smaller than Music Transformer's: {', '.join(beats_mt) or 'none'} (goal: all). "
             f"PE/IOI gap smaller than V-MusProd's: {', '.join(beats_vm) or 'none'} (goal: both)."]
    return lines, {"songs": n_songs, "bars": bars, "real": ref_real, "generated": ours_m, "gap": gaps,
                   "gap_smaller_than_music_transformer": beats_mt, "pe_ioi_gap_smaller_than_vmusprod": beats_vm}


def _mean(rows: list[dict]) -> dict:
    return {k: float(np.nanmean([r[k] for r in rows])) for k in NAMES}


def validation_nll() -> list[str]:
    manifest = json.loads((MODEL / "manifest.json").read_text())
    rows = [f"| {stage} | {entry['best_valid_nll']:.4f} | {entry['epochs']} | "
            f"{entry['train_config']['crop_bars'][stage]} |" for stage, entry in manifest["stages"].items()]
    return ["Validation NLL per token (nats: type + the fields the type carries), POP909 701-800, fixed crops "
            "(opening and middle), best epoch; from the training run recorded in the manifest.", "",
            "| stage | valid NLL | epochs | crop bars |", "| --- | --- | --- | --- |", *rows]


def run(n_songs: int = 100) -> str:
    lines, metrics = quality(n_songs)
    # kept for the model manifest (exporters/package.py --metrics)
    (ROOT / "out" / "vmusprod").mkdir(parents=True, exist_ok=True)
    (ROOT / "out" / "vmusprod" / "bench-metrics.json").write_text(json.dumps(metrics, indent=1))
    sections = [decode_speed(), end_to_end(), lines, validation_nll()]
    return "\n\n".join("\n".join(s) for s in sections)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--metrics-json", type=Path)
    parser.add_argument("--songs", type=int, default=100)
    parser.add_argument("--only", choices=("speed", "e2e", "quality", "nll"))
    args = parser.parse_args()
    if args.metrics_json:
        lines, metrics = quality(args.songs)
        print("\n".join(lines))
        args.metrics_json.write_text(json.dumps(metrics, indent=1))
    elif args.only:
        part = {"speed": decode_speed, "e2e": end_to_end, "quality": lambda: quality(args.songs)[0],
                "nll": validation_nll}[args.only]()
        print("\n".join(part))
    else:
        print(run(args.songs))
