"""Shared helpers of the V-MusProd tests: hand-made plans and the shipped model folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from cuesmith.engine.music.controls import BarControls
from cuesmith.engine.music.score import Key, TempoChange, TimeSignature
from cuesmith.engine.planning.plan import ScorePlan

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "vmusprod"
DENSITY = {"low": 3.0, "mid": 8.0, "high": 16.0}  # what first_plan asks for


def make_plan(n_bars: int = 8, mode: str = "major", density: str = "mid", bpm: float = 100.0,
              sections: tuple[int, ...] = (0, 4)) -> ScorePlan:
    key = Key(0, mode) if mode == "major" else Key(9, mode)
    controls = [BarControls(DENSITY[density], 80.0, mode, 64.0, bar in sections) for bar in range(n_bars)]
    return ScorePlan(duration=n_bars * 240.0 / bpm, tempos=[TempoChange(0, bpm)], time_signatures=[TimeSignature(0)],
                     bar_ticks=[i * 1920 for i in range(n_bars)], controls=controls, key=key)


def shipped_model() -> Path:
    if not (SHIPPED / "manifest.json").is_file():
        pytest.fail(f"the shipped model is missing: {SHIPPED}/manifest.json")
    return SHIPPED
