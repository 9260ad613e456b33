"""Train MTM's DiT on codec latents with their captions and retrieved music (v-objective).

`train` is the loop a later run scales up (torchrun, resumable checkpoints are not here yet);
a batch is a dict of tensors as `MTMDiT.forward` takes them plus "latent" (B, T, latent_dim).
"""
from __future__ import annotations

from typing import Iterable, Optional

import torch

from ..nets.mtm import MTMConfig, MTMDiT, v_loss


def train(config: MTMConfig, batches: Iterable[dict], steps: int, lr: float = 1e-3, seed: int = 0,
          model: Optional[MTMDiT] = None) -> tuple[MTMDiT, list[float]]:
    """`steps` AdamW steps over `batches` (cycled); returns the model and its losses."""
    torch.manual_seed(seed)
    model = model or MTMDiT(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    generator = torch.Generator().manual_seed(seed)
    batches = list(batches)
    losses = []
    model.train()
    for step in range(steps):
        batch = dict(batches[step % len(batches)])
        latent = batch.pop("latent")
        loss = v_loss(model, latent, batch, generator)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        losses.append(loss.item())
    return model.eval(), losses
