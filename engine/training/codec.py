"""Fit the mel codec (engine/nets/codec.py) on the audio corpus, and the k-means mel baseline.

Steps, all on CPU in minutes:
1. log-mel frames of every training excerpt, two per token (50 Hz), normalised per band;
2. PCA of those frames -> the projection to the latent (and the decoder's linear path);
3. residual k-means on the latents, one codebook after another (Lloyd iterations,
   empty codes re-seeded from the worst-fitted points);
4. the decoder trained with L1 on normalised log-mel for `steps` Adam steps, its input
   the quantised latent (70 % of windows) or the continuous one (30 %).
The baseline is residual k-means straight on the normalised frames (no projection,
no learned decoder: a token decodes to the sum of its centroids), fitted in the same run.

    python -m cuesmith.engine.training.codec --out ~/.cache/cuesmith/codec/run1 --steps 3000
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..files import atomic_path, write_json_atomic
from ..nets.codec import TINY, CodecConfig, MelCodec, pad_to_tokens, stack_frames
from ..progress import Progress, report


@dataclass(frozen=True)
class FitConfig:
    kmeans_iterations: int = 12
    kmeans_points: int = 120_000  # at most this many frames per k-means fit (a seeded sample)
    steps: int = 2000
    batch: int = 32
    window: int = 48  # tokens per training window (~1 s)
    lr: float = 2e-3
    continuous_share: float = 0.3
    seed: int = 15


# -- features -------------------------------------------------------------------

@torch.no_grad()
def excerpt_frames(codec: MelCodec, audio: np.ndarray) -> torch.Tensor:
    """Stacked, not yet normalised log-mel frames (T, S*n_mels) of one mono excerpt."""
    padded = torch.from_numpy(pad_to_tokens(audio, codec.config))[None]
    return stack_frames(codec.frontend(padded), codec.config.stack)[0]


def fit_normalisation(codec: MelCodec, frames: torch.Tensor) -> None:
    codec.mean.copy_(frames.mean(0))
    codec.std.copy_(frames.std(0).clamp(min=1e-3))


def fit_pca(codec: MelCodec, normalised: torch.Tensor) -> None:
    """Projection = the top `latent_dim` principal axes; the decoder's linear path is its inverse."""
    covariance = normalised.t() @ normalised / len(normalised)
    _, vectors = torch.linalg.eigh(covariance.double())
    top = vectors[:, -codec.config.latent_dim:].flip(1).float()  # (F, D), largest first
    with torch.no_grad():
        codec.project.weight.copy_(top.t())
        codec.project.bias.zero_()
        codec.decoder.linear.weight.copy_(top)
        codec.decoder.linear.bias.zero_()


# -- residual k-means -------------------------------------------------------------

