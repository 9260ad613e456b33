"""Lyrics for the description: LRC lines on their own times, or plain lines spread over the sections.

LRC: `[mm:ss.xx]text` (several time tags may share a line; `[offset:±ms]` moves
them all; other `[tag:value]` lines are metadata). Any other text is plain:
non-empty lines, placed evenly over the sections that are not intro or outro
(the sung part), in order. Themes: words matched against a small lexicon per
theme (English only), the three most frequent themes with at least
`MIN_HITS` words.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import CuesmithError

MAX_LYRICS_BYTES = 1 << 20
MIN_HITS = 2
TIME_TAG = re.compile(r"\[(\d{1,3}):(\d{1,2}(?:[.:]\d{1,3})?)\]")
META_TAG = re.compile(r"^\[([a-zA-Z]+):(.*)\]\s*$")

THEMES = {
    "love": "love lover loved loving heart hearts kiss kisses darling baby hold arms together forever yours mine",
    "heartbreak": "goodbye cry crying tears broken break alone lonely lost leave left gone miss missing pain hurt",
    "night and city": "night nights city street streets lights neon midnight dark moon stars sky downtown",
    "nature": "sea ocean river rain sun sunshine wind summer winter spring snow flower flowers mountain trees",
    "journey and freedom": "road run running fly flying free freedom away drive highway far escape wings go",
    "dreams and hope": "dream dreams dreaming hope wish believe tomorrow light shine rise promise future",
    "memory and time": "remember memory memories time years yesterday past young old again still days",
    "celebration": "dance dancing party tonight celebrate music sing singing song fun jump loud crowd",
    "conflict": "fight fire war burn blood anger enemy scream fear battle",
}


@dataclass
class LyricLine:
    time: float  # seconds
    text: str
    timed: bool  # True: from an LRC time tag; False: spread over the sections


@dataclass
class Lyrics:
    source: str
    lines: list[LyricLine]
    timed: bool
    themes: list[str]

    def between(self, start: float, end: float) -> list[LyricLine]:
        return [line for line in self.lines if start <= line.time < end]


def read_lyrics(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise CuesmithError("is a folder, not a lyrics file" if path.is_dir() else "no such file", path)
    data = path.read_bytes()[:MAX_LYRICS_BYTES + 1]
    if len(data) > MAX_LYRICS_BYTES:
        raise CuesmithError(f"lyrics file over {MAX_LYRICS_BYTES // 1024} KiB", path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CuesmithError("lyrics are not UTF-8 text (save them as UTF-8 .txt or .lrc)", path) from None
    if not text.strip():
        raise CuesmithError("the lyrics file is empty", path)
    return text


def parse_lrc(text: str) -> list[tuple[float, str]]:
    """(seconds, text) of each timed line, sorted; empty when `text` has no LRC time tags."""
    offset = 0.0
    lines = []
    for raw in text.splitlines():
        meta = META_TAG.match(raw.strip())
        if meta and not TIME_TAG.match(raw.strip()):
            if meta.group(1).lower() == "offset":
                try:
                    offset = float(meta.group(2)) / 1000.0
                except ValueError:
                    pass
            continue
        stamps = TIME_TAG.findall(raw)
        words = TIME_TAG.sub("", raw).strip()
        for minutes, seconds in stamps:
            if words:
                lines.append((int(minutes) * 60 + float(seconds.replace(":", ".")), words))
    # an LRC offset > 0 shifts lyrics earlier
    return sorted((max(0.0, t - offset), words) for t, words in lines)


def plain_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not META_TAG.match(line.strip())]


def spread(lines: list[str], sections, duration: float) -> list[LyricLine]:
    """Plain lines evenly over the sung sections (all but intro and outro; all when that leaves none)."""
    sung = [s for s in sections if s.name not in ("intro", "outro")] or list(sections)
    spans = [(s.start, s.end) for s in sung] or [(0.0, duration)]
    total = sum(b - a for a, b in spans)
    placed = []
    for i, line in enumerate(lines):
        at = total * i / max(len(lines), 1)
        for a, b in spans:
            if at < b - a:
                placed.append(LyricLine(round(a + at, 3), line, False))
                break
            at -= b - a
    return placed


def themes(texts: list[str], limit: int = 3) -> list[str]:
    words = re.findall(r"[a-z']+", " ".join(texts).lower())
    lexicon = {name: set(vocabulary.split()) for name, vocabulary in THEMES.items()}
    hits = {name: sum(w in vocab or w.rstrip("s") in vocab for w in words) for name, vocab in lexicon.items()}
    ranked = sorted((name for name, n in hits.items() if n >= MIN_HITS), key=lambda name: -hits[name])
    return ranked[:limit]


def load_lyrics(path: Optional[str | Path], sections, duration: float) -> Optional[Lyrics]:
    if not path:
        return None
    text = read_lyrics(path)
    timed = parse_lrc(text)
    if timed:
        lines = [LyricLine(round(t, 3), words, True) for t, words in timed if t < duration]
    else:
        lines = spread(plain_lines(text), sections, duration)
    return Lyrics(str(path), lines, bool(timed), themes([line.text for line in lines]))
