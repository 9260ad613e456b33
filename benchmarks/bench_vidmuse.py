"""VidMuse decode step: ONNX Runtime with the cross K/V cached vs torch recomputing them every step
(the reference's way) vs torch with them cached, at 60 and 3,000 video tokens; and one window's
generation time (real-time factor) through the runtime. The CPU config with random weights (step time
does not depend on the values).

Alignment of the shipped weights (models/vidmuse; skipped without them or without the paired corpus):
for validation clips of the paired corpus (POP909 701-800, cut on the music's downbeats and phrase
starts), music generated from each clip is graded against that clip and, as the baseline, the same
audio against another clip: the share of cuts graded A/B by the critique, the critique's agreement
(onsets/changes at the cuts, above chance) and beat phase (cuts on heard beats). The corpus's own audio
and its codec round trip are graded the same way, to show what a matched pair scores. Spectrograms of
three generated clips beside the real audio: benchmarks/figures/vidmuse-spectrograms.png.

    python benchmarks/bench_vidmuse.py               # print everything (make bench appends it)
    python benchmarks/bench_vidmuse.py --alignment   # only the alignment, appended to BENCHMARKS.md
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
ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "vidmuse"
FIGURE = ROOT / "benchmarks" / "figures" / "vidmuse-spectrograms.png"
ALIGN_CLIPS = 6  # validation clips of the paired corpus, each against its own video and the next one's
ALIGN_SEED = 0
ALIGN_TITLE = "VidMuse shipped weights: cut alignment on validation clips, own clip vs another clip"


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


def corpus_clips(count: int) -> list[Path]:
    """The first `count` validation videos of the paired corpus (each beside its .flac)."""
    from cuesmith.engine.corpus.audio import corpus_dir

    return [v for v in sorted((corpus_dir() / "valid").glob("*.mp4")) if v.with_suffix(".flac").is_file()][:count]


def rhythm_facts(analysis, audio: Path) -> dict:
    """The critique's view of `audio` against `analysis`: share of cuts graded A/B, agreement above
    chance (key moments against the music's changes), beat phase of the cuts."""
    from cuesmith.engine.critique import moments
    from cuesmith.engine.critique.assess import beat_phase
    from cuesmith.engine.critique.music import music_facts

    facts = music_facts(audio)
    graded = moments.grade_moments(analysis, facts)
    cuts = [m for m in graded if m.kind == "cut"]
    chance = moments.chance_credit(facts, analysis.fps, analysis.duration)
    return {"cuts_ab": sum(m.grade in "AB" for m in cuts) / max(1, len(cuts)),
            "agreement": moments.agreement(graded, chance) or 0.0, "beat_phase": beat_phase(analysis, facts) or 0.0}


def write_wav(path: Path, audio: np.ndarray, rate: int) -> Path:
    import soundfile

    soundfile.write(path, np.clip(audio, -1, 1), rate, subtype="PCM_16")
    return path


def alignment_audio(model, clips: list[Path], analyses: list, folder: Path) -> dict[str, list[Path]]:
    """Per clip: the corpus audio, its codec round trip, and music the model generates from the clip."""
    from cuesmith.engine.music.audio import load_audio

    audio: dict[str, list[Path]] = {"corpus audio": [], "corpus audio, codec round trip": [],
                                    "generated (shipped weights)": []}
    codec, rate = model.codec, model.codec.sample_rate
    for clip, analysis in zip(clips, analyses):
        duration = analysis.duration
        real = load_audio(clip.with_suffix(".flac"))
        mono = real.stereo.mean(axis=1)
        audio["corpus audio"].append(clip.with_suffix(".flac"))
        samples = int(round(duration * rate))
        round_trip = codec.decode_codes(codec.encode(mono, real.native_rate).codes, samples)
        audio["corpus audio, codec round trip"].append(write_wav(folder / f"{clip.stem}.codec.wav", round_trip, rate))
        features = model.video_features(clip, 0.0, duration)
        codes = model.generate_codes(features, duration, 1, ALIGN_SEED, model.guidance)[0]
        generated = codec.decode_codes(codes, samples)
        audio["generated (shipped weights)"].append(write_wav(folder / f"{clip.stem}.generated.wav", generated, rate))
    return audio


def alignment_rows(audio: dict[str, list[Path]], analyses: list) -> list[str]:
    rows = []
    n = len(analyses)
    for name, paths in audio.items():
        own = [rhythm_facts(analyses[i], paths[i]) for i in range(n)]
        other = [rhythm_facts(analyses[(i + 1) % n], paths[i]) for i in range(n)]
        mean = lambda facts, key: float(np.mean([f[key] for f in facts]))  # noqa: E731
        wins = sum(o["cuts_ab"] + o["agreement"] > x["cuts_ab"] + x["agreement"] for o, x in zip(own, other))
        rows.append(f"| {name} | {mean(own, 'cuts_ab'):.2f} | {mean(other, 'cuts_ab'):.2f} | "
                    f"{mean(own, 'agreement'):.2f} | {mean(other, 'agreement'):.2f} | {mean(own, 'beat_phase'):.2f} | "
                    f"{mean(other, 'beat_phase'):.2f} | {wins} of {n} |")
    return rows


def spectrograms(audio: dict[str, list[Path]], analyses: list, count: int = 3) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile

    names = ("generated (shipped weights)", "corpus audio, codec round trip", "corpus audio")
    fig, axes = plt.subplots(len(names), count, figsize=(5 * count, 2.6 * len(names)), squeeze=False)
    for col in range(count):
        cuts = [c.time for c in analyses[col].cuts]
        for row, name in enumerate(names):
            samples, rate = soundfile.read(audio[name][col], dtype="float32")
            samples = samples.mean(axis=1) if samples.ndim > 1 else samples
            ax = axes[row, col]
            ax.specgram(samples, NFFT=1024, Fs=rate, noverlap=512, cmap="magma", vmin=-120)
            for t in cuts:
                ax.axvline(t, color="c", lw=1.0, ls="--")
            ax.set_ylim(0, 6000)
            ax.set_title(f"{name}: {Path(audio['corpus audio'][col]).stem}", fontsize=8)
            ax.tick_params(labelsize=6)
    axes[-1, 0].set_xlabel("seconds (dashed: the clip's cuts); Hz up to 6 kHz", fontsize=7)
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=70)
    plt.close(fig)
    return FIGURE


