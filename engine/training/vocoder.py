"""Train the learned vocoder (engine/nets/vocoder.py) on the audio corpus: resumable, CPU or CUDA.

    python -m cuesmith.engine.training.vocoder --out ~/.cache/cuesmith/vocoder/run1 --max-minutes 45 --threads 1
    python -m cuesmith.engine.training.vocoder --out ~/.cache/cuesmith/vocoder/run1 --resume   # continue

Each training excerpt gives its audio, its true log-mel (the codec's front end) and the
log-mel the shipped codec decodes from its own tokens (ONNX Runtime, engine/codec/runtime.py).
A step draws random windows of `window_frames` mel frames, from the codec's log-mel with
probability `codec_share` (what the vocoder hears at run time) and the true one otherwise,
and minimises the multi-resolution log-mel L1 between the vocoder's audio and the original.
`<out>/last.pt` (model, EMA weights, optimiser, step, random states, history) is written every
`save_every` steps and when `--max-minutes` runs out; the exporter reads the EMA weights.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..nets.codec import CodecConfig, MelFrontend, pad_to_tokens
from ..nets.spectral import MultiResolutionMelLoss
from ..nets.vocoder import CONFIGS as NET_CONFIGS
from ..nets.vocoder import Vocoder, VocoderConfig
from . import loop


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 4000
    batch: int = 12
    window_frames: int = 64  # 0.64 s of audio per window
    lr: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    ema_decay: float = 0.995
    codec_share: float = 0.5  # windows whose input is the codec's decoded log-mel
    grad_clip: float = 1.0
    save_every: int = 200
    log_every: int = 50
    seed: int = 15


@dataclass
class Example:
    audio: np.ndarray  # (F * hop,) float32
    logmel: np.ndarray  # (n_mels, F) the true log-mel
    decoded: Optional[np.ndarray]  # (n_mels, F) the codec's log-mel from its tokens, if a codec was given


@torch.no_grad()
def make_examples(audio: Sequence[np.ndarray], codec_config: CodecConfig, codec=None) -> list[Example]:
    """Audio padded to whole tokens, its log-mel and (with `codec`, an engine.codec.runtime.Codec) the codec's."""
    frontend = MelFrontend(codec_config)
    examples = []
    for samples in audio:
        padded = pad_to_tokens(samples, codec_config)
        logmel = frontend(torch.from_numpy(padded)[None])[0].numpy()
        decoded = None
        if codec is not None:
            latent = codec.dequantize(codec.encode(padded, codec_config.sample_rate).codes)
            decoded = codec.logmel(latent, 0, len(latent))
        examples.append(Example(padded, logmel, decoded))
    return examples


def window_batch(examples: list[Example], config: TrainConfig, hop: int,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, n_mels, W) input log-mel and (B, W * hop) target audio."""
    inputs, targets = [], []
    for _ in range(config.batch):
        example = examples[rng.integers(len(examples))]
        frames = example.logmel.shape[1]
        start = int(rng.integers(max(1, frames - config.window_frames + 1)))
        use_codec = example.decoded is not None and rng.random() < config.codec_share
        source = example.decoded if use_codec else example.logmel
        piece = source[:, start:start + config.window_frames]
        audio = example.audio[start * hop:(start + config.window_frames) * hop]
        missing = config.window_frames - piece.shape[1]
        if missing:  # an excerpt shorter than a window: pad with silence
            piece = np.pad(piece, ((0, 0), (0, missing)), constant_values=float(np.log(1e-5)))
            audio = np.pad(audio, (0, missing * hop))
        inputs.append(piece)
        targets.append(audio)
    return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(targets))


def load(path: Path, ema: bool = True) -> tuple[Vocoder, dict]:
    """The vocoder of a checkpoint (its EMA weights unless `ema` is False), in eval mode."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    net = Vocoder(VocoderConfig(**state["net_config"]))
    net.load_state_dict(state["ema"] if ema else state["model"])
    return net.eval(), state


@torch.no_grad()
def evaluate(net: Vocoder, examples: list[Example], loss: MultiResolutionMelLoss, device: str = "cpu") -> dict:
    """Mean multi-resolution log-mel L1 of whole excerpts, from the true and from the codec's log-mel."""
    scores: dict[str, list[float]] = {}
    for example in examples:
        target = torch.from_numpy(example.audio)[None].to(device)
        for name, source in (("true_mel", example.logmel), ("codec_mel", example.decoded)):
            if source is not None:
                produced = net(torch.from_numpy(source)[None].to(device))
                scores.setdefault(name, []).append(float(loss(produced, target)))
    return {name: round(float(np.mean(values)), 4) for name, values in scores.items()}


