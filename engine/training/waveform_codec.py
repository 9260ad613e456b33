"""Train the waveform RVQ autoencoder (engine/nets/waveform_codec.py): CUDA when present, resumable.

    python -m cuesmith.engine.training.waveform_codec --config gpu --out /data/wavecodec/run1 --max-minutes 600
    python -m cuesmith.engine.training.waveform_codec --config gpu --out /data/wavecodec/run1 --resume
    python -m cuesmith.engine.training.waveform_codec --config tiny --out /tmp/wc --synthetic   # CPU smoke run

Loss, as EnCodec: multi-resolution log-mel L1 + `time_weight` x waveform L1 + `commit_weight` x
commitment, and from `adversarial_start` on the multi-scale STFT discriminator's hinge loss
(`adversarial_weight`) and feature matching (`feature_weight`). On CUDA it runs in bf16 autocast
with TF32 matmuls; the whole training set sits in host memory and windows of `segment_seconds`
are drawn at random. `<out>/last.pt` (both nets, both optimisers, step, random states, history)
is written every `save_every` steps and when `--max-minutes` runs out.

Measured here: one step of the "gpu" config (batch 32 x 1 s, before the discriminator joins) took
128 s on one thread of the shared 2-core CPU (load ~10): its 200k steps need the GPU.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..nets.spectral import MultiResolutionMelLoss
from ..nets.waveform_codec import CONFIGS as NET_CONFIGS
from ..nets.waveform_codec import MultiScaleSTFTDiscriminator, WaveformCodec, WaveformCodecConfig
from . import loop


@dataclass(frozen=True)
class TrainConfig:
    name: str
    net: str  # a nets/waveform_codec.py CONFIGS name
    steps: int
    batch: int
    segment_seconds: float
    lr: float = 3e-4
    betas: tuple[float, float] = (0.5, 0.9)
    warmup_steps: int = 1000
    time_weight: float = 0.1
    commit_weight: float = 1.0
    adversarial_weight: float = 1.0
    feature_weight: float = 3.0
    adversarial_start: int = 10_000  # steps of reconstruction loss only, then the discriminator joins
    grad_clip: float = 1.0
    save_every: int = 2000
    log_every: int = 100
    seed: int = 15


CONFIGS = {
    "tiny": TrainConfig("tiny", "tiny", steps=4, batch=2, segment_seconds=0.16, warmup_steps=1,
                        adversarial_start=2, save_every=2, log_every=1),
    # one lent GPU: ~1.5 M samples per step; the reference (EnCodec) runs 400k steps x batch 64 on 8 GPUs
    "gpu": TrainConfig("gpu", "gpu", steps=200_000, batch=32, segment_seconds=1.0),
}


def pick_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def autocast(device: str):
    """bf16 autocast on CUDA (no loss scaling needed); nothing on CPU."""
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def lr_at(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


def segment_batch(audio: Sequence[np.ndarray], samples: int, batch: int, rng: np.random.Generator) -> torch.Tensor:
    rows = []
    for _ in range(batch):
        clip = audio[rng.integers(len(audio))]
        start = int(rng.integers(max(1, len(clip) - samples + 1)))
        piece = clip[start:start + samples]
        rows.append(np.pad(piece, (0, samples - len(piece))))
    return torch.from_numpy(np.stack(rows).astype(np.float32))


def discriminator_loss(disc, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss over every scale."""
    total = 0.0
    for (real_logits, _), (fake_logits, _) in zip(disc(real), disc(fake.detach())):
        total = total + F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    return total / len(disc.scales)