def alignment(count: int = ALIGN_CLIPS) -> list[str]:
    """The alignment section for the shipped weights; [] when they or the paired corpus are missing."""
    from cuesmith.engine import Engine
    from cuesmith.engine.pipelines.vidmuse import VidMuse

    clips = corpus_clips(count)
    if not (SHIPPED / "manifest.json").is_file() or len(clips) < 2:
        return []
    model = VidMuse(SHIPPED)
    engine = Engine()
    analyses = [engine.analyze(str(c)) for c in clips]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        audio = alignment_audio(model, clips, analyses, Path(tmp))
        spent = time.perf_counter() - began
        rows = alignment_rows(audio, analyses)
        figure = spectrograms(audio, analyses)
    seconds = sum(a.duration for a in analyses)
    cuts = sum(len(a.cuts) for a in analyses)
    return [
        "",
        f"Alignment, shipped weights `{model.model.manifest['id']}`: {len(clips)} validation clips of the paired "
        f"corpus ({', '.join(c.stem for c in clips)}; {seconds:.0f} s, {cuts} cuts found by `analyze`), seed "
        f"{ALIGN_SEED}, CFG {model.guidance.cfg_scale:g}, top-k {model.guidance.top_k}. 'own': graded against the "
        "clip the music belongs to; 'other': the same audio against the next clip (the baseline: what the "
        "grades give when the music knows nothing of the cuts). Wins: own > other in cuts A/B + agreement.",
        "",
        "| music | cuts A/B, own | cuts A/B, other | agreement, own | agreement, other | beat phase, own | "
        "beat phase, other | wins |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Generation and codec decoding for the {len(clips)} clips: {spent:.0f} s for {seconds:.0f} s of audio "
        f"(real-time factor {spent / seconds:.2f}, codec round trips included). Spectrograms: "
        f"{figure.relative_to(ROOT)}.",
    ]


def run() -> str:
    import torch

    from cuesmith.engine.nets.vidmuse import CONFIGS, VidMuse
    from cuesmith.engine.training.loop import save
    from cuesmith.engine.training.vidmuse import CONFIGS as TRAIN
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
        *alignment(),
    ])


if __name__ == "__main__":
    if "--alignment" in sys.argv:  # only the shipped weights' alignment, appended to BENCHMARKS.md as its own section
        import run as runner

        section = "\n".join(alignment()).strip()
        print(section)
        if section:
            runner.append(section, ALIGN_TITLE)
    else:
        print(run())
