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

from typing import Optional

import numpy as np

TITLE = "V-MusProd symbolic stack (ONNX Runtime vs torch eager; quality vs POP909 701-800)"
ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "vmusprod"
RUN = ROOT / "out" / "vmusprod" / "run"  # training checkpoints, for the torch side
NAMES = ("SC", "PE", "PCE", "EBR", "IOI")
TABLE4 = {"Real (POP909, paper)": {"SC": 0.965, "PE": 4.455, "PCE": 2.774, "EBR": 0.005, "IOI": 0.125},
          "V-MusProd (paper)": {"SC": 0.967, "PE": 4.070, "PCE": 2.774, "EBR": 0.005, "IOI": 0.171},
          "Music Transformer (paper)": {"SC": 0.985, "PE": 3.934, "PCE": 2.581, "EBR": 0.034, "IOI": 0.216}}
CLIPS_NOTE = ("four-shots", "two-long", "quick-cuts", "one-shot")  # benchmarks/vmusprod_cues.py CLIPS
STEP_PREFIXES = (256, 2048)  # tokens already in the cache when a step is timed
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


def _least_median_ms(fn, repeats: int, rounds: int = 3) -> float:
    """The least of `rounds` medians: a burst of load on the shared machine spoils a round, not the figure."""
    return min(_median_ms(fn, repeats) for _ in range(rounds))


