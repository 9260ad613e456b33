"""POP909 as token sequences for the three V-MusProd stages.

    stage          source (encoder input)     target (decoder output)
    chord          none (video/controls later) chord tokens
    melody         chord tokens               melody tokens
    accompaniment  chord+melody tokens        accompaniment tokens

Each song is loaded, split into melody and accompaniment
(`pop909.melody_and_accompaniment`), quantised and encoded once; its four
sequences are cached as int16 arrays in one .npz per song under
`user_cache_dir("cuesmith")/tokens` ($CUESMITH_CACHE_DIR/tokens when set), keyed by song number, tokenizer and
loader versions and the vocabulary. Transposition is augmentation on the fly:
an `Example` lists the shifts that keep every pitch in 0..127 and
`augmented` picks one per pass, so the cache holds each song once.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np
from platformdirs import user_cache_dir

from ..errors import CuesmithError
from ..files import atomic_path
from ..progress import Progress, report
from . import pop909
from .score import Song
from .tokens import (PITCH, STAGES, TOKENIZER_VERSION, TYPE, VOCAB, TokenType, TokenVocab, encode,
                     quantize, transpose_tokens)

STAGE_SEQUENCES = {  # stage -> (source sequence or None, target sequence)
    "chord": (None, "chord"),
    "melody": ("chord", "melody"),
    "accompaniment": ("chord+melody", "accompaniment"),
}
TRAIN_TRANSPOSITIONS = tuple(range(-5, 7))  # every key once: -5..+6 semitones
SPLITS = {"train": pop909.TRAIN_SONGS, "valid": pop909.VALID_SONGS}


@dataclass(frozen=True)
class Example:
    song: int  # POP909 number
    source: Optional[np.ndarray]  # (T_source, N_FIELDS) int16, None for the chord stage
    target: np.ndarray  # (T_target, N_FIELDS) int16
    shifts: tuple[int, ...] = (0,)  # transpositions that keep every pitch in 0..127
    shift: int = 0  # the transposition applied to source and target

    def transposed(self, semitones: int) -> "Example":
        if semitones not in self.shifts:
            raise ValueError(f"song {self.song}: shift {semitones} is not one of {self.shifts}")
        source = None if self.source is None else transpose_tokens(self.source, semitones)
        return replace(self, source=source, target=transpose_tokens(self.target, semitones),
                       shift=self.shift + semitones, shifts=(0,))


def cache_dir() -> Path:
    """$CUESMITH_CACHE_DIR/tokens, else the user cache folder's tokens/."""
    base = os.environ.get("CUESMITH_CACHE_DIR") or user_cache_dir("cuesmith")
    return Path(base).expanduser() / "tokens"


def cache_key(vocab: TokenVocab = VOCAB) -> str:
    vocab_hash = hashlib.sha1(repr(vocab).encode()).hexdigest()[:8]
    return f"t{TOKENIZER_VERSION}-l{pop909.LOADER_VERSION}-{vocab_hash}"


def song_tokens(number: int, cache: Optional[Path] = None, vocab: TokenVocab = VOCAB,
                root: Optional[Path] = None) -> dict[str, np.ndarray]:
    """Every stage's tokens of one POP909 song (int16), from the cache when it is current."""
    folder = pop909.song_dir(number, root)
    path = (cache or cache_dir()) / f"pop909-{number:03d}-{cache_key(vocab)}.npz"
    fingerprint = _fingerprint(folder)
    cached = _read_cache(path, fingerprint)
    if cached is not None:
        return cached
    song = quantize(pop909.melody_and_accompaniment(pop909.load_song(number, root).song), vocab=vocab)
    sequences = {stage: encode(song, stage, vocab).astype(np.int16) for stage in STAGES}
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(f, fingerprint=np.array(fingerprint), **_npz_names(sequences))
    return sequences


def _fingerprint(folder: Path) -> str:
    """Sizes and times of the song's files: a cache entry goes stale when the data changes."""
    return ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.iterdir()))


def _npz_names(sequences: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {stage.replace("+", "_"): tokens for stage, tokens in sequences.items()}


def _read_cache(path: Path, fingerprint: str) -> Optional[dict[str, np.ndarray]]:
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            if str(data["fingerprint"]) != fingerprint:
                return None
            return {stage: data[stage.replace("+", "_")] for stage in STAGES}
    except Exception:  # a damaged or foreign file: rebuild it
        return None


def allowed_shifts(sequences: Iterable[Optional[np.ndarray]], transpositions: Iterable[int]) -> tuple[int, ...]:
    """The transpositions that keep every note of `sequences` within MIDI pitch 0..127."""
    pitches = np.concatenate([s[s[:, TYPE] == TokenType.NOTE, PITCH] - 1 for s in sequences if s is not None]
                             + [np.zeros(0, dtype=np.int16)])
    if pitches.size == 0:
        return tuple(transpositions)
    low, high = int(pitches.min()), int(pitches.max())
    return tuple(k for k in transpositions if low + k >= 0 and high + k <= 127)


def build_split(split: str, stage: str, *, transpositions: Optional[Iterable[int]] = None,
                songs: Optional[Iterable[int]] = None, cache: Optional[Path] = None,
                vocab: TokenVocab = VOCAB, root: Optional[Path] = None,
                progress: Optional[Progress] = None) -> list[Example]:
    """One `Example` per song of the split; train allows -5..+6 semitones, valid none by default."""
    if split not in SPLITS:
        raise CuesmithError(f"unknown split {split!r} (expected train or valid)")
    if stage not in STAGE_SEQUENCES:
        raise CuesmithError(f"unknown stage {stage!r} (expected {', '.join(STAGE_SEQUENCES)})")
    numbers = list(SPLITS[split] if songs is None else songs)
    if transpositions is None:
        transpositions = TRAIN_TRANSPOSITIONS if split == "train" else (0,)
    transpositions = tuple(transpositions)
    source_name, target_name = STAGE_SEQUENCES[stage]
    examples = []
    for i, number in enumerate(numbers):
        sequences = song_tokens(number, cache, vocab, root)
        source = None if source_name is None else sequences[source_name]
        target = sequences[target_name]
        examples.append(Example(number, source, target, allowed_shifts((source, target), transpositions)))
        report(progress, f"tokens {split} {stage}", (i + 1) / len(numbers))
    return examples


def augmented(examples: Iterable[Example], rng: np.random.Generator) -> Iterator[Example]:
    """Each example once, transposed by one of its allowed shifts chosen at random."""
    for example in examples:
        yield example.transposed(int(rng.choice(example.shifts)))


def every_transposition(examples: Iterable[Example]) -> Iterator[Example]:
    for example in examples:
        for shift in example.shifts:
            yield example.transposed(shift)


def transpose_song(song: Song, semitones: int) -> Optional[Song]:
    """`song` moved by `semitones` (notes, chord roots, key); None if a pitch leaves 0..127."""
    notes_ok = all(0 <= n.pitch + semitones <= 127 for p in song.parts for n in p.notes)
    if not notes_ok:
        return None
    parts = [replace(p, notes=[replace(n, pitch=n.pitch + semitones) for n in p.notes]) for p in song.parts]
    chords = [c if c.root is None else replace(c, root=(c.root + semitones) % 12) for c in song.chords]
    key = None if song.key is None else replace(song.key, tonic=(song.key.tonic + semitones) % 12)
    return replace(song, parts=parts, chords=chords, key=key)
