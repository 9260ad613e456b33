"""A waveform RVQ autoencoder (SEANet-like, as EnCodec) with EnCodec-32k's token interface.

    audio (B, N), 32 kHz, N a multiple of 640
      -> Conv1d(7) -> per stride s in `strides` (4, 4, 5, 8; product 640 = 50 Hz):
         a dilated residual unit, then a strided Conv1d (kernel 2s) doubling the channels
      -> Conv1d(3) to `latent_dim`                       = the continuous latent (B, T, D)
      -> residual VQ, `codebooks` x `codebook_size`, EMA codebooks, dead codes re-seeded
         (id `codebook_size` is the special id and dequantises to nothing)
      -> the mirror image with transposed convolutions   -> audio (B, N)

Trained (engine/training/waveform_codec.py) with the multi-resolution log-mel loss, a
time-domain L1, the commitment loss and, from `adversarial_start`, the multi-scale
STFT discriminator below (hinge loss and feature matching), as EnCodec. That schedule
needs a GPU: its "gpu" config is the one to run when one is lent; "tiny" is the CPU
smoke test. The shipped codec stays the mel codec (engine/nets/codec.py) until this
one, trained, beats it in bench_codec.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .spectral import hann


@dataclass(frozen=True)
class WaveformCodecConfig:
    sample_rate: int = 32_000
    channels: int = 32  # after the first conv; doubled by every stride
    strides: tuple[int, ...] = (4, 4, 5, 8)
    latent_dim: int = 128
    codebooks: int = 4
    codebook_size: int = 2048
    ema_decay: float = 0.99
    dead_code_threshold: float = 0.5  # EMA of a code's uses per batch under which it is re-seeded from the batch
    discriminator_channels: int = 32
    discriminator_ffts: tuple[int, ...] = (2048, 1024, 512)

    @property
    def token_hop(self) -> int:
        hop = 1
        for s in self.strides:
            hop *= s
        return hop

    @property
    def special_id(self) -> int:
        return self.codebook_size

    def to_dict(self) -> dict:
        return asdict(self)


CONFIGS = {
    "tiny": WaveformCodecConfig(channels=4, latent_dim=8, codebooks=2, codebook_size=16, discriminator_channels=4,
                                discriminator_ffts=(256,)),
    # EnCodec-32k's shape: 64 filters there, 32 here (6.0 M parameters; discriminator 0.28 M)
    "gpu": WaveformCodecConfig(),
}


def _padding(stride: int) -> int:
    return (stride + 1) // 2  # with kernel 2 * stride: N -> N / stride exactly


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels // 2 or 1, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(channels // 2 or 1, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(F.elu(self.conv(F.elu(x))))


class Encoder(nn.Module):
    def __init__(self, config: WaveformCodecConfig):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(1, config.channels, 7, padding=3)]
        width = config.channels
        for s in config.strides:
            layers += [ResidualUnit(width), nn.ELU(), nn.Conv1d(width, 2 * width, 2 * s, stride=s, padding=_padding(s))]
            width *= 2
        layers += [nn.ELU(), nn.Conv1d(width, config.latent_dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:  # (B, N) -> (B, T, D)
        return self.net(audio[:, None]).transpose(1, 2)


class Decoder(nn.Module):
    def __init__(self, config: WaveformCodecConfig):
        super().__init__()
        width = config.channels * 2 ** len(config.strides)
        layers: list[nn.Module] = [nn.Conv1d(config.latent_dim, width, 7, padding=3)]
        for s in reversed(config.strides):
            layers += [nn.ELU(), nn.ConvTranspose1d(width, width // 2, 2 * s, stride=s, padding=_padding(s),
                                                    output_padding=s % 2), ResidualUnit(width // 2)]
            width //= 2
        layers += [nn.ELU(), nn.Conv1d(width, 1, 7, padding=3)]
        self.net = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, N)
        return self.net(latent.transpose(1, 2))[:, 0]


class ResidualVQ(nn.Module):
    """EMA codebooks (no gradient), straight-through estimator, dead codes re-seeded from the batch."""

    def __init__(self, config: WaveformCodecConfig):
        super().__init__()
        self.config = config
        shape = (config.codebooks, config.codebook_size, config.latent_dim)
        self.register_buffer("embed", torch.randn(shape) * 0.1)
        self.register_buffer("embed_sum", self.embed.clone())
        self.register_buffer("counts", torch.ones(config.codebooks, config.codebook_size))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def nearest(self, residual: torch.Tensor, q: int) -> torch.Tensor:
        book = self.embed[q]
        return torch.argmin((book * book).sum(-1) - 2 * residual @ book.t(), dim=-1)

    def forward(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """latent (B, T, D) -> quantised (straight-through), codes (B, K, T), commitment loss."""
        flat = latent.reshape(-1, latent.shape[-1]).float()
        if self.training and not bool(self.initialised):
            self._seed(flat)
        residual, total, codes, commitment = flat, torch.zeros_like(flat), [], flat.new_zeros(())
        for q in range(self.config.codebooks):
            index = self.nearest(residual.detach(), q)
            chosen = self.embed[q][index]
            commitment = commitment + F.mse_loss(residual, chosen.detach())
            if self.training:
                self._update(q, residual.detach(), index)
            total = total + chosen
            residual = residual - chosen.detach()
            codes.append(index.reshape(latent.shape[:-1]))
        quantised = flat + (total - flat).detach()
        return quantised.reshape(latent.shape).to(latent.dtype), torch.stack(codes, dim=1), commitment

    @torch.no_grad()
    def _seed(self, flat: torch.Tensor) -> None:
        residual = flat
        for q in range(self.config.codebooks):
            picks = residual[torch.randint(len(residual), (self.config.codebook_size,), device=flat.device)]
            self.embed[q] = picks
            self.embed_sum[q] = picks
            residual = residual - self.embed[q][self.nearest(residual, q)]
        self.initialised.fill_(True)

    @torch.no_grad()
    def _update(self, q: int, residual: torch.Tensor, index: torch.Tensor) -> None:
        counts = torch.bincount(index, minlength=self.config.codebook_size).float()
        sums = torch.zeros_like(self.embed_sum[q]).index_add_(0, index, residual)
        decay = self.config.ema_decay
        self.counts[q].mul_(decay).add_(counts, alpha=1 - decay)
        self.embed_sum[q].mul_(decay).add_(sums, alpha=1 - decay)
        self.embed[q] = self.embed_sum[q] / self.counts[q].clamp(min=1e-5)[:, None]
        dead = self.counts[q] < self.config.dead_code_threshold
        if bool(dead.any()):
            fresh = residual[torch.randint(len(residual), (int(dead.sum()),), device=residual.device)]
            self.embed[q][dead] = fresh
            self.embed_sum[q][dead] = fresh
            self.counts[q][dead] = 1.0

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K, T) -> latent (B, T, D); the special id adds nothing."""
        total = 0
        for q in range(self.config.codebooks):
            book = F.pad(self.embed[q], (0, 0, 0, 1))  # the special id's all-zero row
            total = total + F.embedding(codes[:, q], book)
        return total