def decode_speed(stage: str = "accompaniment") -> list[str]:
    import torch

    from cuesmith.engine.training.warm import shipped_net
    from cuesmith.exporters.onnx_export import load_checkpoint
    from cuesmith.engine.pipelines.vmusprod.decode import DECODER_THREADS
    from cuesmith.engine.pipelines.vmusprod.segments import SEGMENT_SLOTS
    from cuesmith.engine.runtime.kv_cache import InPlaceCache
    from cuesmith.engine.runtime.sessions import open_session

    manifest = json.loads((MODEL / "manifest.json").read_text())
    checkpoint = ROOT / manifest["stages"][stage].get("checkpoint", RUN / stage / "best.pt")
    if checkpoint.is_file():
        net, _ = load_checkpoint(checkpoint)
    else:  # training checkpoints live in out/: the same weights, read back from the shipped graphs
        net = shipped_net(MODEL, stage, manifest["stages"][stage]["net_config"])
    c = net.config
    files = manifest["stages"][stage]["files"]
    memory_len = 300
    rng = np.random.default_rng(0)
    length = max(CLIP_STEPS, *STEP_PREFIXES) + 1
    tokens = np.zeros((1, length, len(c.field_sizes)), dtype=np.int64)
    tokens[..., 0] = 6  # NOTE rows with valid fields
    tokens[..., 6], tokens[..., 7], tokens[..., 8] = rng.integers(40, 90, tokens.shape[:2]), 2, 8
    context = np.zeros((1, length, len(c.context_sizes)), dtype=np.int64)
    source = torch.from_numpy(tokens[:, :memory_len])
    source_ctx, source_bar = torch.from_numpy(context[:, :memory_len]), torch.zeros(1, memory_len, dtype=torch.long)
    with torch.no_grad():
        cross_k, cross_v = net.memory_kv(net.encode(source, source_ctx, source_bar))
    memory_bar = source_bar.numpy()

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

    def ort_loop(session, steps: int, start: int = 0, past=None):
        """The runtime's loop: caches fed back under their names (per layer in graphs exported so)."""
        names = [o.name.replace("present", "past") for o in session.get_outputs()[2:]]
        per_layer = len(names) == 2 * c.n_layers
        cross = {f"cross_{kv}_{i}": x[i].numpy() for kv, x in (("k", cross_k), ("v", cross_v))
                 for i in range(c.n_layers)} if per_layer else {"cross_k": cross_k.numpy(), "cross_v": cross_v.numpy()}
        shape = (1, c.n_heads, 1, c.head_dim) if per_layer else (c.n_layers, 1, c.n_heads, 1, c.head_dim)
        cache = past or {n: np.zeros(shape, np.float32) for n in names}
        width = next(i.shape[-1] for i in session.get_inputs() if i.name == "context")
        for t in range(start, start + steps):
            out = session.run(None, {"token": tokens[:, t:t + 1], "context": context[:, t:t + 1, :width],
                                     "memory_bar": source_bar.numpy(), **cache, **cross})
            cache = dict(zip(names, out[2:]))
        return cache

    layer_cross = {f"cross_{kv}_{i}": x[i].numpy() for kv, x in (("k", cross_k), ("v", cross_v))
                   for i in range(c.n_layers)}  # one dict: bound once, as the runtime's segments do

    def in_place_loop(session, steps: int, start: int = 0, cache=None):
        """The runtime's loop over an in-place graph: one preallocated cache, rewound to `start` tokens. Its
        capacity as the runtime sizes it (SEGMENT_SLOTS), or with room for 64 more tokens: a step's cost grows
        with the capacity, not only with the tokens held (at 256 tokens 1.03 ms in 320 slots, 1.40 ms in 2,049)."""
        names = [o.name.replace("present", "past") for o in session.get_outputs()[2:]]
        capacity = max(SEGMENT_SLOTS, start + steps + 64)
        cache = cache or InPlaceCache(session, names, (1, c.n_heads, capacity, c.head_dim))
        cache.length = start
        for t in range(start, start + steps):
            cache.step({"token": tokens[:, t:t + 1], "context": context[:, t:t + 1]}, layer_cross, memory_bar)
        return cache

    step, clip = {}, {}  # step: (backend, prefix) -> ms
    for threads in (2, 1):
        torch.set_num_threads(threads)
        name = f"torch eager, KV cache, {threads} thread{'s' * (threads > 1)}"
        for prefix in STEP_PREFIXES:
            prefix_t = torch_cached(prefix)
            step[name, prefix] = _least_median_ms(lambda: torch_cached(1, prefix, prefix_t), 50)
        clip[name] = _median_ms(lambda: torch_cached(CLIP_STEPS), 2)
    torch.set_num_threads(2)
    for prefix in STEP_PREFIXES:
        step["torch eager, no cache, 2 threads", prefix] = _median_ms(lambda: torch_uncached(1, prefix), 10)
    clip["torch eager, no cache, 2 threads"] = _median_ms(lambda: torch_uncached(CLIP_STEPS), 1)
    for role, label in (("decoder", "fp32"), ("decoder_int8", "int8"), ("decoder_in_place", "fp32 in place"),
                        ("decoder_int8_in_place", "int8 in place")):
        if role not in files:
            continue
        loop = in_place_loop if role.endswith("in_place") else ort_loop
        for threads, what in ((0, "ORT default threads"), (DECODER_THREADS, f"{DECODER_THREADS} thread (runtime)")):
            session, name = open_session(MODEL / files[role], threads), f"ORT {label}, KV cache, {what}"
            for prefix in STEP_PREFIXES:
                prefix_o = loop(session, prefix)
                step[name, prefix] = _least_median_ms(lambda: loop(session, 1, prefix, prefix_o), 200)
            clip[name] = _median_ms(lambda: loop(session, CLIP_STEPS), 3)
    names = list(clip)
    cached = [n for n in names if "torch eager, KV cache" in n]
    baseline = {prefix: min(cached, key=lambda n: step[n, prefix]) for prefix in STEP_PREFIXES}  # the faster torch
    clip_base = min(cached, key=clip.get)
    rows = [f"| {name} | " + " | ".join(f"{step[name, p]:.3f} | {step[baseline[p], p] / step[name, p]:.2f}×"
                                         for p in STEP_PREFIXES)
            + f" | {clip[name]:.0f} | {clip[clip_base] / clip[name]:.2f}× |" for name in names]
    head = " | ".join(f"step ms, {p} cached | vs baseline" for p in STEP_PREFIXES)
    return [f"Decode, {stage} net ({c.n_layers} layers × {c.d_model}, {c.n_heads} heads), batch 1, "
            f"memory {memory_len} tokens. Step: one token with {' or '.join(map(str, STEP_PREFIXES))} already "
            f"decoded (the least of 3 medians). Clip: {CLIP_STEPS} steps from an empty cache (≈ a 30 s clip's accompaniment). "
            "Baseline: the faster torch eager with KV cache (1 or 2 threads, per column), same weights, same run. "
            "The runtime opens decoder sessions with 1 intra-op thread (engine/pipelines/vmusprod/decode.py) and "
            "never holds more than segments.py's SEGMENT_SLOTS (384) cached tokens. 'In place': the graphs whose "
            "GroupQueryAttention appends to one preallocated cache bound through IOBinding (runtime/kv_cache.py), "
            "what the runtime runs on the CPU. Goal: ORT fp32 ≥ 4× the "
            "baseline at 256 and 2,048.", "",
            f"| backend | {head} | clip ms | vs baseline |", "| --- |" + " --- |" * (2 * len(STEP_PREFIXES) + 2),
            *rows]


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


