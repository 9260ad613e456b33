"""Train VidMuse on video/music pairs: AdamW, warm-up + cosine, EMA, condition dropout for CFG, resumable, DDP.

    python -m cuesmith.engine.training.vidmuse prepare --corpus ~/.cache/cuesmith/corpus/v1 --out out/vidmuse/pairs
    python -m cuesmith.engine.training.vidmuse train --pairs out/vidmuse/pairs --config cpu --out out/vidmuse/run
    torchrun --nproc-per-node 8 -m cuesmith.engine.training.vidmuse train --pairs ... --config small --out ...

`prepare` turns the paired corpus (issue 15: `<split>/<id>.flac` + `<id>.mp4`) into one `.npz` per
excerpt: the codec's codes (4, T) and the patch statistics of the video at 2 fps (local) and at
`global_frames` frames spread over it (global). `train` draws random windows of `window_seconds`
(the codes in the delay pattern, the local frames inside the window, the global frames of the whole
excerpt), replaces the video by the null (all-zero) video with probability `condition_dropout` (what
classifier-free guidance needs at inference), and writes `<out>/last.pt` every `save_every` steps and
at the end: model, EMA weights, optimiser, step, random states; `--resume` continues from it on any
machine (the checkpoint holds everything). The exporter reads the EMA weights.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..nets.vidmuse import CONFIGS as NET_CONFIGS
from ..nets.vidmuse import VidMuse, VidMuseConfig
from ..pipelines.vidmuse.delay import interleave
from . import loop
from .train import setup_distributed


@dataclass(frozen=True)
class TrainConfig:
    name: str
    net: str  # a nets/vidmuse.py CONFIGS name
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    min_lr_ratio: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.1
    ema_decay: float = 0.99
    condition_dropout: float = 0.1
    grad_clip: float = 1.0
    save_every: int = 500
    log_every: int = 50
    seed: int = 1
    valid_windows: int = 16  # fixed validation windows scored at every log line (with the EMA weights)


CONFIGS = {
    "tiny": TrainConfig("tiny", "tiny", steps=6, batch_size=2, lr=1e-3, warmup_steps=2, save_every=3, log_every=1,
                        valid_windows=2),
    "cpu": TrainConfig("cpu", "cpu", steps=20_000, batch_size=8, lr=3e-4, warmup_steps=500),
    # the shipped weights: ~9 s a step on one thread of the shared 2-core machine, so a few hundred steps
    "cpu-hour": TrainConfig("cpu-hour", "cpu-hour", steps=310, batch_size=8, lr=1e-3, warmup_steps=30,
                            min_lr_ratio=0.1, save_every=25, log_every=25),
    # the reference fine-tunes MusicGen-small at 3.5e-5 with 4000 warm-up steps; from scratch needs more
    "small": TrainConfig("small", "small", steps=200_000, batch_size=32, lr=1e-4, warmup_steps=4000),
}


@dataclass
class Pair:
    """One excerpt: codes (K, T) at the codec's rate, stats at 2 fps from 0 (local) and spread (global)."""

    codes: np.ndarray
    local: np.ndarray  # (N, 50, F)
    globl: np.ndarray  # (G, 50, F)

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".part.npz")
        np.savez_compressed(tmp, codes=self.codes, local=self.local, globl=self.globl)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "Pair":
        with np.load(path) as data:
            return cls(data["codes"].astype(np.int64), data["local"], data["globl"])


def load_pairs(folder: Path) -> list[Pair]:
    return [Pair.load(p) for p in sorted(Path(folder).glob("*.npz"))]