class WaveformCodec(nn.Module):
    def __init__(self, config: WaveformCodecConfig = WaveformCodecConfig()):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quantiser = ResidualVQ(config)
        self.decoder = Decoder(config)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """audio (B, N) -> reconstruction (B, N), codes (B, K, T), commitment loss."""
        quantised, codes, commitment = self.quantiser(self.encoder(audio))
        return self.decoder(quantised), codes, commitment

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        return self.quantiser(self.encoder(audio))[1]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantiser.dequantize(codes))


class STFTDiscriminator(nn.Module):
    """One resolution of EnCodec's multi-scale STFT discriminator: real and imaginary parts as two
    channels, 2-D convs dilated in time and strided in frequency; returns logits and feature maps."""

    def __init__(self, n_fft: int, channels: int):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", hann(n_fft))
        convs = [nn.Conv2d(2, channels, (3, 9), padding=(1, 4))]
        for dilation in (1, 2, 4):
            convs.append(nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), dilation=(dilation, 1),
                                   padding=(dilation, 4)))
        convs.append(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1)))
        self.convs = nn.ModuleList(nn.utils.parametrizations.weight_norm(c) for c in convs)
        self.out = nn.Conv2d(channels, 1, (3, 3), padding=(1, 1))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spectrum = torch.stft(audio.float(), self.n_fft, self.n_fft // 4, window=self.window, return_complex=True)
        x = torch.stack([spectrum.real, spectrum.imag], dim=1).transpose(2, 3)  # (B, 2, frames, bins)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            features.append(x)
        return self.out(x), features


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, config: WaveformCodecConfig):
        super().__init__()
        self.scales = nn.ModuleList(STFTDiscriminator(n, config.discriminator_channels)
                                    for n in config.discriminator_ffts)

    def forward(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [scale(audio) for scale in self.scales]