# -- musicality (issue 12) ------------------------------------------------------------------------

MUSICALITY = ("melody_bars", "melody_recurrence", "accompaniment_recurrence", "leaps", "mean_interval",
              "above_melody", "melody_on_top", "held_over", "last_onset_notes", "last_onset_span", "last_onset_top")
ENDINGS = ("last_onset_notes", "last_onset_span", "last_onset_top")  # real column: whole songs' endings
EXCERPT_BARS = 12
FIGURE = ROOT / "benchmarks" / "figures" / "vmusprod-cues-vs-real.png"


def _played(song):
    """Melody and accompaniment only (the real songs have no separate voiced-chords part)."""
    from dataclasses import replace

    return replace(song, parts=[p for p in song.parts if p.name in ("melody", "accompaniment")])


def real_excerpts(n_songs: int = 100, bars: int = EXCERPT_BARS) -> list[tuple[object, list]]:
    from cuesmith.engine.music import musicality
    from cuesmith.engine.music.pop909 import VALID_SONGS

    return musicality.real_excerpts(list(VALID_SONGS)[:n_songs], bars)


def load_cues(folder: Path) -> list[dict]:
    import pickle

    from cuesmith.engine.music.musicality import bar_spans

    cues = []
    for path in sorted(folder.glob("*.pkl")):
        cue = pickle.loads(path.read_bytes())
        song = cue["song"]
        end = cue["bar_ticks"][-1] + song.time_signature_at(cue["bar_ticks"][-1]).ticks_per_bar
        cue["spans"] = bar_spans(song, cue["bar_ticks"], end)
        cues.append(cue)
    return cues


def summarise(items: list[tuple[object, list, list]]) -> dict:
    """Mean measures over (song, spans, cut ticks or None) items, with PCE and IOI (metrics.py)."""
    from cuesmith.engine.music.metrics import quality_metrics
    from cuesmith.engine.music.musicality import cue_measures

    from cuesmith.engine.music.musicality import share_above_melody

    rows = [{**cue_measures(_played(s), spans, cuts), **quality_metrics(_played(s)),
             "chords_above": share_above_melody(s, "chords") if s.part("chords") else float("nan")}
            for s, spans, cuts in items]
    summary = {k: float(np.nanmean([r[k] for r in rows])) for k in MUSICALITY + ("PCE", "IOI")}
    if any(s.part("chords") for s, _, _ in items):
        summary["chords_above"] = float(np.nanmean([r["chords_above"] for r in rows]))
    summary["no_melody"] = sum(r["melody_bars"] == 0 for r in rows)
    summary["lowest"], summary["highest"] = min(r["lowest"] for r in rows), max(r["highest"] for r in rows)
    cuts = [r["cut_events"] for r in rows if "cut_events" in r and not np.isnan(r["cut_events"])]
    summary["cut_events"] = float(np.mean(cuts)) if cuts else float("nan")
    summary["count"] = len(rows)
    return summary