def synthetic_pairs(count: int, seconds: float, net: VidMuseConfig, seed: int = 0) -> list[Pair]:
    """Random pairs where the video's brightness sets codebook 0's range: enough to see a tiny net learn."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        frames = int(seconds * net.frame_rate)
        local = rng.random((int(seconds * net.local_fps), net.tokens_per_frame, net.visual_dim), dtype=np.float32)
        level = (local[:, 0, 0] * 8).astype(np.int64)  # per local frame
        per_frame = np.repeat(level, int(net.frame_rate / net.local_fps))[:frames]
        codes = rng.integers(0, 16, (net.codebooks, frames))
        codes[0] = per_frame * 16 + codes[0]
        pairs.append(Pair(codes, local, local[np.linspace(0, len(local) - 1, net.global_frames).astype(int)]))
    return pairs


def window_batch(pairs: list[Pair], net: VidMuseConfig, rng: np.random.Generator, size: int,
                 dropout: float) -> dict[str, torch.Tensor]:
    """`size` random windows: delayed inputs and targets (B, K, S), local (B, Ns, 50, F), global (B, G, 50, F)."""
    frames, n_local = net.window_frames, net.local_frames
    per_local = net.frame_rate / net.local_fps
    inputs, targets, locals_, globals_ = [], [], [], []
    for i in rng.integers(0, len(pairs), size):
        pair = pairs[i]
        start = int(rng.integers(0, max(1, pair.codes.shape[1] - frames + 1)))
        codes = pair.codes[:, start:start + frames]
        codes = np.pad(codes, ((0, 0), (0, frames - codes.shape[1])), constant_values=net.special)
        delayed = interleave(codes, net.special)
        inputs.append(np.concatenate([np.full((net.codebooks, 1), net.special), delayed[:, :-1]], axis=1))
        targets.append(delayed)
        first = int(start / per_local)
        index = np.minimum(np.arange(first, first + n_local), len(pair.local) - 1)
        keep = rng.random() >= dropout
        locals_.append(pair.local[index] * keep)
        globals_.append(pair.globl[np.linspace(0, len(pair.globl) - 1, net.global_frames).astype(int)] * keep)
    return {"inputs": torch.from_numpy(np.stack(inputs)), "targets": torch.from_numpy(np.stack(targets)),
            "local": torch.from_numpy(np.stack(locals_).astype(np.float32)),
            "global": torch.from_numpy(np.stack(globals_).astype(np.float32))}


def loss_of(net, batch: dict, special: int) -> torch.Tensor:
    """Mean cross-entropy over the cells of the delay pattern that hold a code."""
    logits = net(batch["inputs"], batch["local"], batch["global"])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1), ignore_index=special)


@torch.no_grad()
def validation_losses(net: VidMuse, batch: dict, chunk: int = 4) -> dict[str, float]:
    """Loss on fixed validation windows with their video and with the null video: the gap is what the
    net takes from the picture (none: the null loss is no higher)."""
    special, was_training = net.config.special, net.training
    net.eval()
    out = {}
    for name, keep in (("valid_loss", 1.0), ("valid_loss_null", 0.0)):
        losses = []
        for i in range(0, len(batch["inputs"]), chunk):
            part = {k: v[i:i + chunk] * (keep if k in ("local", "global") else 1) for k, v in batch.items()}
            losses.append(float(loss_of(net, part, special)) * len(part["inputs"]))
        out[name] = round(sum(losses) / len(batch["inputs"]), 4)
    net.train(was_training)
    return out


def train(pairs: list[Pair], out: Path, config: TrainConfig, net_config: Optional[VidMuseConfig] = None,
          resume: bool = False, steps: Optional[int] = None, rank: int = 0, world: int = 1,
          device: str = "cpu", valid: Optional[list[Pair]] = None, max_minutes: Optional[float] = None) -> dict:
    """Train to `steps` (default: the config's), or until `max_minutes` of wall time have passed (then
    saved, to go on with `resume`); returns {"step", "history"}. Writes `out/last.pt`. With `valid`
    pairs each log line also holds the EMA weights' loss on `valid_windows` fixed windows of them."""
    net_config = net_config or NET_CONFIGS[config.net]
    torch.manual_seed(config.seed + rank)
    rng = np.random.default_rng(config.seed + rank)
    net = VidMuse(net_config).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    ema, step, history, last = loop.ema_of(net), 0, [], out / "last.pt"
    state = loop.resume(last, net, optimizer, rng, device) if resume else None
    if state:
        ema, step, history = state["ema"], state["step"], state["history"]
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    target = steps or config.steps
    scorer, valid_batch = None, None
    if valid and rank == 0:
        scorer = VidMuse(net_config).to(device)
        valid_batch = {k: v.to(device) for k, v in window_batch(valid, net_config, np.random.default_rng(0),
                                                                config.valid_windows, 0.0).items()}
    began, summed, counted = time.time(), 0.0, 0
    while step < target:
        for group in optimizer.param_groups:
            group["lr"] = loop.lr_at(step, config)
        batch = {k: v.to(device) for k, v in window_batch(pairs, net_config, rng, config.batch_size,
                                                          config.condition_dropout).items()}
        loss = loss_of(model, batch, net_config.special)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        optimizer.step()
        loop.update_ema(ema, net, config.ema_decay)
        step += 1
        summed, counted = summed + float(loss.detach()), counted + 1
        if step % config.log_every == 0 or step == target:
            history.append({"step": step, "loss": summed / counted, "lr": loop.lr_at(step - 1, config),
                            "seconds": round(time.time() - began, 1)})
            summed, counted = 0.0, 0
            if scorer is not None:
                scorer.load_state_dict(ema)
                history[-1].update(validation_losses(scorer, valid_batch))
            if rank == 0:
                print(json.dumps(history[-1]), flush=True)
        out_of_time = max_minutes is not None and time.time() - began > 60 * max_minutes
        if rank == 0 and (step % config.save_every == 0 or step == target or out_of_time):
            loop.save(last, net, ema, optimizer, step, config, rng, history)
        if out_of_time:
            break
    return {"step": step, "history": history}


