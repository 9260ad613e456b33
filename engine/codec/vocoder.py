"""Log-mel -> audio by Griffin-Lim (the codec's vocoder; no learned weights).

The mel magnitudes go back to linear-frequency magnitudes through the
pseudo-inverse of the mel filter bank (negative values clipped), then
`N_ITER` Griffin-Lim iterations with momentum (librosa's fast variant) recover
a phase. Seeded, so the same log-mel always gives the same audio. Known limit:
phase is only consistent within one call: a streaming decode crossfades chunks
(engine/codec/runtime.py), where partials of two chunks may beat for a moment.
"""
from __future__ import annotations

import functools

import numpy as np

N_ITER = 32
SEED = 0


@functools.lru_cache(maxsize=4)
def mel_inverse(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=sample_rate / 2)
    return np.linalg.pinv(basis).astype(np.float32)


def logmel_to_audio(logmel: np.ndarray, sample_rate: int, n_fft: int, hop: int, n_iter: int = N_ITER) -> np.ndarray:
    """(n_mels, frames) natural-log mel magnitudes -> float32 audio of frames * hop samples."""
    import librosa

    inverse = mel_inverse(sample_rate, n_fft, logmel.shape[0])
    magnitude = np.maximum(inverse @ np.exp(logmel.astype(np.float32)), 0.0)
    magnitude = np.concatenate([magnitude, magnitude[:, -1:]], axis=1)  # a centred STFT of frames*hop samples has frames+1
    audio = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop, win_length=n_fft, n_fft=n_fft,
                               center=True, length=logmel.shape[1] * hop,
                               random_state=np.random.default_rng(SEED), init="random")
    return audio.astype(np.float32)