def musicality(before: Optional[Path], after: Path) -> tuple[list[str], dict]:
    """The issue-12 table: cues from synthetic clips (before: main's code and model; after: this one's)
    beside real 12-bar excerpts from the melody's entry; and the piano-roll figure."""
    from cuesmith.engine.music.musicality import last_onset, real_songs
    from cuesmith.engine.music.pop909 import VALID_SONGS

    real = real_excerpts()
    columns = {"real songs (701-800, 12 bars from the melody's entry)":
               summarise([(s, spans, None) for s, spans in real])}
    endings = np.array([last_onset(s) for s in real_songs(VALID_SONGS)])
    columns[next(iter(columns))].update({k: float(np.median(endings[:, i])) for i, k in enumerate(ENDINGS)})
    cue_sets = {"before": load_cues(before) if before else [], "after": load_cues(after)}
    for name, cues in cue_sets.items():
        if cues:
            columns[f"cues {name}"] = summarise([(c["song"], c["spans"], c["cut_ticks"]) for c in cues])
            columns[f"cues {name}"]["keys"] = len({tuple(c["key"]) for c in cues})
    labels = {"melody_bars": "bars with a melody note (after the 2nd)", "melody_recurrence":
              "melody bars whose rhythm recurs", "accompaniment_recurrence": "accompaniment bars whose rhythm recurs",
              "leaps": "melody leaps > 7 semitones", "mean_interval": "melody mean interval (semitones)",
              "PCE": "pitch-class entropy", "IOI": "mean inter-onset interval (s)",
              "cut_events": "locked cuts with a chord and a bass onset", "no_melody": "cues without a melody",
              "above_melody": "accompaniment notes above the sounding melody note",
              "melody_on_top": "16ths of melody with no accompaniment note above it",
              "chords_above": "voiced chords-part notes above the sounding melody note",
              "held_over": "melody notes held past the next melody onset",
              "last_onset_notes": "notes at the last onset (cues: mean; real: song endings, median)",
              "last_onset_span": "span of the last onset, semitones (cues: mean; real: song endings, median)",
              "last_onset_top": "top note of the last onset (cues: mean; real: song endings, median)",
              "lowest": "lowest note", "highest": "highest note", "keys": "keys used", "count": "pieces"}
    names = list(columns)
    rows = [f"| {labels[k]} | " + " | ".join(_cell(columns[n].get(k)) for n in names) + " |" for k in labels]
    firsts = {c["clip"]: c for c in reversed(cue_sets["after"])}  # one cue (the lowest seed) per clip
    piano_rolls(list(firsts.values())[-3:], real[:3])
    lines = [f"Cues from {len(CLIPS_NOTE)} synthetic clips (benchmarks/vmusprod_cues.py: "
             f"{', '.join(CLIPS_NOTE)}), seeds 0-2, on the product path (clip -> analysis -> cut-locked plan -> "
             "V-MusProd); 'before' = the code and model on main before issue 12, 'after' = this branch. Melody and "
             "accompaniment parts. Real: POP909 701-800.", "",
             "| | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names), *rows, "",
             f"Piano rolls of three cues (top) beside three real excerpts (bottom): "
             f"{FIGURE.relative_to(ROOT)}."]
    return lines, columns


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, np.integer)):
        return str(value)
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def piano_rolls(cues: list[dict], real: list[tuple[object, list]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cuesmith.engine.music.score import TICKS_PER_16TH

    pieces = [(f"cue {c['clip']} seed {c['seed']}", _played(c["song"]), c["spans"], c["cut_ticks"]) for c in cues]
    pieces += [(f"real excerpt {i + 1}", s, spans, []) for i, (s, spans) in enumerate(real)]
    fig, axes = plt.subplots(2, 3, figsize=(15, 6), squeeze=False)
    for ax, (title, song, spans, cuts) in zip(axes.flat, pieces):
        origin = spans[0][0]
        for part, colour in (("accompaniment", "tab:blue"), ("melody", "tab:red")):  # the melody drawn on top
            p = song.part(part)
            for n in (p.notes if p else []):
                ax.broken_barh([((n.start - origin) / TICKS_PER_16TH, (n.end - n.start) / TICKS_PER_16TH)],
                               (n.pitch - 0.4, 0.8), color=colour)
        for a, _ in spans:
            ax.axvline((a - origin) / TICKS_PER_16TH, color="0.85", lw=0.5, zorder=0)
        for t in cuts:
            ax.axvline((t - origin) / TICKS_PER_16TH, color="k", lw=1.2, ls="--")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("16ths (grey: bar lines, dashed: cuts)", fontsize=7)
        ax.set_ylim(24, 100)
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=80)
    plt.close(fig)
    return FIGURE


def validation_nll() -> list[str]:
    manifest = json.loads((MODEL / "manifest.json").read_text())
    before = manifest.get("validation_nll_before", {})
    rows = [f"| {stage} | {_cell(before.get(stage))} | {entry['best_valid_nll']:.4f} | {entry['epochs']} | "
            f"{entry['train_config']['crop_bars'][stage]} |" for stage, entry in manifest["stages"].items()]
    return ["Validation NLL per token (nats: type + the fields the type carries), POP909 701-800, fixed crops "
            "(opening and middle), best epoch; from the training run recorded in the manifest (before: the "
            "weights it continued from).", "",
            "| stage | valid NLL before | valid NLL | epochs | crop bars |", "| --- | --- | --- | --- | --- |", *rows]


def musicality_now(before: Optional[Path] = None) -> list[str]:
    """Cues of this checkout's code and model (generated now) against real excerpts, and `before`'s cues."""
    from vmusprod_cues import generate_cues

    with tempfile.TemporaryDirectory() as tmp:
        generate_cues(Path(tmp) / "cues", model_dir=MODEL)
        return musicality(before, Path(tmp) / "cues")[0]


def int8_vs_fp32(seeds=tuple(range(6))) -> list[str]:
    """Cues from the int8 decoders against the fp32 ones (same clips and seeds), with the seed-to-seed spread of
    the fp32 cues as the yardstick: does int8 change the music more than a new seed does?"""
    from vmusprod_cues import generate_cues

    columns, per_half = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for int8 in (False, True):
            name = "int8" if int8 else "fp32"
            start = time.perf_counter()
            generate_cues(Path(tmp) / name, seeds, model_dir=MODEL, int8=int8)
            cues = load_cues(Path(tmp) / name)
            columns[name] = summarise([(c["song"], c["spans"], c["cut_ticks"]) for c in cues])
            columns[name]["seconds"] = time.perf_counter() - start
            if not int8:
                for half, chosen in (("fp32 seeds 0-2", seeds[:3]), ("fp32 seeds 3-5", seeds[3:])):
                    per_half[half] = summarise([(c["song"], c["spans"], c["cut_ticks"]) for c in cues
                                                if c["seed"] in chosen])
    keys = MUSICALITY + ("PCE", "IOI")
    rows = [f"| {k} | {columns['fp32'][k]:.3f} | {columns['int8'][k]:.3f} | "
            f"{abs(columns['int8'][k] - columns['fp32'][k]):.3f} | "
            f"{abs(per_half['fp32 seeds 0-2'][k] - per_half['fp32 seeds 3-5'][k]):.3f} |" for k in keys]
    return [f"Cues from the {len(CLIPS_NOTE)} synthetic clips (benchmarks/vmusprod_cues.py), seeds "
            f"{seeds[0]}-{seeds[-1]}, decoded with the fp32 and with the int8 decoder graphs. Yardstick: the same "
            "measure between the fp32 cues of seeds 0-2 and of seeds 3-5.", "",
            "| measure | fp32 | int8 | int8 vs fp32 | seeds 0-2 vs 3-5 (fp32) |", "| --- | --- | --- | --- | --- |",
            *rows, f"| generation time, s (wall) | {columns['fp32']['seconds']:.1f} | {columns['int8']['seconds']:.1f} "
            "| | |"]


def graph_nll(every: int = 2) -> list[str]:
    """Validation NLL per token through the shipped decoder graphs themselves (fp32 and int8, the in-place
    ones the runtime runs), teacher-forced on the training's fixed validation crops of every `every`-th song
    of POP909 701-800: how much the int8 weights cost the model, measured on held-out songs, not on cues."""
    from cuesmith.engine.nets.layers import TYPE_FIELDS
    from cuesmith.engine.pipelines.vmusprod.decode import StageRunner
    from cuesmith.engine.training.data import fixed_crops, load_songs
    from cuesmith.engine.music import pop909

    manifest = json.loads((MODEL / "manifest.json").read_text())
    rows = []
    for stage, entry in manifest["stages"].items():
        config = entry["train_config"]
        songs = load_songs(stage, list(pop909.VALID_SONGS)[::every], (0,))
        crops = [c for song in songs for c in fixed_crops(song, config["crop_bars"][stage], config["max_tokens"])]
        nll, seconds = {}, {}
        for role in ("decoder_in_place", "decoder_int8_in_place"):
            runner = StageRunner(stage, MODEL / entry["files"]["encoder"], MODEL / entry["files"][role],
                                 entry["net_config"])
            start, total, count = time.perf_counter(), 0.0, 0
            for crop in crops:
                tokens, context = crop["tokens"], crop["context"]
                source = [crop["source"]] if "source" in crop else None
                cross, memory_bar = runner.memory(1, source, None if source is None else [crop["source_context"]])
                cache = runner.empty_cache(1, len(tokens))
                for t in range(len(tokens) - 1):
                    type_logits, field_logits, cache = runner.step(tokens[t:t + 1], context[t:t + 1], cache, cross,
                                                                   memory_bar)
                    target = tokens[t + 1]
                    total -= _log_softmax(type_logits[0])[target[0]]
                    for f in TYPE_FIELDS.get(int(target[0]), ()):
                        total -= _log_softmax(runner.field_slice(field_logits[0, target[0]], f))[target[f]]
                    count += 1
            nll[role], seconds[role] = total / count, time.perf_counter() - start
        fp32, int8 = nll["decoder_in_place"], nll["decoder_int8_in_place"]
        rows.append(f"| {stage} | {len(crops)} | {count} | {entry['best_valid_nll']:.4f} | {fp32:.4f} | {int8:.4f} "
                    f"| {100 * (int8 - fp32) / fp32:+.2f}% | {seconds['decoder_in_place']:.1f} "
                    f"| {seconds['decoder_int8_in_place']:.1f} |")
    return [f"Validation NLL per token (nats), teacher-forced through the shipped in-place decoder graphs on the "
            f"training's fixed validation crops (opening and middle) of 1 in {every} songs of POP909 701-800, "
            "untransposed. 'torch, all songs': the manifest's best validation NLL (torch, all 100 songs), a check "
            "that the fp32 graph computes the same thing.", "",
            "| stage | crops | tokens | torch, all songs | fp32 graph | int8 graph | int8 vs fp32 "
            "| fp32 s | int8 s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", *rows]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


def run(n_songs: int = 100) -> str:
    import os

    before = os.environ.get("CUESMITH_CUES_BEFORE")  # vmusprod_cues.py output of the code before
    lines, metrics = quality(n_songs)
    # kept for the model manifest (exporters/package.py --metrics)
    (ROOT / "out" / "vmusprod").mkdir(parents=True, exist_ok=True)
    (ROOT / "out" / "vmusprod" / "bench-metrics.json").write_text(json.dumps(metrics, indent=1))
    sections = [decode_speed(), end_to_end(), lines, musicality_now(Path(before) if before else None),
                int8_vs_fp32(), graph_nll(), validation_nll()]
    return "\n\n".join("\n".join(s) for s in sections)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--metrics-json", type=Path)
    parser.add_argument("--songs", type=int, default=100)
    parser.add_argument("--only", choices=("speed", "e2e", "quality", "nll", "musicality", "int8", "int8-nll"))
    parser.add_argument("--cues-before", type=Path, help="vmusprod_cues.py output of the code before")
    parser.add_argument("--cues-after", type=Path, help="vmusprod_cues.py output of this code")
    args = parser.parse_args()
    if args.metrics_json:
        lines, metrics = quality(args.songs)
        print("\n".join(lines))
        args.metrics_json.write_text(json.dumps(metrics, indent=1))
    elif args.only:
        part = {"speed": decode_speed, "e2e": end_to_end, "quality": lambda: quality(args.songs)[0],
                "nll": validation_nll, "int8": int8_vs_fp32, "int8-nll": graph_nll,
                "musicality": lambda: (musicality(args.cues_before, args.cues_after)[0] if args.cues_after
                                       else musicality_now(args.cues_before))}[args.only]()
        print("\n".join(part))
    else:
        print(run(args.songs))