def train(examples: list[Example], out: Path, config: TrainConfig = TrainConfig(),
          net_config: VocoderConfig = VocoderConfig(), resume: bool = False, max_minutes: Optional[float] = None,
          device: str = "cpu", log=print) -> dict:
    """Train to `config.steps` or until `max_minutes` pass; writes and returns the state of `out/last.pt`."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = Vocoder(net_config).to(device)
    loss_fn = MultiResolutionMelLoss(net_config.sample_rate).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, betas=(0.8, 0.99), weight_decay=config.weight_decay)
    ema, step, history, last = loop.ema_of(net), 0, [], out / "last.pt"
    state = loop.resume(last, net, optimizer, rng, device) if resume else None
    if state:
        ema, step, history = state["ema"], state["step"], state["history"]
        log(f"resumed at step {step}")
    began, summed, counted = time.time(), 0.0, 0
    net.train()
    while step < config.steps:
        for group in optimizer.param_groups:
            group["lr"] = loop.lr_at(step, config)
        logmel, target = (t.to(device) for t in window_batch(examples, config, net_config.hop, rng))
        loss = loss_fn(net(logmel), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        optimizer.step()
        loop.update_ema(ema, net, config.ema_decay)
        step += 1
        summed, counted = summed + float(loss.detach()), counted + 1
        out_of_time = max_minutes is not None and time.time() - began > 60 * max_minutes
        if step % config.log_every == 0 or step == config.steps or out_of_time:
            history.append({"step": step, "loss": round(summed / counted, 4), "lr": loop.lr_at(step - 1, config),
                            "seconds": round(time.time() - began, 1)})
            summed, counted = 0.0, 0
            log(json.dumps(history[-1]))
        if step % config.save_every == 0 or step == config.steps or out_of_time:
            loop.save(last, net, ema, optimizer, step, config, rng, history)
        if out_of_time:
            log(f"stopping at step {step}: over the {max_minutes} minute budget (--resume continues)")
            break
    return torch.load(last, map_location="cpu", weights_only=False)


def main(argv: Optional[list[str]] = None) -> int:
    from .codec import corpus_audio

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for last.pt and metrics.json")
    parser.add_argument("--net", choices=sorted(NET_CONFIGS), default="cpu")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--train-excerpts", type=int, default=80)
    parser.add_argument("--valid-excerpts", type=int, default=6)
    parser.add_argument("--codec", type=Path, help="codec model folder for the decoded log-mel (default: shipped)")
    parser.add_argument("--no-codec-mel", action="store_true", help="train on true log-mel only")
    parser.add_argument("--max-minutes", type=float)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net_config = NET_CONFIGS[args.net]
    codec = None
    if not args.no_codec_mel:
        from ..codec.runtime import Codec

        codec = Codec.load(args.codec, threads=args.threads or 0)
    codec_config = CodecConfig(n_mels=net_config.n_mels, hop=net_config.hop, sample_rate=net_config.sample_rate)
    started = time.time()
    train_examples = make_examples(corpus_audio("train", args.train_excerpts), codec_config, codec)
    valid_examples = make_examples(corpus_audio("valid", args.valid_excerpts), codec_config, codec)
    print(f"{len(train_examples)} train, {len(valid_examples)} valid excerpts prepared in "
          f"{time.time() - started:.0f} s on {device}", flush=True)
    config = replace(TrainConfig(), steps=args.steps)
    state = train(train_examples, args.out, config, net_config, args.resume, args.max_minutes, device,
                  log=lambda m: print(f"{time.strftime('%H:%M:%S')} {m}", flush=True))
    net, _ = load(args.out / "last.pt")
    metrics = {"step": state["step"], "validation_mel_l1": evaluate(net, valid_examples,
                                                                    MultiResolutionMelLoss(net_config.sample_rate)),
               "train_excerpts": len(train_examples), "valid_excerpts": len(valid_examples),
               "command": "python -m cuesmith.engine.training.vocoder " + " ".join(argv or sys.argv[1:]),
               "history": state["history"], "train_config": state["train_config"]}
    print(json.dumps(metrics["validation_mel_l1"]), flush=True)
    from ..files import write_json_atomic

    write_json_atomic(args.out / "metrics.json", metrics)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