def generator_adversarial(disc, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(hinge loss of the fakes, feature matching L1 relative to the real features' size)."""
    adversarial, features, count = 0.0, 0.0, 0
    with torch.no_grad():
        real_out = disc(real)
    for (fake_logits, fake_maps), (_, real_maps) in zip(disc(fake), real_out):
        adversarial = adversarial + F.relu(1 - fake_logits).mean()
        for a, b in zip(fake_maps, real_maps):
            features = features + F.l1_loss(a, b) / (b.abs().mean() + 1e-5)
            count += 1
    return adversarial / len(disc.scales), features / max(1, count)


def save(path: Path, codec: WaveformCodec, disc, optimisers: dict, step: int, config: TrainConfig,
         rng: np.random.Generator, history: list) -> None:
    state = {"model": codec.state_dict(), "discriminator": disc.state_dict(),
             "optimisers": {k: o.state_dict() for k, o in optimisers.items()}, "step": step,
             "net_config": codec.config.to_dict(), "train_config": asdict(config), "history": history,
             "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}
    loop.write_state(path, state)


def net_config_from(values: dict) -> WaveformCodecConfig:
    return WaveformCodecConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def train(audio: Sequence[np.ndarray], out: Path, config: TrainConfig, net_config: Optional[WaveformCodecConfig] = None,
          resume: bool = False, max_minutes: Optional[float] = None, device: Optional[str] = None,
          log=print) -> dict:
    """Train to `config.steps` or until `max_minutes` pass; returns {"step", "history"}. Writes `out/last.pt`."""
    device = device or pick_device()
    net_config = net_config or NET_CONFIGS[config.net]
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    codec = WaveformCodec(net_config).to(device)
    disc = MultiScaleSTFTDiscriminator(net_config).to(device)
    mel_loss = MultiResolutionMelLoss(net_config.sample_rate).to(device)
    optimisers = {"codec": torch.optim.AdamW(codec.parameters(), lr=config.lr, betas=config.betas),
                  "discriminator": torch.optim.AdamW(disc.parameters(), lr=config.lr, betas=config.betas)}
    step, history, last = 0, [], out / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, map_location=device, weights_only=False)
        codec.load_state_dict(state["model"])
        disc.load_state_dict(state["discriminator"])
        for name, optimiser in optimisers.items():
            optimiser.load_state_dict(state["optimisers"][name])
        step, history = state["step"], state["history"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed at step {step}")
    samples = int(round(config.segment_seconds * net_config.sample_rate / net_config.token_hop)) * net_config.token_hop
    began, sums = time.time(), {}
    codec.train()
    while step < config.steps:
        for optimiser in optimisers.values():
            for group in optimiser.param_groups:
                group["lr"] = lr_at(step, config)
        real = segment_batch(audio, samples, config.batch, rng).to(device)
        adversarial = step >= config.adversarial_start
        with autocast(device):
            fake, _, commitment = codec(real)
        fake = fake.float()
        terms = {"mel": mel_loss(fake, real), "time": F.l1_loss(fake, real), "commit": commitment}
        loss = terms["mel"] + config.time_weight * terms["time"] + config.commit_weight * terms["commit"]
        if adversarial:
            with autocast(device):
                terms["adversarial"], terms["features"] = generator_adversarial(disc, real, fake)
            loss = loss + config.adversarial_weight * terms["adversarial"] + config.feature_weight * terms["features"]
        optimisers["codec"].zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(codec.parameters(), config.grad_clip)
        optimisers["codec"].step()
        if adversarial:
            with autocast(device):
                terms["discriminator"] = discriminator_loss(disc, real, fake)
            optimisers["discriminator"].zero_grad(set_to_none=True)
            terms["discriminator"].backward()
            optimisers["discriminator"].step()
        step += 1
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
        sums["count"] = sums.get("count", 0) + 1
        out_of_time = max_minutes is not None and time.time() - began > 60 * max_minutes
        if step % config.log_every == 0 or step == config.steps or out_of_time:
            count = sums.pop("count")
            history.append({"step": step, **{k: round(v / count, 4) for k, v in sums.items()},
                            "lr": lr_at(step - 1, config), "seconds": round(time.time() - began, 1)})
            sums = {}
            log(json.dumps(history[-1]))
        if step % config.save_every == 0 or step == config.steps or out_of_time:
            save(last, codec, disc, optimisers, step, config, rng, history)
        if out_of_time:
            log(f"stopping at step {step}: over the {max_minutes} minute budget (--resume continues)")
            break
    return {"step": step, "history": history}


def synthetic_audio(count: int, seconds: float, rate: int, seed: int = 0) -> list[np.ndarray]:
    """Decaying harmonic notes: enough to check that a smoke run learns something."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = []
    for _ in range(count):
        f = 110 * 2 ** (rng.integers(0, 36) / 12)
        out.append((0.3 * np.exp(-3 * t) * sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 4)))
                   .astype(np.float32))
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="gpu")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--train-excerpts", type=int, help="at most this many corpus excerpts (default: all)")
    parser.add_argument("--synthetic", action="store_true", help="synthetic notes instead of the corpus")
    parser.add_argument("--max-minutes", type=float)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = CONFIGS[args.config]
    if args.steps:
        config = replace(config, steps=args.steps)
    rate = NET_CONFIGS[config.net].sample_rate
    if args.synthetic:
        audio = synthetic_audio(16, 2.0, rate)
    else:
        from .codec import corpus_audio

        audio = corpus_audio("train", args.train_excerpts)
    device = pick_device()
    print(f"{len(audio)} clips ({sum(map(len, audio)) / rate:.0f} s), config {config.name}, device {device}",
          flush=True)
    train(audio, args.out, config, resume=args.resume, max_minutes=args.max_minutes, device=device,
          log=lambda m: print(f"{time.strftime('%H:%M:%S')} {m}", flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
