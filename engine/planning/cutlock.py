"""The cut-locked planner: a tempo map and bar grid that put every hard cut on a beat.

How (`plan`):

1. Anchors. Each hard cut ends a *segment* (from the previous cut, or from 0),
   and the end of the picture ends the last one (the *tail*), so the final
   bar line — and the closing cadence — lands on the last frame.
   A segment of L seconds holds a whole number n of beats at a mean tempo of
   60·n/L BPM; the candidates are the n whose tempo lies in the tempo range.
   A cut whose segment admits no such n (a shot shorter than one beat at the
   fastest tempo, or between two tempo steps) is not locked, with a warning.
2. Choice. A dynamic programme over segments picks one n per segment,
   minimising (tempo − the segment's motion tempo)² + (tempo step between
   segments)² + a penalty when a cut is not a downbeat of the running metre
   (`DOWNBEAT_COST`) and a larger one when the end of the picture does not
   complete a bar (`END_BAR_COST`), + `INFEASIBLE_COST` when steps of
   `MAX_STEP_BPM` over the segment's own bars cannot reach its mean tempo
   (`ramp_reaches`). The state carries the beat phase inside the bar.
3. Bars. Bars follow the time signature; when a cut or the end of the picture
   would land inside a bar and the metre is not pinned, the bar before it is
   shortened (a 2/4 or 3/4 bar) so the cut starts a bar and the last bar ends
   with the picture, as a film composer would do. With the metre pinned, an
   end inside a bar completes that bar past the picture, with a warning.
4. Tempo. Tempo changes only at bar lines and at cuts, by at most
   `MAX_STEP_BPM` from one bar (or piece of a bar) to the next: each segment
   ramps from the tempo it inherits towards a level X found by bisection so
   that its beats add up exactly to its length. Where no ramp fits (a short
   segment after a large tempo step), the segment holds its mean tempo and the
   plan carries a warning naming the bar.

Range: V-MusProd's motion scale (`video.tempo`, 90–130 BPM); a pinned tempo
narrows it to ±`PIN_SLACK` around the pin. A tail that holds no whole
number of beats in range (shorter than a beat, or between two tempo steps) is
not locked: its tempo ramps bar by bar towards its motion tempo and the last
bar runs past the end of the picture, with a warning.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import CuesmithError
from ..music.score import TICKS_PER_BEAT, Marker, Song, TempoChange, TimeSignature
from ..video.tempo import BPM_FAST, BPM_SLOW, motion_to_bpm
from .controls import bar_controls, plan_key
from .plan import PlanOptions, ScorePlan

MAX_STEP_BPM = 6.0  # largest tempo change from one bar (or part of a bar) to the next
PIN_SLACK = 0.05  # a pinned tempo may move ±5% so cuts can still land on beats
DOWNBEAT_COST = 4.0  # cost of a cut that is not a downbeat, in units of (tempo error / TEMPO_SCALE)²
END_BAR_COST = 16.0  # cost of an end of picture that does not complete a bar (a shortened last bar)
TEMPO_SCALE = 4.0  # BPM off the motion tempo that costs 1
STEP_SCALE = 3.0  # BPM of tempo step between segments that costs 1
INFEASIBLE_COST = 1e3  # a step no ramp can make within the segment


@dataclass
class Segment:
    start: float  # seconds
    end: float
    target: float  # BPM suggested by the motion in this shot
    cut_index: Optional[int]  # index into analysis.cuts of the cut that ends it; None for the tail
    candidates: list[int] = field(default_factory=list)  # whole beats that fit the tempo range


def plan(analysis, options: Optional[PlanOptions] = None) -> ScorePlan:
    """A cut-locked ScorePlan for a VideoAnalysis (see the module doc for how)."""
    options = options or PlanOptions()
    low, high = tempo_range(analysis, options)
    numerator, denominator = options.time_signature
    check_holds_a_bar(analysis.duration, TimeSignature(0, numerator, denominator), high)
    warnings: list[str] = []
    segments = make_segments(analysis, options, low, high, warnings)
    locked = segments if segments[-1].candidates else segments[:-1]
    beats = choose_beats(locked, numerator, options.pin_time_signature)
    anchor_beats = [int(b) for b in np.cumsum(beats)] if beats else []
    bars = bar_lengths(anchor_beats, numerator, options.pin_time_signature)
    if segments[-1].candidates and anchor_beats[-1] % numerator and options.pin_time_signature:
        warnings.append(f"the end of the picture at {segments[-1].end:.3f} s falls inside a bar of the pinned "
                        f"{numerator}/{denominator}: the last bar runs past it")
    tempo_pieces = realise_tempo(segments, anchor_beats, bars, numerator, low, high, warnings)
    cut_beats = anchor_beats[:len(segments) - 1]
    return assemble(analysis, options, segments, cut_beats, bars, tempo_pieces, (low, high),
                    (numerator, denominator), warnings)


def check_holds_a_bar(duration: float, signature: TimeSignature, fastest_bpm: float) -> None:
    """A clip shorter than one bar at the fastest tempo in range has no bar grid to lock to: refused."""
    bar = signature.ticks_per_bar / TICKS_PER_BEAT * 60.0 / fastest_bpm
    if duration < bar:
        raise CuesmithError(f"the clip is {duration:.2f} s long, shorter than one bar ({bar:.2f} s of "
                            f"{signature.numerator}/{signature.denominator} at {fastest_bpm:.0f} BPM): "
                            "nothing to score", hint="give a longer clip or --start/--end range")


def tempo_range(analysis, options: PlanOptions) -> tuple[float, float]:
    if options.tempo:
        return options.tempo * (1 - PIN_SLACK), options.tempo * (1 + PIN_SLACK)
    return BPM_SLOW, BPM_FAST


def segment_target(analysis, start: float, end: float, low: float, high: float,
                   options: PlanOptions) -> float:
    if options.tempo:
        return float(options.tempo)
    times = np.asarray(analysis.motion.times)
    smooth = np.asarray(analysis.motion.smooth)
    inside = (times >= start) & (times < end)
    level = smooth[inside].mean() if inside.any() else analysis.motion.mean
    return float(np.clip(motion_to_bpm(level), low, high))


def beat_candidates(length: float, low: float, high: float) -> list[int]:
    """Whole numbers of beats that fill `length` seconds at a mean tempo in [low, high] BPM."""
    if length <= 0:
        return []
    return list(range(max(1, math.ceil(length * low / 60 - 1e-9)), math.floor(length * high / 60 + 1e-9) + 1))


def make_segments(analysis, options, low, high, warnings) -> list[Segment]:
    segments, start = [], 0.0
    for index, cut in enumerate(sorted(analysis.cuts, key=lambda c: c.time)):
        length = cut.time - start
        candidates = beat_candidates(length, low, high)
        if not candidates:
            warnings.append(f"cut at {cut.time:.3f} s not locked: {length:.2f} s after the previous "
                            f"anchor holds no whole number of beats at {low:.0f}-{high:.0f} BPM")
            continue
        target = segment_target(analysis, start, cut.time, low, high, options)
        segments.append(Segment(start, cut.time, target, index, candidates))
        start = cut.time
    tail_end = max(analysis.duration, start + 1e-3)
    tail = Segment(start, tail_end, segment_target(analysis, start, tail_end, low, high, options), None,
                   beat_candidates(analysis.duration - start, low, high))
    if not tail.candidates:
        warnings.append(f"the end of the picture at {analysis.duration:.3f} s is not on a bar line: the "
                        f"{analysis.duration - start:.2f} s after the last cut hold no whole number of beats at "
                        f"{low:.0f}-{high:.0f} BPM, so the last bar runs past the picture")
    segments.append(tail)
    return segments


def choose_beats(segments: list[Segment], numerator: int, pinned_metre: bool) -> list[int]:
    """Beats per locked segment by dynamic programming over (candidate, phase in the bar).

    A segment with no cut (the tail) ends at the end of the picture: it pays END_BAR_COST,
    not DOWNBEAT_COST, when it does not complete a bar.
    """
    if not segments:
        return []
    # state: (phase, tempo) -> (cost, back-pointer list of beats)
    states: dict[tuple[int, float], tuple[float, list[int]]] = {(0, segments[0].target): (0.0, [])}
    for seg in segments:
        length = seg.end - seg.start
        nxt: dict[tuple[int, float], tuple[float, list[int]]] = {}
        for (phase, prev_tempo), (cost, path) in states.items():
            for n in seg.candidates:
                tempo = 60.0 * n / length
                step = abs(tempo - prev_tempo) if path else 0.0
                reachable = not path or ramp_reaches(prev_tempo, tempo, piece_beats(phase, n, numerator))
                new_phase = (phase + n) % numerator
                off_bar = END_BAR_COST if seg.cut_index is None else DOWNBEAT_COST
                c = (cost + ((tempo - seg.target) / TEMPO_SCALE) ** 2 + (step / STEP_SCALE) ** 2
                     + (off_bar if new_phase else 0.0) + (0.0 if reachable else INFEASIBLE_COST))
                key = (0 if not pinned_metre and new_phase else new_phase, round(tempo, 6))
                if key not in nxt or c < nxt[key][0]:
                    nxt[key] = (c, path + [n])
        states = prune(nxt)
    return min(states.values(), key=lambda v: v[0])[1]


def piece_beats(phase: int, n: int, numerator: int) -> list[int]:
    """Beats of each piece (stretch between bar lines) of an n-beat segment starting `phase` beats into a bar."""
    lengths, position = [], 0
    while position < n:
        length = min(numerator - (phase + position) % numerator, n - position)
        lengths.append(length)
        position += length
    return lengths


def ramp_reaches(start_bpm: float, mean_bpm: float, lengths: list[int]) -> bool:
    """Whether pieces stepping by MAX_STEP_BPM from `start_bpm` can average `mean_bpm` (the DP's step bound)."""
    def mean(sign: float) -> float:
        tempos = [max(start_bpm + sign * MAX_STEP_BPM * (i + 1), 1.0) for i in range(len(lengths))]
        return sum(lengths) / sum(b / t for b, t in zip(lengths, tempos))
    return mean(-1.0) - 1e-6 <= mean_bpm <= mean(1.0) + 1e-6


def prune(states: dict, keep: int = 64) -> dict:
    """Keep the cheapest states: the tempo part of the state is continuous."""
    best = sorted(states.items(), key=lambda kv: kv[1][0])[:keep]
    return dict(best)


def bar_lengths(anchor_beats: list[int], numerator: int, pinned_metre: bool) -> list[int]:
    """Beats per bar up to the last anchor; a bar is shortened to end at an anchor unless the metre is pinned."""
    bars: list[int] = []
    position = 0
    for cut in anchor_beats:
        while position + numerator <= cut:
            bars.append(numerator)
            position += numerator
        if position < cut and not pinned_metre:
            bars.append(cut - position)
            position = cut
    return bars


@dataclass
class Piece:
    beat: float  # start, in beats from 0
    beats: float  # length in beats
    bpm: float = 0.0


def pieces_between(start: float, end: float, boundaries: list[float]) -> list[Piece]:
    inner = [b for b in boundaries if start < b < end]
    edges = [start, *inner, end]
    return [Piece(a, b - a) for a, b in zip(edges[:-1], edges[1:])]


def realise_tempo(segments, anchor_beats, bars, numerator, low, high, warnings) -> list[Piece]:
    """Tempo for every piece (the stretch between two bar lines or anchors), segment by segment.

    `anchor_beats` ends every locked segment, the tail's too when the end of the picture is locked;
    an unlocked tail gets `tail_pieces`.
    """
    boundaries = list(np.cumsum(bars)) if bars else []
    pieces: list[Piece] = []
    previous = segments[0].target
    start_beat = 0.0
    for seg, end_beat in zip(segments, anchor_beats):
        seg_pieces = pieces_between(start_beat, end_beat, boundaries)
        if start_beat == 0:  # the first shot starts at its own mean tempo: nothing to ramp from
            previous = 60.0 * end_beat / (seg.end - seg.start)
        tempos, _ = fitting_ramp(seg_pieces, previous, seg.end - seg.start, low, high)
        largest = float(np.max(np.abs(np.diff([previous, *tempos]))))
        if largest > MAX_STEP_BPM + 1e-6:
            warnings.append(f"tempo changes by up to {largest:.1f} BPM per bar from {seg.start:.2f} s: "
                            f"the shot is too short to reach {tempos[-1]:.1f} BPM in steps of {MAX_STEP_BPM:g}")
        for piece, bpm in zip(seg_pieces, tempos):
            piece.bpm = bpm
        pieces.extend(seg_pieces)
        previous, start_beat = tempos[-1], end_beat
    if len(anchor_beats) == len(segments):
        return pieces
    next_bar = float(sum(bars)) if sum(bars) > start_beat else float(sum(bars) + numerator)
    if not anchor_beats:
        next_bar = float(numerator)
    return pieces + tail_pieces(segments[-1], start_beat, next_bar, numerator, previous)


FALLBACK_STEPS = (8.0, 10.0, 14.0, 20.0, 30.0, 45.0, 1e9)  # tried in turn when MAX_STEP_BPM cannot fit


def fitting_ramp(pieces: list[Piece], start_bpm: float, seconds: float, low: float,
                 high: float) -> tuple[list[float], float]:
    """Piece tempos lasting exactly `seconds` in range, with the smallest step per bar that allows it."""
    for step in (MAX_STEP_BPM, *FALLBACK_STEPS):
        level = solve_ramp(pieces, start_bpm, seconds, step)
        if level is not None:
            tempos = ramp(pieces, start_bpm, level, step)
            if low - 1e-6 <= min(tempos) and max(tempos) <= high + 1e-6:
                return tempos, step
    mean = 60.0 * sum(p.beats for p in pieces) / seconds  # always in range: it is a DP candidate
    return [mean] * len(pieces), abs(mean - start_bpm)


def ramp(pieces: list[Piece], start_bpm: float, level: float, step: float) -> list[float]:
    """Tempo of each piece, stepping from `start_bpm` towards `level` by at most `step` each."""
    return [start_bpm + float(np.clip(level - start_bpm, -step * (i + 1), step * (i + 1)))
            for i in range(len(pieces))]


def solve_ramp(pieces: list[Piece], start_bpm: float, seconds: float, step: float) -> Optional[float]:
    """The level the ramp heads for so the pieces last exactly `seconds`; None if none does."""
    def duration(level: float) -> float:
        return sum(p.beats * 60.0 / bpm for p, bpm in zip(pieces, ramp(pieces, start_bpm, level, step)))

    lo, hi = 20.0, 400.0
    if not duration(hi) <= seconds <= duration(lo):
        return None
    for _ in range(80):  # duration falls as the level rises: bisect
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if duration(mid) > seconds else (lo, mid)
    level = (lo + hi) / 2
    return level if abs(duration(level) - seconds) < 1e-7 else None


def tail_pieces(tail: Segment, start_beat: float, next_bar: float, numerator: int,
                start_bpm: float) -> list[Piece]:
    """After the last cut: bar by bar towards the tail's motion tempo until the picture ends."""
    pieces, elapsed, beat, bpm = [], 0.0, start_beat, start_bpm
    span = tail.end - tail.start
    while elapsed < span - 1e-9:
        if pieces or beat > 0:  # the very first piece of a plan without cuts starts at the target
            bpm = bpm + float(np.clip(tail.target - bpm, -MAX_STEP_BPM, MAX_STEP_BPM))
        length = (next_bar - beat) if beat < next_bar else float(numerator)
        pieces.append(Piece(beat, length, bpm))
        elapsed += length * 60.0 / bpm
        beat += length
    return pieces


def assemble(analysis, options, segments, cut_beats, bars, pieces, bpm_range, metre, warnings) -> ScorePlan:
    numerator, denominator = metre
    ticks_per_beat = TICKS_PER_BEAT * 4 // denominator
    total_beats = pieces[-1].beat + pieces[-1].beats if pieces else numerator
    bars = list(bars)
    while sum(bars) < total_beats - 1e-9:
        bars.append(numerator)
    bar_starts = np.concatenate([[0], np.cumsum(bars)[:-1]]).astype(int)
    signatures = metre_changes(bars, bar_starts, ticks_per_beat, denominator)
    tempos = tempo_changes(pieces, ticks_per_beat)
    cut_ticks = [int(b) * ticks_per_beat for b in cut_beats]
    locked = [seg.cut_index for seg in segments[:-1]]
    markers = [Marker(tick, f"cut {i + 1}") for i, tick in zip(locked, cut_ticks)]
    song = Song(tempos=tempos, time_signatures=signatures)
    bar_ticks = [int(b) * ticks_per_beat for b in bar_starts]
    bar_times = [song.tick_to_seconds(t) for t in bar_ticks] + [song.tick_to_seconds(
        int(sum(bars)) * ticks_per_beat)]
    key = plan_key(analysis, options)
    cut_bar_ticks = set(cut_ticks) | {0}
    controls = bar_controls(analysis, bar_times, [t in cut_bar_ticks or _cut_inside(t, bar_ticks, cut_ticks)
                                                  for t in bar_ticks], options)
    return ScorePlan(analysis.duration, tempos, signatures, bar_ticks, controls, key, markers,
                     [c.time for c in analysis.cuts], cut_ticks, (round(bpm_range[0], 3), round(bpm_range[1], 3)),
                     "cut-locked", warnings)


def _cut_inside(bar_tick: int, bar_ticks: list[int], cut_ticks: list[int]) -> bool:
    """A cut inside this bar (metre pinned) starts a section at this bar too."""
    i = bar_ticks.index(bar_tick)
    end = bar_ticks[i + 1] if i + 1 < len(bar_ticks) else math.inf
    return any(bar_tick <= c < end for c in cut_ticks)


def metre_changes(bars: list[int], bar_starts: np.ndarray, ticks_per_beat: int,
                  denominator: int) -> list[TimeSignature]:
    signatures: list[TimeSignature] = []
    for length, start in zip(bars, bar_starts):
        if not signatures or signatures[-1].numerator != length:
            signatures.append(TimeSignature(int(start) * ticks_per_beat, int(length), denominator))
    return signatures


def tempo_changes(pieces: list[Piece], ticks_per_beat: int) -> list[TempoChange]:
    """One TempoChange wherever the tempo of a piece differs from the one before."""
    changes: list[TempoChange] = []
    for piece in pieces:
        bpm = round(piece.bpm, 4)
        if not changes or abs(changes[-1].bpm - bpm) > 1e-9:
            changes.append(TempoChange(int(round(piece.beat * ticks_per_beat)), float(bpm)))
    return changes or [TempoChange(0, 120.0)]
