"""Log-mel -> audio: Griffin-Lim (no learned weights) or the learned vocoder's ONNX graph + a numpy iSTFT.

Griffin-Lim: the mel magnitudes go back to linear-frequency magnitudes through the
pseudo-inverse of the mel filter bank (negative values clipped), then `N_ITER`
Griffin-Lim iterations with momentum (librosa's fast variant) recover a phase.
Seeded, so the same log-mel always gives the same audio. Known limit: phase is only
consistent within one call: a streaming decode crossfades chunks
(engine/codec/runtime.py), where partials of two chunks may beat for a moment.

The learned vocoder (engine/nets/vocoder.py, a small Vocos-like net) predicts each
frame's STFT (magnitude and phase) in one pass; `istft` turns it into audio exactly as
the training did (`nets.spectral.istft`). Its output depends on `context_frames` of
log-mel each side only, so chunks given that much context join without a seam.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

N_ITER = 32
SEED = 0
GRIFFIN_LIM = "griffin-lim"
LEARNED = "vocos"


@functools.lru_cache(maxsize=4)
def mel_inverse(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=sample_rate / 2)
    return np.linalg.pinv(basis).astype(np.float32)


def logmel_to_audio(logmel: np.ndarray, sample_rate: int, n_fft: int, hop: int, n_iter: int = N_ITER) -> np.ndarray:
    """(n_mels, frames) natural-log mel magnitudes -> float32 audio of frames * hop samples, by Griffin-Lim."""
    import librosa

    inverse = mel_inverse(sample_rate, n_fft, logmel.shape[0])
    magnitude = np.maximum(inverse @ np.exp(logmel.astype(np.float32)), 0.0)
    magnitude = np.concatenate([magnitude, magnitude[:, -1:]], axis=1)  # a centred STFT of frames*hop samples has frames+1
    audio = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop, win_length=n_fft, n_fft=n_fft,
                               center=True, length=logmel.shape[1] * hop,
                               random_state=np.random.default_rng(SEED), init="random")
    return audio.astype(np.float32)


def istft(real: np.ndarray, imag: np.ndarray, hop: int) -> np.ndarray:
    """(n_fft/2+1, F) spectrum, n_fft = 4 hops -> F * hop samples; frame i centred on sample i * hop,
    periodic Hann synthesis window, divided by the summed squared window (as nets.spectral.istft)."""
    n_fft, frames = 4 * hop, real.shape[1]
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    pieces = (np.fft.irfft(real + 1j * imag, n=n_fft, axis=0).astype(np.float32) * window[:, None])
    pieces = pieces.reshape(4, hop, frames)
    out = np.zeros((frames + 3, hop), np.float32)
    envelope = np.zeros((frames + 3, hop), np.float32)
    squared = (window ** 2).reshape(4, hop)
    for k in range(4):  # piece k of frame i lands in block i + k
        out[k:k + frames] += pieces[k].T
        envelope[k:k + frames] += squared[k]
    audio = (out / np.maximum(envelope, 1e-8)).reshape(-1)
    return audio[2 * hop:2 * hop + frames * hop]


class GriffinLim:
    name = GRIFFIN_LIM
    exact = False  # chunks are crossfaded

    def __init__(self, sample_rate: int, n_fft: int, hop: int):
        self.sample_rate, self.n_fft, self.hop = sample_rate, n_fft, hop

    def __call__(self, logmel: np.ndarray) -> np.ndarray:
        return logmel_to_audio(logmel, self.sample_rate, self.n_fft, self.hop)


class LearnedVocoder:
    name = LEARNED
    exact = True  # chunks with `context_frames` each side join without a seam

    def __init__(self, graph: Path, hop: int, context_frames: int, threads: int = 0):
        from ..runtime.sessions import open_session

        self.session = open_session(graph, threads)
        self.hop, self.context_frames = hop, context_frames

    def __call__(self, logmel: np.ndarray) -> np.ndarray:
        real, imag = self.session.run(None, {"logmel": logmel[None].astype(np.float32)})
        return istft(real[0], imag[0], self.hop)
