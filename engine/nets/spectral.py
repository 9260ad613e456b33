"""Spectral pieces shared by the learned vocoder and the waveform codec (training only: torch).

`istft` is the overlap-add the vocoder's run-time numpy twin (engine/codec/vocoder.py,
`istft`) computes too, for an FFT size of exactly four hops: frames centred on i * hop,
a periodic Hann synthesis window, divided by the summed squared window.
`MultiResolutionMelLoss` is the L1 distance of log-mel spectrograms at several FFT
sizes: what the benchmark's multi-resolution log-mel distance measures, made a loss.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOG_FLOOR = 1e-5


def hann(n: int) -> torch.Tensor:
    return torch.from_numpy(np.hanning(n + 1)[:-1].astype(np.float32))  # periodic, as librosa's


def istft(real: torch.Tensor, imag: torch.Tensor, hop: int, window: torch.Tensor) -> torch.Tensor:
    """(B, n_fft/2+1, F) spectrum -> (B, F * hop) audio; frame i is centred on sample i * hop."""
    n_fft = window.numel()
    frames = torch.fft.irfft(torch.complex(real, imag), n=n_fft, dim=1) * window[None, :, None]  # (B, n_fft, F)
    count = frames.shape[-1]
    length = (count - 1) * hop + n_fft
    out = F.fold(frames, (1, length), (1, n_fft), stride=(1, hop))[:, 0, 0]
    envelope = F.fold((window ** 2)[None, :, None].expand(1, n_fft, count), (1, length), (1, n_fft),
                      stride=(1, hop))[0, 0, 0]
    half = n_fft // 2
    return (out / envelope.clamp(min=1e-8))[:, half:half + count * hop]


class MultiResolutionMelLoss(nn.Module):
    """Mean over FFT sizes of L1(log mel(a), log mel(b)); audio (B, N) at `sample_rate`."""

    def __init__(self, sample_rate: int, sizes: tuple[int, ...] = (512, 1024, 2048), n_mels: int = 64):
        super().__init__()
        import librosa

        self.sizes = sizes
        for n in sizes:
            self.register_buffer(f"window_{n}", hann(n))
            basis = librosa.filters.mel(sr=sample_rate, n_fft=n, n_mels=n_mels, fmin=0.0, fmax=sample_rate / 2)
            self.register_buffer(f"mel_{n}", torch.from_numpy(basis.astype(np.float32)))

    def logmel(self, audio: torch.Tensor, n: int) -> torch.Tensor:
        spectrum = torch.stft(audio, n, hop_length=n // 4, window=getattr(self, f"window_{n}"), center=True,
                              return_complex=True)
        magnitude = torch.sqrt(spectrum.real ** 2 + spectrum.imag ** 2 + 1e-9)
        return torch.log(torch.clamp(torch.matmul(getattr(self, f"mel_{n}"), magnitude), min=LOG_FLOOR))

    def forward(self, produced: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(F.l1_loss(self.logmel(produced, n), self.logmel(target, n)) for n in self.sizes) / len(self.sizes)
