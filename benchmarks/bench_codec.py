"""The mel codec against Opus and the k-means mel baseline, on validation renders (issue 15).

Audio: the first `EXCERPTS` validation excerpts of the corpus (POP909 701-800,
32 kHz mono, rendered by `python -m cuesmith.engine.corpus build`; rendered
here if missing). Systems, same run, same audio:
- codec tokens: the shipped model (models/codec) through ONNX Runtime, 4 x 11 bits
  at 50 Hz = 2.2 kbps, with each vocoder: Griffin-Lim (32 iterations) and, if
  shipped, the learned Vocos-like one (engine/nets/vocoder.py); and with the int8
  graphs the manifest ships (if any), learned vocoder where shipped;
- original log-mel: the true log-mel of the audio (no codec) through each vocoder:
  what the vocoder alone costs;
- codec latent: the continuous latent (128 floats at 50 Hz, not a bitrate) decoded
  the same way: what quantisation costs;
- k-means mel baseline: residual k-means straight on the normalised stacked log-mel,
  fitted in the same training run (models/codec/kmeans_baseline.npz), 2.2 kbps,
  decoded by the same Griffin-Lim;
- Opus (PyAV's libopus, 48 kHz, VBR) asked for 2.2, 6 and 12 kbps; its real bitrate
  is counted from the packets (libopus does not go under about 6 kbps).
Measures, against the original: multi-resolution log-mel distance (mean |log10 mel
difference| over FFT sizes 512/1024/2048, 64 bands; lower is better) and chroma
agreement (mean cosine of chroma_stft frames; higher is better). Speed: encode
and decode in multiples of real time, 32 kHz audio, this machine's load, per
vocoder and for int8. Figure: benchmarks/figures/codec-vocoders.png, log-mel
spectrograms of 6 s of one excerpt: original, Griffin-Lim, learned vocoder.
The corpus build rate is in bench_corpus.py.
"""
from __future__ import annotations

import fractions
import time
from pathlib import Path

import numpy as np

TITLE = "Audio codec: quality vs Opus and the k-means mel baseline, speed (issue 15)"
EXCERPTS = 8
RATE = 32_000
OPUS_ASKED_KBPS = (2.2, 6.0, 12.0)  # 2.2 is under libopus's floor: it sends ~5.6
RESOLUTIONS = (512, 1024, 2048)
ROOT = Path(__file__).resolve().parent.parent
FIGURE = ROOT / "benchmarks" / "figures" / "codec-vocoders.png"


def validation_audio() -> list[tuple[str, np.ndarray]]:
    from cuesmith.engine.corpus.audio import build, load_excerpts, plan_variants
    from cuesmith.engine.music.pop909 import VALID_SONGS

    excerpts = load_excerpts("valid")[:EXCERPTS]
    if len(excerpts) < EXCERPTS:
        excerpts = build(plan_variants(list(VALID_SONGS)[:EXCERPTS], 1)).excerpts
    return [(e.id, e.audio()) for e in excerpts]


# -- measures --------------------------------------------------------------------

def logmel10(audio: np.ndarray, n_fft: int) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=audio, sr=RATE, n_fft=n_fft, hop_length=n_fft // 4, n_mels=64, power=1.0)
    return np.log10(np.maximum(mel, 1e-5))


def mel_distance(reference: np.ndarray, test: np.ndarray) -> float:
    n = min(len(reference), len(test))
    return float(np.mean([np.abs(logmel10(reference[:n], f) - logmel10(test[:n], f)).mean() for f in RESOLUTIONS]))


def chroma_agreement(reference: np.ndarray, test: np.ndarray) -> float:
    import librosa

    n = min(len(reference), len(test))
    a = librosa.feature.chroma_stft(y=reference[:n], sr=RATE, n_fft=4096, hop_length=1024)
    b = librosa.feature.chroma_stft(y=test[:n], sr=RATE, n_fft=4096, hop_length=1024)
    cos = (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0) + 1e-9)
    sounding = np.linalg.norm(a, axis=0) > 0
    return float(cos[sounding].mean())


# -- Opus --------------------------------------------------------------------------

