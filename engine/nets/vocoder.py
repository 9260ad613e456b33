"""A small Vocos-like vocoder: the codec's log-mel -> STFT magnitude and phase -> audio by iSTFT.

    log-mel (B, n_mels, F), natural log, 100 Hz (the codec's front end)
      -> Conv1d(kernel 7) -> LayerNorm -> `layers` ConvNeXt blocks (depthwise conv 7, LayerNorm,
         pointwise dim -> ff -> dim with GELU, layer scale) -> LayerNorm
      -> Linear -> log magnitude and phase of each of n_fft/2+1 bins
      -> real = exp(m) cos(p), imag = exp(m) sin(p)   (the ONNX graph ends here)
      -> inverse STFT, n_fft = 4 hops, Hann window   (numpy at run time, `nets.spectral.istft` in training)

As Vocos (Siuzdenko 2023) but without the GAN: trained on the multi-resolution log-mel
loss only (engine/training/vocoder.py), small enough to train in under an hour on one CPU
thread. Every frame's spectrum comes out at once, so decoding costs one pass of a small
convolutional net, not Griffin-Lim's iterations.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .spectral import hann, istft

MAX_LOG_MAGNITUDE = 4.6  # exp(4.6) ~ 100, Vocos's clip


@dataclass(frozen=True)
class VocoderConfig:
    sample_rate: int = 32_000
    n_mels: int = 128  # the codec's log-mel bands
    hop: int = 320  # the codec's mel hop (100 Hz)
    dim: int = 192
    ff: int = 576
    layers: int = 6
    kernel: int = 7

    @property
    def n_fft(self) -> int:
        """Synthesis FFT size: four hops (75 % overlap), which the run-time overlap-add assumes."""
        return 4 * self.hop

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def to_dict(self) -> dict:
        return asdict(self)


CONFIGS = {
    "tiny": VocoderConfig(n_mels=32, dim=16, ff=32, layers=1),
    "cpu": VocoderConfig(),
}


class ConvNeXtBlock(nn.Module):
    def __init__(self, config: VocoderConfig):
        super().__init__()
        self.depthwise = nn.Conv1d(config.dim, config.dim, config.kernel, padding=config.kernel // 2, groups=config.dim)
        self.norm = nn.LayerNorm(config.dim)
        self.up = nn.Linear(config.dim, config.ff)
        self.down = nn.Linear(config.ff, config.dim)
        self.scale = nn.Parameter(torch.full((config.dim,), 1.0 / config.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, dim, F)
        y = self.depthwise(x).transpose(1, 2)
        y = self.down(F.gelu(self.up(self.norm(y)))) * self.scale
        return x + y.transpose(1, 2)


class Vocoder(nn.Module):
    def __init__(self, config: VocoderConfig = VocoderConfig()):
        super().__init__()
        self.config = config
        self.embed = nn.Conv1d(config.n_mels, config.dim, config.kernel, padding=config.kernel // 2)
        self.norm_in = nn.LayerNorm(config.dim)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(config) for _ in range(config.layers)])
        self.norm_out = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, 2 * config.bins)
        self.register_buffer("window", hann(config.n_fft))

    @property
    def context(self) -> int:
        """Mel frames each side that reach an output frame."""
        return (self.config.kernel // 2) * (1 + self.config.layers)

    def spectrum(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, n_mels, F) -> real, imag (B, bins, F)."""
        x = self.norm_in(self.embed(logmel).transpose(1, 2)).transpose(1, 2)
        x = self.norm_out(self.blocks(x).transpose(1, 2))
        magnitude, phase = self.head(x).transpose(1, 2).chunk(2, dim=1)
        magnitude = torch.exp(torch.clamp(magnitude, max=MAX_LOG_MAGNITUDE))
        return magnitude * torch.cos(phase), magnitude * torch.sin(phase)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, F) -> audio (B, F * hop)."""
        return istft(*self.spectrum(logmel), self.config.hop, self.window)
