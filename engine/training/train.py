"""Train one V-MusProd stage on POP909 (001-700 train with transposition, 701-800 validation).

    python -m cuesmith.engine.training.train --stage chord --config cpu --out out/vmusprod
    python -m cuesmith.engine.training.train --stage melody --config cpu_warm --init-shipped models/vmusprod ...
    torchrun --nproc-per-node 2 -m cuesmith.engine.training.train --stage melody --config gpu ...

One epoch = every training song once, as one random `crop_bars` crop with a
random transposition. After each epoch: validation NLL per token (nats) on
fixed crops of the validation songs, a line in `<out>/<stage>/train.log`, and
checkpoints `last.pt` (resume with --resume) and `best.pt` (lowest
validation loss). --init-shipped starts from the weights of the shipped ONNX
graphs (`warm.load_shipped`), so a run continues where the last export left
off on any machine; the `cpu_warm` config continues the `cpu` nets at a
lower learning rate. Under torchrun it runs DDP (gloo on CPU, nccl on CUDA),
each rank on its share of the songs.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist

from ..music.dataset import TRAIN_TRANSPOSITIONS
from ..music.pop909 import TRAIN_SONGS, VALID_SONGS
from ..nets import STAGES, build_net
from .data import collate, fixed_crops, load_songs, random_crop
from .warm import load_shipped


@dataclass
class TrainConfig:
    name: str
    d_model: int
    n_heads: int
    n_layers: int
    n_encoder_layers: int
    d_ff: int
    epochs: dict[str, int]  # per stage
    crop_bars: dict[str, int] = field(default_factory=lambda: {s: 16 for s in STAGES})
    batch_size: int = 16
    max_tokens: int = 1024
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    weight_decay: float = 0.01
    dropout: float = 0.1
    grad_clip: float = 1.0
    train_songs: tuple[int, ...] = tuple(TRAIN_SONGS)
    valid_songs: tuple[int, ...] = tuple(VALID_SONGS)
    transpositions: tuple[int, ...] = TRAIN_TRANSPOSITIONS
    seed: int = 909

    def net_sizes(self, stage: str) -> dict:
        sizes = dict(d_model=self.d_model, n_heads=self.n_heads, n_layers=self.n_layers,
                     d_ff=self.d_ff, dropout=self.dropout, max_bars=max(64, self.crop_bars[stage]))
        if stage != "chord":
            sizes["n_encoder_layers"] = self.n_encoder_layers
        return sizes


CONFIGS = {
    # the test suite's: seconds on a laptop, proves the chain works
    "tiny": TrainConfig("tiny", d_model=32, n_heads=2, n_layers=1, n_encoder_layers=1, d_ff=64,
                        epochs={s: 1 for s in STAGES}, crop_bars={s: 4 for s in STAGES}, batch_size=2, max_tokens=256,
                        warmup_steps=1, train_songs=(1, 2, 3), valid_songs=(701,), transpositions=(0, 1)),
    # the shipped weights: about an hour on 2 CPU cores for all three stages
    # (one process per stage, side by side, 1 thread each)
    "cpu": TrainConfig("cpu", d_model=192, n_heads=4, n_layers=3, n_encoder_layers=2, d_ff=768,
                       epochs={"chord": 40, "melody": 40, "accompaniment": 28},
                       crop_bars={"chord": 16, "melody": 12, "accompaniment": 8},
                       batch_size=16, max_tokens=768, lr=1.5e-3, warmup_steps=100, dropout=0.0),
    # the shipped cpu nets continued (--init-shipped): a short warm-up to a lower peak (6e-4, where the first
    # run of 2026-12-01 began, raised the validation NLL by 0.04-0.06), an hour on 2 heavily shared cores
    "cpu_warm": TrainConfig("cpu_warm", d_model=192, n_heads=4, n_layers=3, n_encoder_layers=2, d_ff=768,
                            epochs={"chord": 12, "melody": 13, "accompaniment": 6},
                            crop_bars={"chord": 16, "melody": 12, "accompaniment": 8},
                            batch_size=16, max_tokens=768, lr=3e-4, warmup_steps=20, dropout=0.0),
    # a GPU run closer to the paper (200/200/400 epochs)
    "gpu": TrainConfig("gpu", d_model=512, n_heads=8, n_layers=8, n_encoder_layers=4, d_ff=2048,
                       epochs={"chord": 200, "melody": 200, "accompaniment": 400},
                       crop_bars={s: 32 for s in STAGES},
                       batch_size=32, max_tokens=2048, lr=5e-4, warmup_steps=2000),
}


@dataclass
class Run:
    stage: str
    config: TrainConfig
    out: Path
    rank: int = 0
    world: int = 1
    device: str = "cpu"
    log_lines: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.out / self.stage

    def log(self, message: str) -> None:
        if self.rank != 0:
            return
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {self.stage} {message}"
        print(line, flush=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "train.log").open("a") as f:
            f.write(line + "\n")


def lr_at(step: int, total: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine down to min_lr_ratio * lr."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total - config.warmup_steps))
    floor = config.min_lr_ratio
    return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def batches(examples: list[dict], size: int):
    # similar lengths together keep padding low
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["tokens"]))
    groups = [order[i:i + size] for i in range(0, len(order), size)]
    return [[examples[i] for i in g] for g in groups]


def evaluate(net, valid: list, run: Run) -> float:
    """Validation NLL per token (nats), summed over every rank's share."""
    net.eval()
    total = torch.zeros(2, dtype=torch.float64)
    examples = [crop for song in valid for crop in fixed_crops(song, run.config.crop_bars[run.stage], run.config.max_tokens)]
    with torch.no_grad():
        for group in batches(examples, run.config.batch_size):
            batch = {k: v.to(run.device) for k, v in collate(group, net.config.d_video).items()}
            nll, count = net(batch)
            total += torch.tensor([float(nll), float(count)], dtype=torch.float64)
    if run.world > 1:
        dist.all_reduce(total)
    net.train()
    return float(total[0] / max(total[1], 1))