def opus_round_trip(audio: np.ndarray, kbps: float) -> tuple[np.ndarray, float]:
    """(decoded audio at 32 kHz aligned to the input, real kbps from the packet sizes)."""
    import io

    import av
    import librosa

    x48 = librosa.resample(audio, orig_sr=RATE, target_sr=48_000, res_type="soxr_hq").astype(np.float32)
    buffer = io.BytesIO()
    payload = 0
    with av.open(buffer, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48_000, layout="mono")
        stream.bit_rate = int(kbps * 1000)
        for start in range(0, len(x48), 960):
            frame = av.AudioFrame.from_ndarray(x48[None, start:start + 960], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48_000, start, fractions.Fraction(1, 48_000)
            for packet in stream.encode(frame):
                payload += packet.size
                container.mux(packet)
        for packet in stream.encode(None):
            payload += packet.size
            container.mux(packet)
    buffer.seek(0)
    chunks = []
    with av.open(buffer, "r") as container:
        for frame in container.decode(audio=0):
            chunks.append(frame.to_ndarray().reshape(-1))
    decoded = librosa.resample(np.concatenate(chunks).astype(np.float32), orig_sr=48_000, target_sr=RATE,
                               res_type="soxr_hq")
    return align(audio, decoded), payload * 8 / (len(audio) / RATE) / 1000


def align(reference: np.ndarray, test: np.ndarray, max_lag: int = 4000) -> np.ndarray:
    """`test` shifted by the lag (0..max_lag samples late) that best matches `reference`."""
    n = min(len(reference), len(test)) - max_lag
    scores = [float(np.dot(reference[:n], test[lag:lag + n])) for lag in range(0, max_lag, 8)]
    coarse = 8 * int(np.argmax(scores))
    fine = range(max(0, coarse - 8), coarse + 9)
    lag = max(fine, key=lambda k: float(np.dot(reference[:n], test[k:k + n])))
    out = test[lag:lag + len(reference)]
    return np.pad(out, (0, len(reference) - len(out)))


# -- the k-means mel baseline ---------------------------------------------------------

def kmeans_round_trip(audio: np.ndarray, baseline: dict, codec) -> np.ndarray:
    import librosa

    from cuesmith.engine.codec.vocoder import logmel_to_audio

    hop, n_fft, stack = codec.hop, codec.n_fft, codec.token_hop // codec.hop
    tokens = int(np.ceil(len(audio) / codec.token_hop))
    x = np.pad(audio, (0, tokens * codec.token_hop - len(audio)))
    spectrum = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, center=True, pad_mode="constant"))[:, :-1]
    basis = librosa.filters.mel(sr=RATE, n_fft=n_fft, n_mels=128, fmin=0.0, fmax=RATE / 2)
    logmel = np.log(np.maximum(basis @ spectrum, 1e-5))
    frames = logmel.reshape(128, tokens, stack).transpose(1, 2, 0).reshape(tokens, stack * 128)
    residual = (frames - baseline["mean"]) / baseline["std"]
    total = np.zeros_like(residual)
    for book in baseline["codebooks"].astype(np.float32):
        chosen = book[np.argmin((book * book).sum(1) - 2 * residual @ book.T, axis=1)]
        residual, total = residual - chosen, total + chosen
    rebuilt = (total * baseline["std"] + baseline["mean"]).reshape(tokens, stack, 128).transpose(2, 0, 1)
    return logmel_to_audio(rebuilt.reshape(128, tokens * stack), RATE, n_fft, hop)[:len(audio)]


# -- run ------------------------------------------------------------------------------

def true_logmel(audio: np.ndarray, codec) -> np.ndarray:
    """The codec front end's log-mel (natural log, 128 bands, 100 Hz) of audio padded to whole tokens."""
    import librosa

    tokens = int(np.ceil(len(audio) / codec.token_hop))
    x = np.pad(audio, (0, tokens * codec.token_hop - len(audio)))
    spectrum = np.abs(librosa.stft(x, n_fft=codec.n_fft, hop_length=codec.hop, center=True, pad_mode="constant"))
    basis = librosa.filters.mel(sr=RATE, n_fft=codec.n_fft, n_mels=128, fmin=0.0, fmax=RATE / 2)
    return np.log(np.maximum(basis @ spectrum[:, :-1], 1e-5)).astype(np.float32)


def timed(function, *args) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    out = function(*args)
    return out, time.perf_counter() - started


def codecs() -> dict:
    """name -> runtime Codec: fp32 with each shipped vocoder, and the shipped int8 graphs."""
    from cuesmith.engine.codec.runtime import Codec

    fp32 = Codec.load(vocoder="griffin-lim")
    files = fp32.model.manifest["stages"]["codec"]["files"]
    out = {"griffin-lim": fp32}
    if "vocoder" in files:
        out["learned"] = Codec.load(vocoder="vocos")
    if any(role.endswith("_int8") for role in files):
        out["int8"] = Codec.load(int8=True, vocoder="vocos" if "vocoder" in files else "griffin-lim")
    return out