def prepare(corpus: Path, out: Path, net: VidMuseConfig, codec_folder: Optional[Path] = None,
            clip_graph: Optional[Path] = None) -> int:
    """Each `<split>/<id>.mp4` of the paired corpus beside its `<id>.flac` -> `out/<split>/<id>.npz`
    (video features: patch statistics, or CLIP hidden states from `clip_graph`, exporters/clip_export.py)."""
    from ..codec.runtime import Codec
    from ..music.audio import load_audio
    from ..pipelines.vidmuse.features import ClipFeatures, sample_stats

    codec, written = Codec.load(codec_folder), 0
    features = sample_stats if clip_graph is None else ClipFeatures(clip_graph)
    for video in sorted(Path(corpus).glob("*/*.mp4")):
        audio_path, target = video.with_suffix(".flac"), out / video.parent.name / f"{video.stem}.npz"
        if not audio_path.is_file() or target.is_file():
            continue
        audio = load_audio(audio_path)
        samples, rate = audio.stereo.mean(axis=1), audio.native_rate
        codes = codec.encode(samples, rate).codes
        seconds = len(samples) / rate
        local_times = np.arange(0.0, seconds, 1.0 / net.local_fps)
        global_times = (np.arange(64) + 0.5) * seconds / 64  # the reference trains with 64 global frames
        stats = features(video, np.concatenate([local_times, global_times]))
        target.parent.mkdir(parents=True, exist_ok=True)
        Pair(codes, stats[:len(local_times)], stats[len(local_times):]).save(target)
        written += 1
    return written


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="codes + video statistics of the paired corpus, one .npz per excerpt")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--net", choices=sorted(NET_CONFIGS), default="cpu")
    p.add_argument("--codec", type=Path, help="codec model folder (default: the model store's)")
    p.add_argument("--clip", type=Path, help="clip_vision.onnx: CLIP features instead of patch statistics")
    t = sub.add_parser("train")
    t.add_argument("--pairs", type=Path, required=True, help="a folder of .npz pairs (prepare's <out>/train)")
    t.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--steps", type=int)
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.add_argument("--threads", type=int)
    t.add_argument("--valid", type=Path, help="a folder of validation .npz pairs (prepare's <out>/valid)")
    t.add_argument("--max-minutes", type=float, help="save and stop after this much wall time")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        written = prepare(args.corpus, args.out, NET_CONFIGS[args.net], args.codec, args.clip)
        print(f"{written} pairs written to {args.out}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, device = setup_distributed()
    pairs = load_pairs(args.pairs)
    if not pairs:
        parser.error(f"no .npz pairs in {args.pairs} (run the prepare command first)")
    config = CONFIGS[args.config]
    valid = load_pairs(args.valid) if args.valid else None
    train(pairs[rank::world] if len(pairs) >= world else pairs, args.out, replace(config), resume=args.resume,
          steps=args.steps, rank=rank, world=world, device=device, valid=valid, max_minutes=args.max_minutes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
