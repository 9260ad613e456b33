"""MTM (issue 17): one DiT step through ONNX Runtime vs torch eager, and the diffusion time of a 30 s clip.

Untrained weights of the `cpu` config (speed does not depend on them); a 30 s clip is 1500 latent frames
(the codec's 50 Hz). With CFG each step runs the graph twice (conditional and null).

Does conditioning steer? With the shipped model (models/mtm), 20 descriptions (tempo class x mood x mode)
each give 10 s of audio, conditioned (CFG at the manifest's guidance) and unconditioned (the null
condition alone, guidance 0, same noise); the project's audio analysis (music/audio.py) reads back tempo,
mode and mood (pipelines/mtm/library.py's valence/arousal reading). The "real" row reads the validation
renders the same way against their annotations: how far the reading itself can be trusted.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

TITLE = "MTM: DiT step, ONNX Runtime vs torch eager; does conditioning steer (issue 17)"
FRAMES, TOKENS, REPEATS, STEPS = 1500, 32, 3, 25


def best_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def run() -> str:
    return "\n\n".join([step_speed(), steering()])


def step_speed() -> str:
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


SECONDS = 10.0
TEMPOS = {"slow": 72, "medium": 104, "fast": 132}
MOODS = {"relax": "major", "hope": "major", "happy": "major", "sad": "minor", "anxious": "minor"}
INSTRUMENTS = ("piano", "guitar and strings", "electric piano", "flute and strings")


def descriptions() -> list[tuple[str, str, str, str]]:
    """20 (text, tempo class, mood, mode): every tempo x mood, then five more in other instruments."""
    asked = [(t, m) for t in TEMPOS for m in MOODS]
    asked += [("medium", "sad"), ("fast", "happy"), ("slow", "relax"), ("fast", "anxious"), ("slow", "hope")]
    return [(f"{t} {m} {MOODS[m]} pop music, {TEMPOS[t]} bpm, {INSTRUMENTS[n % len(INSTRUMENTS)]}", t, m, MOODS[m])
            for n, (t, m) in enumerate(asked)]


def reading(samples: np.ndarray, rate: int) -> tuple[str, str, str, float]:
    """(tempo class, mode, mood, bpm) of audio, as the project's analysis reads it."""
    from cuesmith.engine.music import mood
    from cuesmith.engine.music.audio import analyze_audio, audio_from_samples
    from cuesmith.engine.pipelines.mtm.describe import tempo_class
    from cuesmith.engine.pipelines.mtm.library import valence_arousal

    analysis = analyze_audio(audio_from_samples(samples, rate, "generated"))
    bpm = float(analysis.tempo or 0.0)
    return tempo_class(bpm) if bpm else "none", analysis.mode or "none", mood.label(*valence_arousal(analysis)), bpm


def agreement(rows: list[tuple]) -> str:
    """Shares of (asked, read) rows that agree on tempo class, mode, mood; and the BPM's rank correlation."""
    n = len(rows)
    tempo = sum(r[0][0] == r[1][0] for r in rows) / n
    mode = sum(r[0][1] == r[1][1] for r in rows) / n
    feeling = sum(r[0][2] == r[1][2] for r in rows) / n
    asked, read = np.array([r[0][3] for r in rows]), np.array([r[1][3] for r in rows])
    rho = np.corrcoef(np.argsort(np.argsort(asked)), np.argsort(np.argsort(read)))[0, 1] if read.std() else float("nan")
    return f"{tempo:.2f} | {mode:.2f} | {feeling:.2f} | {rho:.2f}"


def steering() -> str:
    from cuesmith.engine.pipelines import load_family
    from cuesmith.engine.pipelines.mtm.describe import attributes_of
    from cuesmith.engine.errors import CuesmithError

    try:
        model = load_family("mtm", None)
    except CuesmithError as error:
        return f"Steering not measured: {error}"
    conditioned, unconditioned = [], []
    began = time.perf_counter()
    for seed, (text, tempo, feeling, mode) in enumerate(descriptions()):
        asked = (tempo, mode, feeling, float(TEMPOS[tempo]))
        for guidance, rows in ((None, conditioned), (0.0, unconditioned)):
            latent = model.latents(text, attributes_of(text), SECONDS, 1, seed, guidance=guidance)[0]
            audio = model.codec.decode_latent(latent, int(SECONDS * model.codec.sample_rate))
            rows.append((asked, reading(audio, model.codec.sample_rate)))
    spent = time.perf_counter() - began
    real = real_rows(model)
    lines = [
        f"Model: {model.model.manifest.get('id', 'mtm')} ({model.config['width']} wide, {model.config['layers']} layers, "
        f"text encoder {model.text.name}), "
        f"{len(conditioned)} descriptions, {SECONDS:.0f} s each, {model.steps} steps, guidance {model.guidance} "
        f"vs 0 (null condition), same noise per description; {spent:.0f} s for all {2 * len(conditioned)} clips.",
        "",
        "| audio | tempo class agrees | mode agrees | mood agrees | BPM rank correlation (asked vs read) |",
        "| --- | --- | --- | --- | --- |",
        f"| conditioned on the description | {agreement(conditioned)} |",
        f"| unconditioned (baseline) | {agreement(unconditioned)} |",
    ]
    if real:
        lines.append(f"| real validation renders vs their annotations ({len(real)}) | {agreement(real)} |")
    return "\n".join(lines)


def real_rows(model, limit: int = 20) -> list[tuple]:
    """Validation renders of the corpus, read by the analysis, against their annotations (when present)."""
    from cuesmith.engine.corpus.audio import Excerpt, corpus_dir
    from cuesmith.engine.music.audio import load_audio
    from cuesmith.engine.pipelines.mtm.describe import tempo_class
    from cuesmith.engine.pipelines.mtm.library import valence_arousal
    from cuesmith.engine.music import mood
    from cuesmith.engine.music.audio import analyze_audio

    rows = []
    for path in sorted((corpus_dir() / "valid").glob("*.flac"))[:limit]:
        excerpt = Excerpt.load(path.with_suffix(".json"))
        beats = [t for t, _ in excerpt.beats]
        bpm = 60.0 / float(np.median(np.diff(beats)))
        mode = (excerpt.key or {}).get("mode", "none")
        audio = load_audio(path)
        analysis = analyze_audio(audio)
        asked = (tempo_class(bpm), mode, mood.label(*valence_arousal(analysis, mode, bpm)), bpm)
        rows.append((asked, reading(audio.stereo.mean(axis=1), audio.native_rate)))
    return rows