def run() -> str:
    runtimes = codecs()
    codec = runtimes["griffin-lim"]
    with np.load(ROOT / "models" / "codec" / "kmeans_baseline.npz") as data:
        baseline = {key: data[key] for key in data.files}
    clips = validation_audio()
    systems: dict[str, list[tuple[float, float]]] = {}
    bitrates: dict[str, list[float]] = {}
    timing: dict[str, float] = {}
    seconds = 0.0
    first: dict[str, np.ndarray] = {}
    for index, (_, audio) in enumerate(clips):
        seconds += len(audio) / RATE
        outputs, encodings = {}, {}
        for name, runtime in runtimes.items():
            encoded, spent = timed(runtime.encode, audio, RATE)
            encodings[name] = encoded
            timing[f"{name} encode"] = timing.get(f"{name} encode", 0.0) + spent
            decoded, spent = timed(runtime.decode_codes, encoded.codes, encoded.samples)
            timing[f"{name} decode"] = timing.get(f"{name} decode", 0.0) + spent
            vocoder = runtime.vocoder.name
            label = f"codec tokens (2.2 kbps), {'int8 graphs, ' if name == 'int8' else ''}{vocoder}"
            outputs[label] = decoded
            if name != "int8":
                outputs[f"original log-mel, {vocoder}"] = runtime.vocoder(true_logmel(audio, codec))[:len(audio)]
        outputs["codec latent (continuous), griffin-lim"] = codec.decode_latent(encodings["griffin-lim"].latent,
                                                                                len(audio))
        outputs["k-means mel baseline (2.2 kbps), griffin-lim"] = kmeans_round_trip(audio, baseline, codec)
        for kbps in OPUS_ASKED_KBPS:
            out, real = opus_round_trip(audio, kbps)
            name = f"Opus asked {kbps:g} kbps"
            outputs[name] = out
            bitrates.setdefault(name, []).append(real)
        for name, out in outputs.items():
            systems.setdefault(name, []).append((mel_distance(audio, out), chroma_agreement(audio, out)))
        if index == 0:
            first = {"original": audio, **{k: v for k, v in outputs.items() if k.startswith("codec tokens")}}
    lines = [f"{len(clips)} validation excerpts ({seconds:.0f} s, POP909 701-800 renders); lower distance and "
             "higher chroma agreement are better.", "",
             "| system | real kbps | multi-res log-mel distance | chroma agreement |", "| --- | --- | --- | --- |"]
    for name, scores in systems.items():
        rate = f"{np.mean(bitrates[name]):.1f}" if name in bitrates else ("2.2" if "2.2" in name else "-")
        lines.append(f"| {name} | {rate} | {np.mean([s[0] for s in scores]):.3f} | "
                     f"{np.mean([s[1] for s in scores]):.3f} |")
    lines += ["", "Speed, multiples of real time (ONNX Runtime default threads; Griffin-Lim 32 iterations; "
              "decode = tokens to audio, vocoder included):", "", "| graphs, vocoder | encode | decode |",
              "| --- | --- | --- |"]
    for name, runtime in runtimes.items():
        lines.append(f"| {'int8' if name == 'int8' else 'fp32'}, {runtime.vocoder.name} | "
                     f"{seconds / timing[f'{name} encode']:.0f}x | {seconds / timing[f'{name} decode']:.1f}x |")
    lines += ["", f"Spectrograms (first excerpt, 6 s): {spectrograms(first).relative_to(ROOT)}."]
    return "\n".join(lines)


def spectrograms(signals: dict[str, np.ndarray], seconds: float = 6.0) -> Path:
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(signals), 1, figsize=(12, 2.6 * len(signals)), squeeze=False)
    for ax, (name, audio) in zip(axes[:, 0], signals.items()):
        mel = librosa.feature.melspectrogram(y=audio[:int(seconds * RATE)], sr=RATE, n_fft=2048, hop_length=256,
                                             n_mels=128)
        ax.imshow(librosa.power_to_db(mel, ref=1.0, top_db=80), origin="lower", aspect="auto", cmap="magma",
                  extent=(0, seconds, 0, 128))
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("mel band", fontsize=7)
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=80)
    plt.close(fig)
    return FIGURE


if __name__ == "__main__":
    print(run())
