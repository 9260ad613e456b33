"""The mel codec: EnCodec-32k's token interface over a log-mel front end.

    audio (32 kHz mono) -> log-mel, 128 bands, hop 320 (100 Hz)
      -> two frames stacked per token (50 Hz), normalised, projected to `latent_dim`
         = the continuous latent (what a latent diffusion model like MTM would denoise)
      -> residual vector quantiser, `codebooks` x `codebook_size` (4 x 2048, as EnCodec-32k)
         = the tokens; id `codebook_size` (2048) is the special id and dequantises to nothing
    tokens -> summed code vectors -> `MelDecoder` (a small dilated conv net) -> log-mel
      -> a vocoder outside this net (Griffin-Lim or the learned one, engine/codec/vocoder.py)

The projection starts as PCA of the stacked frames and the codebooks are fitted by
residual k-means (engine/training/codec.py); the decoder is trained with an L1 loss
on log-mel, on quantised latents and on continuous ones, so one decoder serves both.
Everything here exports to ONNX (the STFT is a convolution with a windowed DFT basis).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class CodecConfig:
    sample_rate: int = 32_000
    n_fft: int = 1024
    hop: int = 320  # mel frames at 100 Hz
    n_mels: int = 128
    stack: int = 2  # mel frames per token: tokens at 50 Hz, 640 samples apart
    latent_dim: int = 128
    codebooks: int = 4
    codebook_size: int = 2048
    hidden: int = 192
    dilations: tuple[int, ...] = (1, 2, 4)

    @property
    def token_hop(self) -> int:
        return self.hop * self.stack

    @property
    def frame_dim(self) -> int:
        return self.n_mels * self.stack

    @property
    def special_id(self) -> int:
        return self.codebook_size

    @property
    def bits_per_second(self) -> float:
        return self.codebooks * np.log2(self.codebook_size) * self.sample_rate / self.token_hop


TINY = dict(n_mels=32, latent_dim=8, codebooks=2, codebook_size=16, hidden=16, dilations=(1,))


def mel_basis(config: CodecConfig) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) Slaney mel filters up to Nyquist, float32 (librosa's)."""
    import librosa

    return librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                               fmin=0.0, fmax=config.sample_rate / 2).astype(np.float32)


class MelFrontend(nn.Module):
    """Audio (B, N) with N a multiple of the token hop -> log-mel (B, n_mels, 2 N / token_hop)."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        n = config.n_fft
        window = np.hanning(n + 1)[:-1]  # periodic Hann, as librosa's STFT
        k = np.arange(n // 2 + 1)[:, None] * np.arange(n)[None, :] * 2 * np.pi / n
        basis = np.concatenate([np.cos(k) * window, -np.sin(k) * window]).astype(np.float32)
        self.register_buffer("dft", torch.from_numpy(basis)[:, None, :])
        self.register_buffer("mel", torch.from_numpy(mel_basis(config)))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        half = self.config.n_fft // 2
        padded = F.pad(audio[:, None, :], (half, half))
        spectrum = F.conv1d(padded, self.dft, stride=self.config.hop)[..., :-1]  # drop the frame past the end
        bins = self.config.n_fft // 2 + 1
        magnitude = torch.sqrt(spectrum[:, :bins] ** 2 + spectrum[:, bins:] ** 2 + 1e-12)
        return torch.log(torch.clamp(torch.matmul(self.mel, magnitude), min=LOG_FLOOR))


def stack_frames(logmel: torch.Tensor, stack: int) -> torch.Tensor:
    """(B, n_mels, S*T) -> (B, T, S*n_mels), frames of one token side by side."""
    b, m, frames = logmel.shape
    return logmel.reshape(b, m, frames // stack, stack).permute(0, 2, 3, 1).reshape(b, frames // stack, stack * m)


def unstack_frames(tokens: torch.Tensor, stack: int) -> torch.Tensor:
    """The inverse of `stack_frames`."""
    b, t, d = tokens.shape
    m = d // stack
    return tokens.reshape(b, t, stack, m).permute(0, 3, 1, 2).reshape(b, m, t * stack)


class ResidualBlock(nn.Module):
    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(F.gelu(self.conv(F.gelu(x))))


class MelDecoder(nn.Module):
    """Latent (B, T, D) -> normalised stacked log-mel (B, T, S*n_mels); a linear path
    (initialised as the inverse PCA) plus a dilated conv net that learns the rest."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.linear = nn.Linear(config.latent_dim, config.frame_dim)
        self.inp = nn.Conv1d(config.latent_dim, config.hidden, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(config.hidden, d) for d in config.dilations])
        self.out = nn.Conv1d(config.hidden, config.frame_dim, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def context(self) -> int:
        """Tokens each side that reach an output token."""
        return 1 + sum(block.conv.dilation[0] for block in self.blocks)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.out(F.gelu(self.blocks(self.inp(latent.transpose(1, 2))))).transpose(1, 2)
        return self.linear(latent) + x


class MelCodec(nn.Module):
    def __init__(self, config: CodecConfig = CodecConfig()):
        super().__init__()
        self.config = config
        self.frontend = MelFrontend(config)
        self.register_buffer("mean", torch.zeros(config.frame_dim))
        self.register_buffer("std", torch.ones(config.frame_dim))
        self.project = nn.Linear(config.frame_dim, config.latent_dim)
        # one extra all-zero row per codebook: the special id
        self.register_buffer("codebooks", torch.zeros(config.codebooks, config.codebook_size + 1, config.latent_dim))
        self.decoder = MelDecoder(config)

    # -- encoder side ----------------------------------------------------------
    def frames(self, audio: torch.Tensor) -> torch.Tensor:
        """Normalised stacked log-mel frames (B, T, S*n_mels) of audio (B, N)."""
        return (stack_frames(self.frontend(audio), self.config.stack) - self.mean) / self.std

    def encode_latent(self, audio: torch.Tensor) -> torch.Tensor:
        return self.project(self.frames(audio))

    def quantize(self, latent: torch.Tensor) -> torch.Tensor:
        """Codes (B, codebooks, T), int64, by nearest code vector on the running residual."""
        residual, codes = latent, []
        for q in range(self.config.codebooks):
            book = self.codebooks[q, :-1]
            distance = (book * book).sum(-1) - 2 * torch.matmul(residual, book.t())  # |r|^2 is the same for all
            index = torch.argmin(distance, dim=-1)
            codes.append(index)
            residual = residual - F.embedding(index, book)
        return torch.stack(codes, dim=1)

    # -- decoder side ----------------------------------------------------------
    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """Latent (B, T, D): the sum of each codebook's vector (the special id adds zero)."""
        return sum(F.embedding(codes[:, q], self.codebooks[q]) for q in range(self.config.codebooks))

    def decode_frames(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised stacked log-mel frames (B, T, S*n_mels) from a latent."""
        return self.decoder(latent)

    def decode_logmel(self, latent: torch.Tensor) -> torch.Tensor:
        """Log-mel (B, n_mels, S*T) from a latent."""
        return unstack_frames(self.decode_frames(latent) * self.std + self.mean, self.config.stack)


def pad_to_tokens(audio: np.ndarray, config: CodecConfig) -> np.ndarray:
    """Zeros at the end up to a whole number of tokens (at least one)."""
    n = max(1, int(np.ceil(len(audio) / config.token_hop))) * config.token_hop
    return np.pad(audio, (0, n - len(audio))).astype(np.float32)
