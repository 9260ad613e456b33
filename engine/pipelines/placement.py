"""The placement of a score: where everything falls, in seconds, for the hosts that put it on a timeline.

Built once from what the engine already has (the plan's tempo map and
sections, the chosen variation's chords, the critique's graded moments), so
no host re-reads the MIDI or re-detects chords to find a time.
"""
from __future__ import annotations

from typing import Optional

from ..music.music import Music
from ..music.score import PITCH_CLASSES, Song
from ..planning.plan import ScorePlan
from ..schema import GRADE_COLOURS, Marker, Placement

MOMENT_KINDS = {"cut": "cut"}  # critique key-moment kind -> marker kind; the rest are "moment"


def place(plan: ScorePlan, music: Music, critique) -> Placement:
    """The placement of `music` (the chosen variation) on `plan`, with `critique`'s graded moments."""
    song = plan.empty_song()
    beats = plan.beat_seconds()
    sections = [{"bar": bar, "time": round(song.tick_to_seconds(plan.bar_ticks[bar]), 4), "label": f"section {n + 1}"}
                for n, bar in enumerate(b for b, c in enumerate(plan.controls) if c.section_start)]
    markers = [moment_marker(m) for m in critique.key_moments] if critique is not None else []
    markers += [Marker(s["time"], "section", s["label"]) for s in sections]
    return Placement(duration=plan.duration, tempo=plan.tempos[0].bpm, key=plan.key.name,
                     beats=[round(t, 4) for t, _ in beats], downbeats=[round(t, 4) for t, down in beats if down],
                     sections=sections, chords=chord_spans(music.song, plan.duration),
                     markers=sorted(markers, key=lambda m: m.time))


def moment_marker(moment) -> Marker:
    near = (f"nearest change {moment.offset:+.3f} s ({moment.change})" if moment.offset is not None
            else "no change of the music near it")
    return Marker(round(moment.time, 4), MOMENT_KINDS.get(moment.kind, "moment"), f"{moment.kind} {moment.grade}",
                  moment.grade, GRADE_COLOURS.get(moment.grade, GRADE_COLOURS["C"]), near)


def chord_spans(song: Optional[Song], duration: float) -> list[dict]:
    """[{"start", "end", "label"}] in seconds of the song's chord symbols (none for audio only)."""
    if song is None:
        return []
    spans = []
    chords = sorted(song.chords, key=lambda c: c.start)
    for chord, after in zip(chords, chords[1:] + [None]):
        if chord.root is None:
            continue
        stop = chord.end if after is None else min(chord.end, after.start)  # a chord sounds until the next
        start, end = song.tick_to_seconds(chord.start), min(song.tick_to_seconds(stop), duration)
        if start < duration:
            spans.append({"start": round(start, 4), "end": round(end, 4),
                          "label": f"{PITCH_CLASSES[chord.root]}{chord.quality}"})
    return spans

