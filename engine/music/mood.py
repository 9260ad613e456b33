"""Valence and arousal: the one set of thresholds the planner and the critique share.

Both quantities run 0..1. `VALENCE_SPLIT` divides positive from negative
valence: the planner writes major at or above it and minor below it
(planning/controls.py), and the critique reads music and picture as positive
at or above it (critique/emotion.py). The arousal bands name HarmonySet's
video emotions (seed 000, Figure 9):

  V ≥ VALENCE_SPLIT: A < CALM relax, A < LIVELY hope, A < EXCITED happy, else surprise;
  V < VALENCE_SPLIT: A < CALM sad, A < TENSE anxious, else angry (warm picture) or fear.
HarmonySet's "creative" and "humor" need to know what is shown: never assigned.

Picture valence (`picture_valence`) = 0.5·brightness + 0.3·saturation +
0.2·(warmth + 1)/2 — on this scale a mid-grey neutral frame reads 0.35, so the
split sits at 0.40, where the planner has always put it.
"""
from __future__ import annotations

VALENCE_SPLIT = 0.40
CALM, LIVELY, EXCITED, TENSE = 0.35, 0.55, 0.85, 0.6
WARM = 0.1  # mean warmth above which a negative, aroused picture reads angry rather than fearful


def picture_valence(brightness: float, saturation: float, warmth: float) -> float:
    return float(0.5 * brightness + 0.3 * saturation + 0.2 * (warmth + 1.0) / 2.0)


def is_positive(valence: float) -> bool:
    return valence >= VALENCE_SPLIT


def label(valence: float, arousal: float, warmth: float = 0.0) -> str:
    """HarmonySet's emotion word for a valence/arousal pair."""
    if is_positive(valence):
        return "relax" if arousal < CALM else "hope" if arousal < LIVELY else "happy" if arousal < EXCITED else "surprise"
    if arousal < CALM:
        return "sad"
    if arousal < TENSE:
        return "anxious"
    return "angry" if warmth > WARM else "fear"
