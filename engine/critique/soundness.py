"""Is it music? Facts beside HarmonySet's four scores, so scrambled or random notes are named as such.

Facts (each 0..1, higher = more like music; MIDI unless said):
- key fit (tonal coherence; MIDI and audio): the share of the pitch-class
  profile (MIDI: velocity-weighted sounding notes; audio: chroma) inside the
  best of the twelve diatonic scales;
- chord fit (tonal coherence, local; MIDI and audio): per beat, the share of
  that beat's profile on the best of the 24 major/minor triads, averaged with
  the beats' weights;
- repetition (motif structure; MIDI and audio): per bar, the largest cosine
  between its sequence of beat profiles (four beats of 12 pitch classes) and
  any other bar's, averaged over the bars: real songs repeat their patterns;
- voice leading: the share of steps no wider than `STEP_MAX` semitones in the
  melodic line (the most monophonic part, else the skyline of all parts);
- density sanity: onsets per second, notes sounding at once and pitch span
  within twice what the POP909 training songs ever do (`SANE`), said in words when not.

- consonance (voice leading and density sanity): 1 − the share of note pairs
  sounding together a semitone apart (modulo the octave);
- pulse (MIDI and audio): changes.py's pulse clarity.

A fact is *out* when it falls below its floor (`FLOORS`: the 1st percentile of
8-bar excerpts of POP909 songs 001-700, four per song; `tune` prints them; the
pulse floor is changes.PULSE_MIN). MIDI: the facts, standardised, go through a
logistic model (weights ≤ 0 on every fact) fitted on those excerpts against
their pitch-scrambled and random-note versions (foils.py); its threshold flags 2% of the real excerpts.
The music is flagged ("does not sound like music") above it, and the score
(0..1, for ranking variations) is the model's probability of real music
relative to the threshold (0.5 there). Audio (no notes: no voice leading or
consonance; its own floors `AUDIO_FLOORS`, from renders of training songs,
`tune_audio`): flagged when `FLAG_COUNT` facts are out; score = mean over the
facts of (value − floor)/(median − floor), clipped to 0..1. Insane density
always flags. Music shorter than `MIN_BARS` bars (4/4; audio: beats / 4) gets
its facts and score but no verdict: two-bar cues repeat nothing and have few
melodic steps, and nothing here was tuned on them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .changes import AUDIO_PULSE_MIN, PULSE_MIN, Sounding, window_means

STEP_MAX = 2
MONOPHONIC = 0.8  # share of single-note onsets that makes a part a melodic line
# Tuned by `python -m cuesmith.engine.critique.soundness` on POP909 001-700 (see `tune`).
# 560 8-bar excerpts of songs 1, 6, 11, ... 696 (tune()): the model, thresholded to flag 2% of them,
# flags 96% of their pitch-scrambled and 100% of their random-note versions. Its weights may not
# be positive (no fact counts against music for being more music-like): unbounded, it learned that
# a perfect key fit with a middling chord fit means scrambled, and flagged every in-key V-MusProd cue.
FLOORS = {"key fit": 0.8, "chord fit": 0.775, "repetition": 0.729, "voice leading": 0.065, "consonance": 0.93, "pulse": PULSE_MIN}
MEDIANS = {"key fit": 1.0, "chord fit": 0.902, "repetition": 0.868, "voice leading": 0.667, "consonance": 0.982, "pulse": 1.0}
MODEL = {"means": [0.8757, 0.7359, 0.7662, 0.4548, 0.9132, 0.6952], "scales": [0.1545, 0.1328, 0.1036, 0.1958, 0.0673, 0.4003], "weights": [0.0, -5.5801, -1.1532, -1.2292, -1.2194, 0.0], "bias": 4.8977, "threshold": 0.6066}
# Audio (tune_audio: renders of 8-bar excerpts of songs 1, 45, ..., 661; min / median / max):
# real key fit 0.70/0.74/0.77, chord fit 0.50/0.53/0.59, pulse 0.34/0.96/1.00; random notes key fit
# 0.60-0.65, chord fit 0.40-0.46, pulse 0.11-0.37; repetition does not tell them apart (0.74-0.98
# real, 0.76-0.84 random); scrambled pitches sit inside the real range on everything but chord fit
# (0.43-0.57), so from audio the critique names random notes, not scrambled ones.
AUDIO_FLOORS = {"key fit": 0.67, "chord fit": 0.48, "repetition": 0.70, "pulse": AUDIO_PULSE_MIN}
AUDIO_MEDIANS = {"key fit": 0.738, "chord fit": 0.525, "repetition": 0.887, "pulse": 0.964}
FLAG_COUNT = 2  # audio facts out that flag the music
MIN_BARS = 4  # shorter music gets facts and a score but no verdict: the floors and model saw 8 bars
MIDI_FACTS = ("key fit", "chord fit", "repetition", "voice leading", "consonance", "pulse")
# POP909 001-700 (one song in 3, whole songs): at most 5.8 onsets per second, 15 notes at once, a
# span of 80 semitones; music beyond twice that (an eight-octave span) is not played music.
SANE = {"onsets per second": 12.0, "notes at once": 30, "pitch span": 96}
DIATONIC = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], float)
TRIADS = np.array([np.roll(t, r) for t in ([1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0], [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0])
                   for r in range(12)], float)


@dataclass
class Soundness:
    facts: dict[str, float]  # name -> value 0..1
    out: list[str]  # the facts below their floor, and density faults, in words
    flagged: bool
    score: float  # 0..1
    density: dict[str, float] = field(default_factory=dict)
    judged: bool = True  # False: too short for a verdict (the facts and score still stand)

    @property
    def verdict(self) -> str:
        if not self.judged:
            return "is too short to judge as music"
        return "does not sound like music" if self.flagged else "sounds like music"


def key_fit(chroma: np.ndarray) -> float:
    profile = chroma.sum(axis=0)
    total = profile.sum()
    if total <= 0:
        return 0.0
    return float(max(profile @ np.roll(DIATONIC, r) for r in range(12)) / total)


def chord_fit(chroma: np.ndarray, frame_s: float, beats: np.ndarray) -> float:
    if len(beats) < 2:
        return 0.0
    windows = window_means(chroma, frame_s, beats[:-1], beats[1:])
    weight = windows.sum(axis=1)
    keep = weight > 0
    if not keep.any():
        return 0.0
    share = (windows[keep] @ TRIADS.T).max(axis=1) / weight[keep]
    return float(np.average(share, weights=weight[keep]))


def chroma_repetition(chroma: np.ndarray, frame_s: float, beats: np.ndarray, per_bar: int = 2) -> float:
    if len(beats) < 3 * per_bar + 1:
        return 0.0
    windows = window_means(chroma, frame_s, beats[:-1], beats[1:])
    n_bars = len(windows) // per_bar
    bars = windows[:n_bars * per_bar].reshape(n_bars, -1)
    norms = np.linalg.norm(bars, axis=1)
    keep = norms > 0
    unit = bars[keep] / norms[keep, None]
    if len(unit) < 3:
        return 0.0
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -1.0)
    return float(similarity.max(axis=1).mean())


def voice_leading(song) -> float:
    """Share of steps of at most `STEP_MAX` semitones in the melodic line: the top note of each onset
    of the most monophonic part (at least 8 onsets), or the skyline of all parts when none is."""
    from collections import defaultdict

    from ..music.skyline import skyline

    best, line = 0.0, []
    for p in song.parts:
        groups = defaultdict(list)
        for n in p.notes:
            groups[n.start].append(n.pitch)
        if p.is_drum or len(groups) < 8:
            continue
        mono = float(np.mean([len(g) == 1 for g in groups.values()]))
        if mono > best:
            best, line = mono, [max(groups[k]) for k in sorted(groups)]
    if best < MONOPHONIC:
        line = [n.pitch for n in skyline(n for p in song.parts if not p.is_drum for n in p.notes)[0]]
    steps = np.abs(np.diff(line))
    return float(np.mean(steps <= STEP_MAX)) if len(steps) else 0.0


def consonance(song) -> float:
    """1 − the share of pairs of notes sounding together at each onset that are a semitone apart
    (minor second, major seventh, minor ninth...): chords are stacked, not clustered."""
    notes = [n for p in song.parts if not p.is_drum for n in p.notes]
    if not notes:
        return 0.0
    starts, ends = np.array([n.start for n in notes]), np.array([n.end for n in notes])
    pitches = np.array([n.pitch for n in notes])
    pairs = clashes = 0
    for t in np.unique(starts):
        sounding = pitches[(starts <= t) & (ends > t)]
        gaps = np.abs(sounding[:, None] - sounding[None, :])[np.triu_indices(len(sounding), 1)]
        gaps = gaps[gaps > 0] % 12
        pairs += len(gaps)
        clashes += int(np.sum((gaps == 1) | (gaps == 11)))
    return 1.0 - clashes / pairs if pairs else 1.0


def density(song, duration: float) -> dict[str, float]:
    notes = [n for p in song.parts if not p.is_drum for n in p.notes]
    if not notes:
        return {}
    starts = np.array(sorted({n.start for n in notes}))
    events = sorted([(n.start, 1) for n in notes] + [(n.end, -1) for n in notes])
    at_once = int(np.max(np.cumsum([e for _, e in events])))
    pitches = [n.pitch for n in notes]
    return {"onsets per second": round(len(starts) / max(duration, 1e-6), 2), "notes at once": at_once,
            "pitch span": max(pitches) - min(pitches)}


def midi_facts(song, sounding: Sounding, clarity: float, duration: float) -> dict[str, float]:
    return {"key fit": key_fit(sounding.chroma), "chord fit": chord_fit(sounding.chroma, sounding.frame_s, sounding.grid),
            "repetition": chroma_repetition(sounding.chroma, sounding.frame_s, sounding.grid),
            "voice leading": voice_leading(song), "consonance": consonance(song), "pulse": clarity}


def audio_facts(sounding: Sounding, clarity: float) -> dict[str, float]:
    return {"key fit": key_fit(sounding.chroma), "chord fit": chord_fit(sounding.chroma, sounding.frame_s, sounding.grid),
            "repetition": chroma_repetition(sounding.chroma, sounding.frame_s, sounding.grid), "pulse": clarity}


def judge(facts: dict[str, float], dens: Optional[dict] = None, audio: bool = False, bars: float = MIN_BARS) -> Soundness:
    """MIDI (`MIDI_FACTS`): flagged by the logistic model; audio: when `FLAG_COUNT` facts are out.
    Under `MIN_BARS` bars there is no verdict (insane density still flags)."""
    facts = {k: round(float(v), 3) for k, v in facts.items()}
    floors, medians = (AUDIO_FLOORS, AUDIO_MEDIANS) if audio else (FLOORS, MEDIANS)
    out = [f"{k} {v:.2f} is below {floors[k]:.2f}" for k, v in facts.items() if v < floors[k]]
    dens = dens or {}
    insane = [f"{k} {v:g} is above {SANE[k]:g}" for k, v in dens.items() if v > SANE[k]]
    if not audio:
        x = (np.array([facts[k] for k in MIDI_FACTS]) - np.array(MODEL["means"])) / np.array(MODEL["scales"])
        margin = float(x @ np.array(MODEL["weights"]) + MODEL["bias"] - MODEL["threshold"])
        score, flagged = 1.0 / (1.0 + np.exp(np.clip(margin, -30, 30))), margin > 0
    else:
        parts = [np.clip((v - floors[k]) / max(medians[k] - floors[k], 1e-6), 0.0, 1.0) for k, v in facts.items()]
        score, flagged = float(np.mean(parts)), len(out) >= FLAG_COUNT
    if flagged and not out:
        out = ["the facts together are unlike real songs"]
    judged = bars >= MIN_BARS
    if not judged:
        flagged, out = False, [f"{bars:.0f} bars are too few to judge (fewer than {MIN_BARS})"]
    if insane:
        score, flagged = score * 0.5, True
    return Soundness(facts, out + insane, bool(flagged), round(float(score), 3), dens, judged)


# -- tuning ------------------------------------------------------------------------

def excerpts(numbers, per_song: int = 4, bars: int = 16, seed: int = 0):
    """(number, excerpt Song) — `per_song` excerpts of `bars` bars from each POP909 song."""
    from ..music.pop909 import load_song
    from .foils import excerpt

    rng = np.random.default_rng(seed)
    for number in numbers:
        song = load_song(number).song
        lines = song.bars(song.end_tick)
        if len(lines) < bars + 2:
            continue
        for first in sorted(rng.choice(len(lines) - bars - 1, size=min(per_song, len(lines) - bars - 1), replace=False)):
            yield number, excerpt(song, lines[first], lines[first + bars])


def measure(song) -> dict[str, float]:
    from .changes import midi_sounding, pulse

    sounding = midi_sounding(song)
    return midi_facts(song, sounding, pulse(sounding).clarity, song.duration_seconds)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-4) -> tuple[np.ndarray, float]:
    from scipy.optimize import minimize

    def loss(theta):
        z = x @ theta[:-1] + theta[-1]
        return float(np.mean(np.logaddexp(0, z) - y * z) + l2 * theta[:-1] @ theta[:-1])

    # monotone: no fact may count against music for being *more* music-like (y = 1 is the foil)
    bounds = [(None, 0.0)] * x.shape[1] + [(None, None)]
    theta = minimize(loss, np.zeros(x.shape[1] + 1), method="L-BFGS-B", bounds=bounds).x
    return theta[:-1], float(theta[-1])


def tune(numbers=range(1, 701, 5), per_song: int = 4, bars: int = 8, real_flagged: float = 0.02) -> dict:
    """Floors (1st percentile) and medians of each fact over `bars`-bar excerpts of real training songs,
    and the logistic model (real vs scrambled and random versions of the same excerpts) with its
    threshold set so that `real_flagged` of the real excerpts are flagged."""
    from .foils import pitch_scrambled, random_notes

    rng = np.random.default_rng(1)
    real, foils = [], {"scrambled": [], "random": []}
    for _, song in excerpts(numbers, per_song, bars):
        real.append(measure(song))
        foils["scrambled"].append(measure(pitch_scrambled(song, rng)))
        foils["random"].append(measure(random_notes(song, rng)))
    names = list(MIDI_FACTS)
    table = {k: np.array([r[k] for r in real]) for k in names}
    floors = {k: round(float(np.percentile(v, 1)), 3) for k, v in table.items()}
    medians = {k: round(float(np.median(v)), 3) for k, v in table.items()}
    rows = lambda rs: np.array([[r[k] for k in names] for r in rs])  # noqa: E731
    x = np.vstack([rows(real), rows(foils["scrambled"]), rows(foils["random"])])
    y = np.concatenate([np.zeros(len(real)), np.ones(2 * len(real))])
    means, scales = x.mean(axis=0), x.std(axis=0) + 1e-9
    weights, bias = fit_logistic((x - means) / scales, y)
    z = lambda rs: ((rows(rs) - means) / scales) @ weights + bias  # noqa: E731
    threshold = float(np.quantile(z(real), 1 - real_flagged))
    model = {"means": np.round(means, 4).tolist(), "scales": np.round(scales, 4).tolist(),
             "weights": np.round(weights, 4).tolist(), "bias": round(bias, 4), "threshold": round(threshold, 4)}
    report = {"excerpts": len(real), "floors": floors, "medians": medians, "model": model}
    for name, rs in foils.items():
        report[name + " median"] = {k: round(float(np.median([r[k] for r in rs])), 3) for k in names}
        report[name + " below floor"] = {k: round(float(np.mean([r[k] < floors[k] for r in rs])), 3) for k in names}
        report[name + " flagged"] = round(float(np.mean(z(rs) > threshold)), 3)
    return report


def tune_audio(numbers=range(1, 701, 44), seconds: float = 20.0) -> dict:
    """Audio facts of SoundFont renders (22.05 kHz) of excerpts of training songs and their foils:
    audio chroma spreads energy over overtones, so MIDI floors do not carry over (`AUDIO_FLOORS`)."""
    import tempfile
    from pathlib import Path

    import soundfile

    from ..music.render import render_audio
    from .foils import pitch_scrambled, random_notes
    from .music import music_facts

    rng = np.random.default_rng(2)
    rows: dict[str, list] = {"real": [], "scrambled": [], "random": []}
    with tempfile.TemporaryDirectory() as tmp:
        for number, song in excerpts(numbers, 1, 8):
            for name, music in (("real", song), ("scrambled", pitch_scrambled(song, rng)),
                                ("random", random_notes(song, rng))):
                audio = render_audio(music, sample_rate=22_050)
                path = Path(tmp) / f"{number}-{name}.wav"
                soundfile.write(path, audio.mix, audio.sample_rate)
                facts = music_facts(path).soundness
                if facts is not None:
                    rows[name].append(facts.facts)
    names = list(rows["real"][0])
    return {name: {k: [round(float(np.min([r[k] for r in rs])), 3), round(float(np.median([r[k] for r in rs])), 3),
                       round(float(np.max([r[k] for r in rs])), 3)] for k in names}
            for name, rs in rows.items()}


if __name__ == "__main__":
    import json

    print(json.dumps(tune(), indent=1))
