"""Training batches: POP909 token sequences cut into bar-aligned crops with their context.

A crop is `crop_bars` bars of a song (target and source alike), re-numbered
from bar 0, BOS first and EOS only when the crop reaches the song's end, each
token with its context row (`CONTEXT_FIELDS`: bar, beat, tempo, progress and
the controls measured from the song). The runtime builds the same rows from a
plan (`engine.runtime.context`), so training and inference see one format.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np
import torch

from ..music.controls import MODES, ROLES, BarControls, control_ids, measure_controls
from ..music.structure import bar_roles, song_phrases
from ..music.dataset import STAGE_SEQUENCES, allowed_shifts, cache_dir, cache_key, song_tokens
from ..music.score import Song
from ..music.tokens import TYPE, TokenType, decode, metrical_context, transpose_tokens
from ..runtime.context import context_rows
from ..files import atomic_path

CONTROLS_VERSION = "2"  # bump when measure_controls or the role labelling changes


@dataclass
class SongData:
    number: int
    target: np.ndarray  # (T, N_FIELDS) int64, BOS/EOS included
    source: Optional[np.ndarray]  # (S, N_FIELDS) or None (chord stage)
    controls: list[BarControls]  # one per bar
    shifts: tuple[int, ...]  # transpositions that keep every pitch in 0..127

    @property
    def n_bars(self) -> int:
        return len(self.controls)


def song_controls(number: int) -> list[BarControls]:
    """measure_controls of a POP909 song as the tokens describe it, with the role and phrase
    starts of its human phrase labels (`music.structure`), cached beside the tokens."""
    path = cache_dir() / f"controls-{number:03d}-{cache_key()}-c{CONTROLS_VERSION}.npz"
    if path.is_file():
        with np.load(path) as data:
            return [BarControls(float(d), float(s), MODES[int(m)], float(r), bool(b), ROLES[int(o)])
                    for d, s, m, r, b, o in data["controls"]]
    sequences = song_tokens(number)
    song = tokens_song(sequences["chord+melody"], sequences["accompaniment"])
    n_bars = int((sequences["chord"][:, TYPE] == TokenType.BAR).sum())
    controls = measure_controls(song)[:n_bars]
    controls += [BarControls(0.0, 0.0, controls[-1].mode if controls else "major", 64.0, False, "instrumental")] \
        * (n_bars - len(controls))
    controls = labelled_controls(controls, song_phrases(number))
    rows = np.array([[c.density, c.strength, MODES.index(c.mode), c.register, c.section_start, ROLES.index(c.role)]
                     for c in controls], dtype=np.float64).reshape(-1, 6)
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(f, controls=rows)
    return controls


def labelled_controls(controls: list[BarControls], phrases) -> list[BarControls]:
    """Roles from the phrase labels (aligned to where the melody sounds); without labels, as measured."""
    roles, _ = bar_roles(phrases, [c.role != "instrumental" for c in controls])
    return [replace(c, role=role) for c, role in zip(controls, roles)]


def tokens_song(chord_melody: np.ndarray, accompaniment: np.ndarray) -> Song:
    song = decode(chord_melody, "chord+melody")
    song.parts = song.parts + decode(accompaniment, "accompaniment").parts
    return song


def load_songs(stage: str, numbers: Sequence[int], transpositions: Sequence[int]) -> list[SongData]:
    source_name, target_name = STAGE_SEQUENCES[stage]
    songs = []
    for number in numbers:
        sequences = song_tokens(number)
        source = None if source_name is None else sequences[source_name].astype(np.int64)
        target = sequences[target_name].astype(np.int64)
        songs.append(SongData(number, target, source, song_controls(number),
                              allowed_shifts((source, target), transpositions)))
    return songs


def crop_rows(tokens: np.ndarray, first_bar: int, n_bars: int, total_bars: int) -> tuple[np.ndarray, np.ndarray]:
    """BOS + the tokens of bars first_bar..first_bar+n_bars-1 (+ EOS at the song's end), and their metrical context."""
    meter = metrical_context(tokens)
    kinds = tokens[:, TYPE]
    inner = (kinds != TokenType.BOS) & (kinds != TokenType.EOS)
    keep = inner & (meter["bar"] >= first_bar) & (meter["bar"] < first_bar + n_bars)
    rows = [tokens[:1], tokens[keep]]
    if first_bar + n_bars >= total_bars:
        rows.append(tokens[-1:])
    cropped = np.concatenate(rows)
    return cropped, np.nonzero(keep)[0]


def crop_example(song: SongData, first_bar: int, n_bars: int, shift: int, max_tokens: int) -> dict[str, np.ndarray]:
    """One training example: target/source tokens and context rows of a crop, transposed by `shift`."""
    n_bars = max(1, min(n_bars, song.n_bars - first_bar))
    controls = [_shifted(c, shift) for c in song.controls[first_bar:first_bar + n_bars]]
    ids = control_ids(controls)
    example = {}
    for name, tokens in (("tokens", song.target), ("source", song.source)):
        if tokens is None:
            continue
        cropped, _ = crop_rows(tokens, first_bar, n_bars, song.n_bars)
        cropped = transpose_tokens(cropped, shift)[:max_tokens]
        example[name] = cropped
        example["context" if name == "tokens" else "source_context"] = context_rows(cropped, ids, n_bars)
    return example


def _shifted(c: BarControls, shift: int) -> BarControls:
    return replace(c, register=c.register + shift)


MELODIC_START_SHARE = 0.6  # crops that start where a melodic phrase starts (a cue is a song's body)
OPENING_SHARE = 0.1  # crops that start at bar 0 (song openings learnt as such)


def random_crop(song: SongData, crop_bars: int, rng: np.random.Generator, max_tokens: int) -> dict[str, np.ndarray]:
    last_start = max(0, song.n_bars - crop_bars)
    melodic = melodic_starts(song, last_start)
    draw = rng.random()
    if draw < OPENING_SHARE:
        first = 0
    elif draw < OPENING_SHARE + MELODIC_START_SHARE and melodic:
        first = int(rng.choice(melodic))
    else:
        first = int(rng.integers(0, last_start + 1))
    return crop_example(song, first, crop_bars, int(rng.choice(song.shifts)), max_tokens)


def melodic_starts(song: SongData, last_start: int) -> list[int]:
    """Bars up to last_start where the role turns melodic or changes (verse -> chorus, ...)."""
    return [i for i, c in enumerate(song.controls[:last_start + 1])
            if c.role != "instrumental" and (i == 0 or song.controls[i - 1].role != c.role)]


def fixed_crops(song: SongData, crop_bars: int, max_tokens: int) -> list[dict[str, np.ndarray]]:
    """Validation crops: the opening and the middle of the song, untransposed."""
    starts = sorted({0, max(0, (song.n_bars - crop_bars) // 2)})
    return [crop_example(song, s, crop_bars, 0, max_tokens) for s in starts]


def collate(examples: list[dict[str, np.ndarray]], d_video: int) -> dict[str, torch.Tensor]:
    """Pad to the longest example: PAD tokens, zero context, source bar -1 (masked)."""
    batch = {"tokens": _pad([e["tokens"] for e in examples]),
             "context": _pad([e["context"] for e in examples])}
    if "source" in examples[0]:
        batch["source"] = _pad([e["source"] for e in examples])
        batch["source_context"] = _pad([e["source_context"] for e in examples])
        bars = [e["source_context"][:, 0] for e in examples]
        batch["source_bar"] = _pad(bars, fill=-1)
    else:
        batch["video"] = np.zeros((len(examples), 1, d_video), dtype=np.float32)
    return {k: torch.from_numpy(v) for k, v in batch.items()}


def _pad(arrays: list[np.ndarray], fill: int = 0) -> np.ndarray:
    length = max(len(a) for a in arrays)
    out = np.full((len(arrays), length) + arrays[0].shape[1:], fill, dtype=np.int64)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return out
