"""Seeded sampling from logits: temperature, top-k, top-p, and a mask of allowed values."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Sampling:
    """None (and top_k 0) where not given: `over` fills in a model's defaults, `sample` the neutral values."""
    temperature: Optional[float] = None  # 0: greedy
    top_k: int = 0  # 0: no limit
    top_p: Optional[float] = None  # nucleus mass; 1: no limit

    def over(self, defaults: "Sampling") -> "Sampling":
        """These values where given, `defaults`' elsewhere."""
        return Sampling(defaults.temperature if self.temperature is None else self.temperature,
                        self.top_k or defaults.top_k, defaults.top_p if self.top_p is None else self.top_p)


NEUTRAL = Sampling(temperature=1.0, top_k=0, top_p=1.0)


def sample(logits: np.ndarray, allowed: np.ndarray, rng: np.random.Generator, sampling: Sampling) -> int:
    """One index drawn from `logits` (1-D) restricted to `allowed` (bool, at least one True).

    Works on the allowed entries only: the decode loop calls this ~3 times a token, and sorting and
    exponentiating the whole vocabulary was 15% of a warm score (profile, issue 19). The draw is the one
    `rng.choice(n, p=probs)` makes (one uniform, searched in the normalised cumulative sum), without its
    per-call checks of `probs`.
    """
    sampling = sampling.over(NEUTRAL)
    index = np.flatnonzero(allowed)
    values = logits[index].astype(np.float64)
    if sampling.temperature <= 0:
        return int(index[np.argmax(values)])
    values = values / sampling.temperature
    order = np.argsort(-values, kind="stable")
    if sampling.top_k > 0:
        order = order[:sampling.top_k]
    probs = np.exp(values[order] - values[order[0]])
    probs /= probs.sum()
    if sampling.top_p < 1.0:
        cut = int(np.searchsorted(np.cumsum(probs), sampling.top_p)) + 1
        probs = probs[:cut] / probs[:cut].sum()
    cdf = probs.cumsum()
    cdf /= cdf[-1]
    return int(index[order[min(int(cdf.searchsorted(rng.random(), side="right")), len(cdf) - 1)]])