def save_checkpoint(path: Path, net, optimizer, epoch: int, step: int, best: float, run: Run,
                    rng: np.random.Generator, history: list) -> None:
    state = {"model": _unwrap(net).state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
             "step": step, "best_valid": best, "stage": run.stage, "net_config": asdict(_unwrap(net).config),
             "train_config": asdict(run.config), "rng": rng.bit_generator.state, "history": history,
             "torch_rng": torch.get_rng_state()}
    tmp = path.with_suffix(".part")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _unwrap(net):
    return net.module if hasattr(net, "module") else net


def train(run: Run, resume: bool = False, max_minutes: Optional[float] = None,
          epochs: Optional[int] = None, init_shipped: Optional[Path] = None) -> dict:
    """Train `run.stage`; returns the best validation NLL and the history."""
    config = run.config
    torch.manual_seed(config.seed + run.rank)
    rng = np.random.default_rng(config.seed + run.rank)
    n_epochs = epochs or config.epochs[run.stage]
    train_songs = load_songs(run.stage, config.train_songs[run.rank::run.world], config.transpositions)
    valid_songs = load_songs(run.stage, config.valid_songs[run.rank::run.world], (0,))
    net = build_net(run.stage, **config.net_sizes(run.stage)).to(run.device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(0.9, 0.95))
    start_epoch, step, best, history = 0, 0, float("inf"), []
    last = run.folder / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, map_location=run.device, weights_only=False)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step, best, history = state["epoch"], state["step"], state["best_valid"], state["history"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        run.log(f"resumed at epoch {start_epoch}, step {step}, best valid {best:.4f}")
    elif init_shipped is not None:
        kept = load_shipped(net, init_shipped, run.stage)
        run.log(f"warm start from {init_shipped}; not in the shipped graphs (initial values kept): {kept}")
        history.append({"epoch": 0, "step": 0, "valid_nll": evaluate(net, valid_songs, run), "init": str(init_shipped)})
        run.log(json.dumps(history[-1]))
    if run.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(net)
    steps_per_epoch = math.ceil(len(train_songs) / config.batch_size)
    total_steps = n_epochs * steps_per_epoch
    params = sum(p.numel() for p in net.parameters())
    run.log(f"config {config.name}: {params / 1e6:.2f} M parameters, {len(train_songs)} train songs/rank, "
            f"{n_epochs} epochs x {steps_per_epoch} steps, world {run.world}, device {run.device}")
    began = time.time()
    for epoch in range(start_epoch, n_epochs):
        t0, seen, summed = time.time(), 0, 0.0
        examples = [random_crop(s, config.crop_bars[run.stage], rng, config.max_tokens) for s in train_songs]
        groups = batches(examples, config.batch_size)
        rng.shuffle(groups)
        for group in groups:
            for g in optimizer.param_groups:
                g["lr"] = lr_at(step, total_steps, config)
            batch = {k: v.to(run.device) for k, v in collate(group, _unwrap(net).config.d_video).items()}
            nll, count = net(batch)
            loss = nll / count.clamp(min=1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            seen += int(count)
            summed += float(nll.detach())
        valid = evaluate(net, valid_songs, run)
        record = {"epoch": epoch + 1, "step": step, "train_nll": summed / max(seen, 1), "valid_nll": valid,
                  "tokens": seen, "seconds": round(time.time() - t0, 1)}
        history.append(record)
        run.log(json.dumps(record))
        if run.rank == 0:
            if valid < best:
                best = valid
                save_checkpoint(run.folder / "best.pt", net, optimizer, epoch + 1, step, best, run, rng, history)
            save_checkpoint(last, net, optimizer, epoch + 1, step, best, run, rng, history)
        if max_minutes is not None and (time.time() - began) / 60 > max_minutes and epoch + 1 < n_epochs:
            run.log(f"stopping after epoch {epoch + 1}: over the {max_minutes} minute budget")
            break
    return {"best_valid_nll": best, "history": history}


def setup_distributed() -> tuple[int, int, str]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if world > 1:
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        if device == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
    return rank, world, device


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=STAGES + ("all",), required=True)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    parser.add_argument("--out", type=Path, required=True, help="checkpoints and logs go to OUT/<stage>/")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/<stage>/last.pt")
    parser.add_argument("--epochs", type=int, help="override the config's epochs for the stage")
    parser.add_argument("--max-minutes", type=float, help="stop after the epoch that passes this budget")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--init-shipped", type=Path, help="start from the stage's ONNX weights in this folder")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, device = setup_distributed()
    stages = STAGES if args.stage == "all" else (args.stage,)
    for stage in stages:
        run = Run(stage, replace(CONFIGS[args.config]), args.out, rank, world, device)
        result = train(run, resume=args.resume, max_minutes=args.max_minutes, epochs=args.epochs,
                       init_shipped=args.init_shipped)
        run.log(f"done: best valid NLL {result['best_valid_nll']:.4f}")
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
