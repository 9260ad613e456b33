"""POP909 phrase structure: the human labels of `shared/data/pop909-structure` as a role per bar.

A label line such as `i4A4B8A4o3` lists phrases (a letter and a length in
bars). Upper case is a phrase with a melody, lower case one without; `A` is
the first melodic material of the song (a verse, most often), `B`, `C`, ...
later ones (a chorus). `bar_roles` turns that into one of `controls.ROLES`
per bar of our bar grid. The labels count bars from the song's first true bar
line, which is not always our bar 0 (pick-up bars, see `pop909.load_song`), so
the offset is the one that best agrees with where the melody actually sounds.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import pop909

PHRASE = re.compile(r"([A-Za-z])(\d+)")
MAX_OFFSET = 4  # bars the labels may start after (or, up to 2, before) our bar 0


@dataclass(frozen=True)
class Phrase:
    letter: str
    bars: int

    @property
    def melodic(self) -> bool:
        return self.letter.isupper()

    @property
    def role(self) -> str:
        if not self.melodic:
            return "instrumental"
        return "verse" if self.letter in "AX" else "chorus"


def structure_root() -> Path:
    """$CUESMITH_POP909_STRUCTURE, else `pop909-structure` beside the POP909 folder."""
    override = os.environ.get("CUESMITH_POP909_STRUCTURE")
    return Path(override).expanduser() if override else pop909.data_root().parent / "pop909-structure"


def parse_phrases(line: str) -> list[Phrase]:
    return [Phrase(letter, int(n)) for letter, n in PHRASE.findall(line) if int(n) > 0]


def song_phrases(number: int, root: Optional[Path] = None) -> list[Phrase]:
    """The first labelling of the song that exists (human_label1, else 2); [] without labels."""
    folder = (root or structure_root()) / f"{number:03d}"
    for name in ("human_label1.txt", "human_label2.txt"):
        path = folder / name
        if path.is_file():
            phrases = parse_phrases(path.read_text())
            if phrases:
                return phrases
    return []


def phrase_roles(phrases: list[Phrase]) -> list[str]:
    return [p.role for p in phrases for _ in range(p.bars)]


def bar_roles(phrases: list[Phrase], melody_sounds: list[bool]) -> tuple[list[str], list[bool]]:
    """(role, phrase start) of each bar: the labels placed at the offset that best matches the melody.

    Bars the labels do not cover take their role from the melody (verse when it sounds).
    """
    n = len(melody_sounds)
    fallback = ["verse" if m else "instrumental" for m in melody_sounds]
    if not phrases:
        return fallback, [False] * n
    labelled = phrase_roles(phrases)
    starts = set()
    bar = 0
    for p in phrases:
        starts.add(bar)
        bar += p.bars
    best, best_score = 0, -1
    for offset in range(-2, MAX_OFFSET + 1):
        score = sum((labelled[i - offset] != "instrumental") == melody_sounds[i]
                    for i in range(n) if 0 <= i - offset < len(labelled))
        if score > best_score:
            best, best_score = offset, score
    roles = [labelled[i - best] if 0 <= i - best < len(labelled) else fallback[i] for i in range(n)]
    return roles, [(i - best) in starts for i in range(n)]