def nearest(points: torch.Tensor, centroids: torch.Tensor, chunk: int = 16384) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the nearest centroid and the squared distance to it, for each point."""
    norms = (centroids * centroids).sum(-1)
    indices, distances = [], []
    for start in range(0, len(points), chunk):
        block = points[start:start + chunk]
        d = norms - 2 * block @ centroids.t()
        best, index = d.min(dim=1)
        indices.append(index)
        distances.append(best + (block * block).sum(-1))
    return torch.cat(indices), torch.cat(distances)


def kmeans(points: torch.Tensor, k: int, iterations: int, generator: torch.Generator) -> torch.Tensor:
    centroids = points[torch.randperm(len(points), generator=generator)[:k]].clone()
    if len(centroids) < k:  # fewer points than codes: repeat them
        centroids = centroids[torch.arange(k) % len(centroids)].clone()
    for _ in range(iterations):
        index, distance = nearest(points, centroids)
        counts = torch.bincount(index, minlength=k).float()
        sums = torch.zeros_like(centroids).index_add_(0, index, points)
        used = counts > 0
        centroids[used] = sums[used] / counts[used, None]
        empty = int((~used).sum())
        if empty:  # re-seed empty codes at the worst-fitted points
            centroids[~used] = points[torch.topk(distance, empty).indices]
    return centroids


def residual_kmeans(points: torch.Tensor, codebooks: int, size: int, iterations: int,
                    generator: torch.Generator, progress: Optional[Progress] = None) -> torch.Tensor:
    """(codebooks, size, dim): each codebook fitted on what the ones before leave."""
    residual, books = points.clone(), []
    for q in range(codebooks):
        book = kmeans(residual, size, iterations, generator)
        residual -= book[nearest(residual, book)[0]]
        books.append(book)
        report(progress, "k-means", (q + 1) / codebooks)
    return torch.stack(books)


def rvq_decode(points: torch.Tensor, books: torch.Tensor, depth: Optional[int] = None) -> torch.Tensor:
    """Points through the residual quantiser and back (the k-means baseline's reconstruction)."""
    residual, total = points.clone(), torch.zeros_like(points)
    for book in books[:depth]:
        chosen = book[nearest(residual, book)[0]]
        residual -= chosen
        total += chosen
    return total


# -- the whole fit ----------------------------------------------------------------

def sample_rows(rows: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    return rows if len(rows) <= count else rows[torch.randperm(len(rows), generator=generator)[:count]]


def fit(train_audio: Sequence[np.ndarray], config: CodecConfig = CodecConfig(), fit_config: FitConfig = FitConfig(),
        progress: Optional[Progress] = None) -> tuple[MelCodec, torch.Tensor, dict]:
    """The codec, the baseline codebooks (codebooks, size, frame_dim) and a log of the fit."""
    torch.manual_seed(fit_config.seed)
    generator = torch.Generator().manual_seed(fit_config.seed)
    codec = MelCodec(config)
    log: dict = {"started": time.time()}
    per_excerpt = [excerpt_frames(codec, a) for a in train_audio]
    frames = torch.cat(per_excerpt)
    fit_normalisation(codec, frames)
    normalised = [(f - codec.mean) / codec.std for f in per_excerpt]
    everything = torch.cat(normalised)
    fit_pca(codec, everything)
    log["frames"] = len(everything)
    with torch.no_grad():
        latents = [codec.project(x) for x in normalised]
    sample = sample_rows(torch.cat(latents), fit_config.kmeans_points, generator)
    books = residual_kmeans(sample, config.codebooks, config.codebook_size, fit_config.kmeans_iterations,
                            generator, progress)
    with torch.no_grad():
        codec.codebooks[:, :-1] = books
    baseline = residual_kmeans(sample_rows(everything, fit_config.kmeans_points, generator), config.codebooks,
                               config.codebook_size, fit_config.kmeans_iterations, generator)
    log["kmeans_seconds"] = time.time() - log["started"]
    log["train_l1"] = train_decoder(codec, normalised, latents, fit_config, progress)
    log["seconds"] = time.time() - log["started"]
    return codec, baseline, log


def train_decoder(codec: MelCodec, targets: list[torch.Tensor], latents: list[torch.Tensor],
                  fit_config: FitConfig, progress: Optional[Progress] = None) -> list[float]:
    with torch.no_grad():
        quantised = [codec.dequantize(codec.quantize(z[None]))[0] for z in latents]
    windows = [(i, s) for i, t in enumerate(targets)
               for s in range(0, max(1, len(t) - fit_config.window + 1), fit_config.window // 2)]
    rng = np.random.default_rng(fit_config.seed)
    optimiser = torch.optim.AdamW(codec.decoder.parameters(), lr=fit_config.lr, weight_decay=1e-4)
    warmup = max(1, fit_config.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / max(1, fit_config.steps)))))
    history = []
    codec.decoder.train()
    for step in range(fit_config.steps):
        chosen = rng.integers(len(windows), size=fit_config.batch)
        continuous = rng.random(fit_config.batch) < fit_config.continuous_share
        x = torch.stack([_window(latents if c else quantised, windows[j], fit_config.window)
                         for j, c in zip(chosen, continuous)])
        y = torch.stack([_window(targets, windows[j], fit_config.window) for j in chosen])
        loss = F.l1_loss(codec.decode_frames(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        history.append(float(loss.detach()))
        if step % 50 == 0:
            report(progress, "train decoder", step / fit_config.steps)
    codec.decoder.eval()
    return [float(np.mean(history[i:i + 100])) for i in range(0, len(history), 100)]


def _window(rows: list[torch.Tensor], where: tuple[int, int], length: int) -> torch.Tensor:
    i, start = where
    piece = rows[i][start:start + length]
    return F.pad(piece, (0, 0, 0, length - len(piece)))


# -- validation -------------------------------------------------------------------

@torch.no_grad()
def evaluate(codec: MelCodec, baseline: torch.Tensor, audio: Sequence[np.ndarray]) -> dict:
    """Mean |log-mel error| (natural log, 128 bands, over all frames) of each reconstruction."""
    sums: dict[str, float] = {}
    count = 0
    for samples in audio:
        raw = excerpt_frames(codec, samples)
        x = (raw - codec.mean) / codec.std
        latent = codec.project(x)[None]
        codes = codec.quantize(latent)
        rebuilt = {
            "codec_tokens": codec.decode_frames(codec.dequantize(codes))[0],
            "codec_latent": codec.decode_frames(latent)[0],
            "kmeans_baseline": rvq_decode(x, baseline),
            "kmeans_baseline_1_codebook": rvq_decode(x, baseline, 1),
            "mean": torch.zeros_like(x),
        }
        for name, y in rebuilt.items():
            sums[name] = sums.get(name, 0.0) + float((y * codec.std + codec.mean - raw).abs().sum())
        count += raw.numel()
    return {name: round(total / count, 4) for name, total in sums.items()}


# -- files --------------------------------------------------------------------------

def save(codec: MelCodec, baseline: torch.Tensor, path: Path, extra: dict) -> Path:
    with atomic_path(path) as tmp:
        torch.save({"config": asdict(codec.config), "state": codec.state_dict(),
                    "baseline": baseline.half(), **extra}, tmp)
    return path


def load(path: Path) -> tuple[MelCodec, torch.Tensor, dict]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    values = dict(checkpoint["config"])
    values["dilations"] = tuple(values["dilations"])
    codec = MelCodec(CodecConfig(**values))
    codec.load_state_dict(checkpoint["state"])
    codec.eval()
    return codec, checkpoint["baseline"].float(), checkpoint


def corpus_audio(split: str, limit: Optional[int] = None) -> list[np.ndarray]:
    from ..corpus.audio import load_excerpts

    excerpts = load_excerpts(split)[:limit]
    return [e.audio() for e in excerpts]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="fit the mel codec on the rendered corpus")
    parser.add_argument("--out", type=Path, required=True, help="folder for codec.pt and metrics.json")
    parser.add_argument("--steps", type=int, default=FitConfig.steps)
    parser.add_argument("--kmeans-iterations", type=int, default=FitConfig.kmeans_iterations)
    parser.add_argument("--tiny", action="store_true", help="a tiny codec (tests, smoke runs)")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = CodecConfig(**TINY) if args.tiny else CodecConfig()
    fit_config = replace(FitConfig(), steps=args.steps, kmeans_iterations=args.kmeans_iterations)
    train, valid = corpus_audio("train"), corpus_audio("valid")
    print(f"train {len(train)} excerpts ({sum(map(len, train)) / config.sample_rate:.0f} s), "
          f"valid {len(valid)} ({sum(map(len, valid)) / config.sample_rate:.0f} s)", flush=True)
    progress = lambda stage, f: print(f"{time.strftime('%H:%M:%S')} {stage} {f:.2f}", flush=True)  # noqa: E731
    codec, baseline, log = fit(train, config, fit_config, progress)
    metrics = evaluate(codec, baseline, valid)
    print(json.dumps(metrics), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    save(codec, baseline, args.out / "codec.pt", {"fit": asdict(fit_config), "log": log, "validation": metrics,
                                                  "train_excerpts": len(train), "valid_excerpts": len(valid)})
    write_json_atomic(args.out / "metrics.json", {"validation": metrics, "log": log, "fit": asdict(fit_config)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
