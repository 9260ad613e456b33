"""Train MTM's DiT on the audio corpus: codec latents, captions from each excerpt's annotations, retrieved music.

    python -m cuesmith.engine.training.mtm prepare --corpus ~/.cache/cuesmith/corpus/v1 --out out/mtm/items
    python -m cuesmith.engine.training.mtm train --items out/mtm/items --config cpu --out out/mtm/run [--resume]
    torchrun --nproc-per-node 8 -m cuesmith.engine.training.mtm train --items ... --config gpu --out ...
    python -m cuesmith.exporters.mtm_export --checkpoint out/mtm/run/last.pt --items out/mtm/items --out models/mtm

`prepare` turns every rendered excerpt (issue 15: `<split>/<id>.flac` + `<id>.json`) into a library item
(pipelines/mtm/library.py): its codec latent, an embedding, and a caption whose tempo, mode and instruments
come from the excerpt's annotations (the analysis gives valence and arousal); one Library folder per split.
`train` draws random crops of `crop_seconds`, conditions each on its caption, its timing (crop start and
the excerpt's length, as Stable Audio does), the embedding of another item of its partition (target
retrieval -> stylization) and the latent of one of the items whose captions are nearest (broad retrieval
-> ControlFormer), never itself; the net drops each condition with `cond_dropout` (classifier-free
guidance). Warm-up + cosine LR, EMA, `<out>/last.pt` every `save_every` steps; `--resume` continues on any
machine; torchrun runs it data-parallel. Validation: v loss of the EMA weights on fixed crops, noise and
times of the validation split.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..nets.mtm import CONFIGS as NET_CONFIGS
from ..nets.mtm import MTMConfig, MTMDiT, v_loss
from ..pipelines.mtm.library import Library, LibraryItem
from ..pipelines.mtm import text as text_encoders
from ..pipelines.mtm.text import TextEncoder
from . import loop
from .train import setup_distributed

FRAME_RATE = 50.0  # the codec's latent frames per second (engine/codec)
MAX_TEXT_TOKENS = 32


@dataclass(frozen=True)
class TrainConfig:
    name: str
    net: str  # a nets/mtm.py CONFIGS name
    steps: int
    batch_size: int
    crop_seconds: float
    lr: float
    warmup_steps: int
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    broad_k: int = 3  # broad retrieval draws among this many nearest captions
    save_every: int = 200
    log_every: int = 50
    seed: int = 1
    text_encoder: str = text_encoders.SHIPPED  # pipelines/mtm/text.py: a text model's name or hashed-bow-v1


CONFIGS = {
    "tiny": TrainConfig("tiny", "tiny", steps=6, batch_size=2, crop_seconds=1.0, lr=1e-3, warmup_steps=2,
                        ema_decay=0.9, save_every=3, log_every=1, text_encoder=text_encoders.NAME),
    "cpu-small": TrainConfig("cpu-small", "cpu-small", steps=3000, batch_size=8, crop_seconds=6.0, lr=5e-4,
                             warmup_steps=100),
    "cpu": TrainConfig("cpu", "cpu", steps=20_000, batch_size=8, crop_seconds=10.0, lr=3e-4, warmup_steps=500),
    # Stable Audio Open trains on 47 s windows; the corpus's excerpts are 30 s
    "gpu": TrainConfig("gpu", "gpu", steps=200_000, batch_size=32, crop_seconds=30.0, lr=1e-4, warmup_steps=4000,
                       save_every=2000),
}


def text_encoder(name: str, net: Optional[MTMConfig] = None) -> TextEncoder:
    """The run's encoder (`net.text_dim` sizes only the hashed one; a learned one sets the net's width)."""
    return text_encoders.named(name, MAX_TEXT_TOKENS, net.text_dim if net else 64)


def fit_text_width(net: MTMConfig, text: TextEncoder) -> MTMConfig:
    """The DiT's text width follows the encoder's token width."""
    return replace(net, text_dim=text.dim)


# -- data -----------------------------------------------------------------------

def prepare(corpus: Path, out: Path, codec_folder: Optional[Path] = None, limit: Optional[int] = None) -> dict[str, int]:
    """`<corpus>/<split>/<id>.flac` -> a Library folder per split under `out` (train, valid)."""
    from ..codec.runtime import Codec
    from ..corpus.audio import Excerpt
    from ..music.audio import load_audio
    from ..pipelines.mtm.describe import instruments

    codec, counts = Codec.load(codec_folder), {}
    for split in ("train", "valid"):
        items = []
        paths = sorted((Path(corpus) / split).glob("*.flac"))[:limit]
        for n, audio_path in enumerate(paths):
            if n % 20 == 0:
                print(f"prepare {split}: {n}/{len(paths)}", file=sys.stderr, flush=True)
            excerpt = Excerpt.load(audio_path.with_suffix(".json"))
            audio = load_audio(audio_path)
            variant = excerpt.variant
            items.append(_item(excerpt, str(audio_path), audio.stereo.mean(axis=1), audio.native_rate, codec,
                               instruments([variant["melody_program"], variant["accompaniment_program"]])))
        if items:
            Library(items, text_encoders.HashedText()).save(out / split)  # captions: encoded when loaded
        counts[split] = len(items)
    return counts


def _item(excerpt, path: str, samples: np.ndarray, rate: int, codec, words: str) -> LibraryItem:
    from ..pipelines.mtm.library import item_from_audio

    beats = [t for t, _ in excerpt.beats]
    bpm = 60.0 / float(np.median(np.diff(beats))) if len(beats) > 2 else None
    mode = (excerpt.key or {}).get("mode")
    return item_from_audio(path, samples, rate, codec, bpm=bpm, mode=mode, instruments=words)


@dataclass
class Neighbours:
    """Per item, the indices retrieval may return for it in training (never the item itself)."""

    broad: list[np.ndarray]  # the `k` nearest captions
    target: list[np.ndarray]  # the other items of its partition

    @classmethod
    def of(cls, library: Library, k: int) -> "Neighbours":
        similarity = library.caption_vectors @ library.caption_vectors.T
        np.fill_diagonal(similarity, -np.inf)
        broad = [np.argsort(-row, kind="stable")[:k] for row in similarity]
        keys = [item.attributes for item in library.items]
        target = [np.array([j for j, other in enumerate(keys) if other == key and j != i], dtype=np.int64)
                  for i, key in enumerate(keys)]
        return cls(broad, target)


def crop(latent: np.ndarray, start: int, frames: int) -> np.ndarray:
    """`frames` frames from `start`, the piece looped where it is shorter."""
    return np.resize(np.roll(latent, -start, axis=0), (frames, latent.shape[1])).astype(np.float32)


def batch_of(library: Library, neighbours: Neighbours, text: HashedText, frames: int, rng: np.random.Generator,
             size: int) -> dict[str, torch.Tensor]:
    """`size` random crops with their conditions, as `MTMDiT.forward` takes them, plus "latent"."""
    rows = []
    for i in rng.integers(0, len(library.items), size):
        item = library.items[i]
        start = int(rng.integers(0, max(1, len(item.latent) - frames + 1)))
        tokens, mask = text.tokens(item.caption)
        broad, target = neighbours.broad[i], neighbours.target[i]
        control = library.items[int(rng.choice(broad))].latent if len(broad) else None
        style = library.items[int(rng.choice(target))].embedding if len(target) else None
        rows.append({
            "latent": crop(item.latent, start, frames), "text": tokens, "text_mask": mask,
            "start": np.float32(start / FRAME_RATE), "duration": np.float32(len(item.latent) / FRAME_RATE),
            "style": style if style is not None else np.zeros_like(item.embedding),
            "control": crop(control, start, frames) if control is not None else np.zeros_like(item.latent[:frames]),
            "control_gate": np.float32(control is not None)})
    return {k: torch.from_numpy(np.stack([np.asarray(r[k], np.float32) for r in rows])) for k in rows[0]}


# -- training ---------------------------------------------------------------------

def train(library: Library, out: Path, config: TrainConfig, valid: Optional[Library] = None,
          net_config: Optional[MTMConfig] = None, resume: bool = False, steps: Optional[int] = None,
          rank: int = 0, world: int = 1, device: str = "cpu", max_minutes: Optional[float] = None) -> dict:
    """Train to `steps` (default: the config's) or `max_minutes`; returns {"step", "history", "model" (the
    EMA weights, in eval mode)}. Writes `out/last.pt` (the exporter reads its EMA weights)."""
    net_config = net_config or fit_text_width(NET_CONFIGS[config.net](), library.text)
    config = replace(config, text_encoder=library.text.name)  # what the checkpoint says it was trained with
    torch.manual_seed(config.seed + rank)
    rng = np.random.default_rng(config.seed + rank)
    net = MTMDiT(net_config).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ema, step, history, last = loop.ema_of(net), 0, [], out / "last.pt"
    state = loop.resume(last, net, optimizer, rng, device) if resume else None
    if state:
        ema, step, history = state["ema"], state["step"], state["history"]
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    text, frames = library.text, max(1, int(config.crop_seconds * FRAME_RATE))
    neighbours = Neighbours.of(library, config.broad_k)
    target, began, summed, counted = steps or config.steps, time.time(), 0.0, 0
    while step < target:
        for group in optimizer.param_groups:
            group["lr"] = loop.lr_at(step, config)
        batch = {k: v.to(device) for k, v in batch_of(library, neighbours, text, frames, rng, config.batch_size).items()}
        latent = batch.pop("latent")
        loss = v_loss(model, latent, batch)  # the global torch RNG: the checkpoint holds its state
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        optimizer.step()
        loop.update_ema(ema, net, loop.ema_decay_at(step, config.ema_decay))
        step += 1
        summed, counted = summed + float(loss.detach()), counted + 1
        out_of_time = max_minutes is not None and time.time() - began > 60 * max_minutes
        if step % config.log_every == 0 or step == target or out_of_time:
            entry = {"step": step, "loss": summed / counted, "lr": loop.lr_at(step - 1, config),
                     "seconds": round(time.time() - began, 1)}
            if valid is not None and rank == 0:
                entry["valid_loss"] = validation_loss(ema, net_config, valid, config)
            history.append(entry)
            summed, counted = 0.0, 0
            if rank == 0:
                print(json.dumps(entry), flush=True)
        if rank == 0 and (step % config.save_every == 0 or step == target or out_of_time):
            loop.save(last, net, ema, optimizer, step, config, rng, history)
        if out_of_time:
            break
    return {"step": step, "history": history, "model": ema_model(ema, net_config)}


def ema_model(weights: dict, net_config: MTMConfig) -> MTMDiT:
    net = MTMDiT(net_config)
    net.load_state_dict(weights)
    return net.eval()


@torch.no_grad()
def validation_loss(weights: dict, net_config: MTMConfig, valid: Library, config: TrainConfig,
                    crops: int = 16) -> float:
    """v loss of `weights` on fixed crops, noise and times of `valid` (condition dropout included, as trained)."""
    net = ema_model(weights, net_config)
    frames = max(1, int(config.crop_seconds * FRAME_RATE))
    neighbours = Neighbours.of(valid, config.broad_k)
    batch = batch_of(valid, neighbours, valid.text, frames, np.random.default_rng(0), crops)
    latent = batch.pop("latent")
    return float(v_loss(net, latent, batch, torch.Generator().manual_seed(0)))


def load_items(folder: Path, text: TextEncoder) -> Library:
    return Library.load(folder, text)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="a library item per corpus excerpt: latent, embedding, caption")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--codec", type=Path, help="codec model folder (default: the model store's)")
    p.add_argument("--limit", type=int, help="at most this many excerpts per split")
    t = sub.add_parser("train")
    t.add_argument("--items", type=Path, required=True, help="prepare's --out (train/ and valid/ inside)")
    t.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--steps", type=int)
    t.add_argument("--minutes", type=float, help="stop (and save) after this many minutes")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.add_argument("--threads", type=int)
    t.add_argument("--text-encoder", help=f"a text model's name or {text_encoders.NAME} "
                                           "(default: the config's, the shipped MiniLM but for tiny)")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        counts = prepare(args.corpus, args.out, args.codec, args.limit)
        print(f"library items written to {args.out}: {counts}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, device = setup_distributed()
    config = CONFIGS[args.config]
    if args.text_encoder:
        config = replace(config, text_encoder=args.text_encoder)
    text = text_encoder(config.text_encoder, NET_CONFIGS[config.net]())
    net_config = fit_text_width(NET_CONFIGS[config.net](), text)
    if not (args.items / "train").is_dir():
        parser.error(f"no library in {args.items / 'train'} (run the prepare command first)")
    library = load_items(args.items / "train", text)
    valid = load_items(args.items / "valid", text) if (args.items / "valid").is_dir() else None
    mine = Library(library.items[rank::world], library.text) if len(library.items) >= world else library
    train(mine, args.out, config, valid, net_config, resume=args.resume, steps=args.steps, rank=rank,
          world=world, device=device, max_minutes=args.minutes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
