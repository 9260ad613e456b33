"""The KV-cache decode loop of one V-MusProd stage, constrained to a plan.

Per stage: the encoder graph runs once (cross-attention K/V of every layer),
then the decoder step graph runs once per token for the whole batch of
variations, its self-attention cache fed back in. After each step the host
samples a type, then that type's fields, under the plan's constraints:

- bars: exactly `n_bars` BAR tokens, each with the plan's metre and tempo,
  then EOS; a bar holds at most `max_per_bar` tokens;
- token types: BOS -> BAR; BAR -> POSITION | BAR | EOS; POSITION -> the
  stage's event type (CHORD or NOTE); an event -> another event (notes
  only, rising in pitch) | POSITION | BAR | EOS;
- positions rise within a bar and stay inside it;
- chord stage: a section-start bar opens with a chord on its downbeat that
  differs from the chord before it (chords change at section boundaries);
- key: chords stay within the plan's key (every chord tone in the scale;
  in minor the raised leading tone only in the dominant chords V, V7 and
  vii; in major no chord on the submediant, vi), a section opens on the
  tonic chord unless the chord before it is already the tonic, and the piece closes on an authentic cadence (the
  second-to-last bar holds V7, the last the tonic chord);
- harmony: melody and accompaniment notes take pitches of the scale; the
  accompaniment's notes are tones of the chord sounding at their onset,
  its lowest note where a chord starts the chord's root; the melody's notes
  on the beats are chord tones (between beats any scale tone: passing and
  neighbour notes).

The nets choose among what the plan allows. Without the harmony rules the
mode did not come through: the nets (trained on all 12 transpositions, the
mode a weak control) filled C major and A minor, which share their pitch
classes, with the same chord-tone-poor texture (41% of melody and 44% of
accompaniment time on tones of the sounding chord), so the detected key
was often neither tonic: 7 of 20 seeds flipped the detected mode; with
these rules 20 of 20 (tests/test_vmusprod_runtime.py) and 37 of seeds
20-59 (8-bar plans, C major vs A minor). That count leaned on the final
tonic chord held for bars past the plan's end; once the score ended with
the picture (notes cut at the last bar, pipeline.py) it fell to
17 of 20 and 33 of 40, the misses mostly major plans heard as the
relative minor. Measured then (same seeds, both modes): the melody on the
tonic from the middle of the last bar 18/20, 37/40 (on the last beat
only 18/20, 34/40); the last bar's accompaniment opening on its downbeat,
the tonic in the bass, 17/20, 32/40 (with the melody rule 18/20, 37/40);
a third above the bass root at chord onsets 18/20, 34/40; no vi on a
bar's downbeat in major 18/20, 37/40; no chord on the submediant in major
18/20, 39/40 (combined with the melody and bass
rules 18/20, 38/40). Kept the last: in major the key's chords leave out
vi (the relative minor's tonic chord); ii, iii and IV stay.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ...music.theory import CHORD_TONES, NO_CHORD_QUALITY
from ...music.tokens import (DURATION, METER, N_FIELDS, PITCH, POSITION, QUALITIES, QUALITY, ROOT, TEMPO, TYPE,
                             VELOCITY, VOCAB, TokenType)
from ...runtime.context import step_context
from ...runtime.sampling import Sampling, sample
from ...runtime.sessions import open_session, session_provider

EVENT_TYPE = {"chord": TokenType.CHORD, "melody": TokenType.NOTE, "accompaniment": TokenType.NOTE}
MAX_PER_BAR = {"chord": 12, "melody": 40, "accompaniment": 72}
# Notes sounding together at one onset, at most: the 99.9th percentile in POP909 001-700 (every 7th song:
# melody 2, piano 6). Without it the last onset of a piece, which cannot move on to a new bar, stacked up
# to ~15 rising notes (up to C9) before the nets chose EOS. (Making EOS as likely as BAR in the last bar
# stopped the pile but left 5 of 8 four-bar melodies empty and the mode flips at 15 of 20: not kept.)
MAX_NOTES_PER_ONSET = {"melody": 2, "accompaniment": 6}
# Where a note must be a tone of the chord sounding at its onset: the melody on the beats (passing and
# neighbour tones between them), the accompaniment everywhere.
CHORD_TONE_POSITIONS = {"melody": "beats", "accompaniment": "all"}
ROOT_IN_BASS = ("accompaniment",)  # its lowest note where a chord starts is the chord's root
# A decode step of these small nets is ~260 tiny ops: thread hand-offs cost more than they save
# (8-bar plan on the 2-core dev machine, best of 3: 1 variation 0.39 s with one thread vs 1.59 s with ORT's
# default, 3 variations 1.03 vs 2.28 s; step times in benchmarks/bench_vmusprod.py)
DECODER_THREADS = 1


@dataclass(frozen=True)
class BarPlan:
    """What the decoder must write for each bar: metre and tempo fields, controls, section starts."""

    meter: np.ndarray  # (n_bars,) METER field values (1 + index)
    tempo: np.ndarray  # (n_bars,) TEMPO field values (1 + bin)
    sixteenths: np.ndarray  # (n_bars,) bar length in 16ths
    controls: np.ndarray  # (n_bars, 5) control_ids
    section_start: np.ndarray  # (n_bars,) bool
    key_chords: Optional[np.ndarray] = None  # (13, 1 + len(QUALITIES)) bool over (ROOT, QUALITY) fields
    tonic_chord: Optional[tuple[int, int]] = None  # (ROOT, QUALITY) field values of the key's tonic chord
    key_pitches: Optional[np.ndarray] = None  # (129,) bool over PITCH field values: notes of the key's scale
    cadence: tuple[tuple[int, int], ...] = ()  # (ROOT, QUALITY) of the chord each of the last bars holds

    @property
    def n_bars(self) -> int:
        return len(self.meter)


class StageRunner:
    """The encoder and decoder sessions of one stage and its sizes."""

    def __init__(self, stage: str, encoder_path, decoder_path, net_config: dict):
        self.stage = stage
        self.encoder = open_session(encoder_path)
        self.decoder = open_session(decoder_path, threads=DECODER_THREADS)
        self.n_layers, self.n_heads = net_config["n_layers"], net_config["n_heads"]
        self.head_dim = net_config["d_model"] // net_config["n_heads"]
        self.d_video = net_config.get("d_video", 16)
        self.field_sizes = tuple(net_config["field_sizes"])
        self.offsets = np.cumsum((0,) + self.field_sizes[1:])

    @property
    def provider(self) -> str:
        return session_provider(self.decoder)

    def memory(self, batch: int, source: Optional[list[np.ndarray]], source_context: Optional[list[np.ndarray]]):
        """Cross K/V and memory bars: from the source tokens, or the 'no video' zeros (chord)."""
        if source is None:
            video = np.zeros((batch, 1, self.d_video), dtype=np.float32)
            cross_k, cross_v = self.encoder.run(None, {"video": video})
            return cross_k, cross_v, np.zeros((batch, 1), dtype=np.int64)
        length = max(len(s) for s in source)
        tokens = np.zeros((batch, length, N_FIELDS), dtype=np.int64)
        context = np.zeros((batch, length, source_context[0].shape[1]), dtype=np.int64)
        bars = np.full((batch, length), -1, dtype=np.int64)
        for i, (s, c) in enumerate(zip(source, source_context)):
            tokens[i, :len(s)], context[i, :len(s)], bars[i, :len(s)] = s, c, c[:, 0]
        cross_k, cross_v = self.encoder.run(None, {"source": tokens, "source_context": context, "source_bar": bars})
        return cross_k, cross_v, bars

    def field_slice(self, logits: np.ndarray, field_index: int) -> np.ndarray:
        return logits[self.offsets[field_index - 1]:self.offsets[field_index]]


@dataclass
class RowState:
    """Where one variation stands in the plan."""

    bars: int = 0  # BAR tokens written
    position: int = 0  # last POSITION value in the bar (1-based), 0 right after BAR
    in_bar: int = 0  # tokens written in the current bar
    last_type: int = TokenType.BOS
    last_pitch: int = -1  # of the last note at this position
    onset_notes: int = 0  # notes written at this position
    chord: tuple[int, int] = (-1, -1)  # (root, quality) fields of the last chord
    needs_downbeat_chord: bool = False
    done: bool = False
    harmony: Optional["Harmony"] = None  # the source's chords (melody and accompaniment stages)
    tokens: list = field(default_factory=list)


def generate(runner: StageRunner, plan: BarPlan, batch: int, rng: np.random.Generator, sampling: Sampling,
             source: Optional[list[np.ndarray]] = None, source_context: Optional[list[np.ndarray]] = None,
             max_tokens: Optional[int] = None) -> list[np.ndarray]:
    """`batch` token sequences (BOS ... EOS) of `runner.stage` that follow `plan`."""
    cross_k, cross_v, memory_bar = runner.memory(batch, source, source_context)
    cache_shape = (runner.n_layers, batch, runner.n_heads, 1, runner.head_dim)
    past_k = past_v = np.zeros(cache_shape, dtype=np.float32)
    rows = [RowState() for _ in range(batch)]
    if source is not None and runner.stage in CHORD_TONE_POSITIONS:
        for row, tokens in zip(rows, source):
            row.harmony = harmony(tokens, plan)
    bos = np.zeros(N_FIELDS, dtype=np.int64)
    bos[TYPE] = TokenType.BOS
    token = np.repeat(bos[None], batch, 0)
    context = np.stack([_context(TokenType.BOS, bos, row, plan) for row in rows])
    limit = max_tokens or plan.n_bars * MAX_PER_BAR[runner.stage] + 2
    for row in rows:
        row.tokens.append(bos)
    for _ in range(limit):
        feeds = {"token": token[:, None], "context": context[:, None], "past_k": past_k, "past_v": past_v,
                 "cross_k": cross_k, "cross_v": cross_v, "memory_bar": memory_bar}
        type_logits, field_logits, past_k, past_v = runner.decoder.run(None, feeds)
        for b, row in enumerate(rows):
            if row.done:
                continue
            token[b] = next_token(runner, row, plan, type_logits[b], field_logits[b], rng, sampling)
            advance(row, token[b])
            mark_section_starts(row, plan, runner.stage)
            context[b] = _context(int(token[b, TYPE]), token[b], row, plan)
            row.tokens.append(token[b].copy())
        if all(row.done for row in rows):
            break
    return [_finished(row) for row in rows]


def _finished(row: RowState) -> np.ndarray:
    tokens = np.array(row.tokens, dtype=np.int64)
    if not row.done:  # ran out of steps: close the sequence
        eos = np.zeros((1, N_FIELDS), dtype=np.int64)
        eos[0, TYPE] = TokenType.EOS
        tokens = np.concatenate([tokens, eos])
    return tokens


def allowed_types(stage: str, row: RowState, plan: BarPlan) -> list[int]:
    closing = TokenType.EOS if row.bars >= plan.n_bars else TokenType.BAR
    if row.last_type == TokenType.BOS:
        return [TokenType.BAR]
    full = row.in_bar >= MAX_PER_BAR[stage] - 2
    room = row.position < plan.sixteenths[row.bars - 1] and not full
    if row.last_type == TokenType.BAR:
        if row.needs_downbeat_chord:
            return [TokenType.POSITION]
        return [TokenType.POSITION, closing] if room else [closing]
    if row.last_type == TokenType.POSITION:
        return [EVENT_TYPE[stage]]
    kinds = [closing]
    if room:
        kinds.append(TokenType.POSITION)
    if (EVENT_TYPE[stage] == TokenType.NOTE and row.onset_notes < MAX_NOTES_PER_ONSET[stage] and not full
            and _higher_pitches(row, plan, stage).any()):
        kinds.append(TokenType.NOTE)
    return kinds


def next_token(runner: StageRunner, row: RowState, plan: BarPlan, type_logits: np.ndarray,
               field_logits: np.ndarray, rng: np.random.Generator, sampling: Sampling) -> np.ndarray:
    allowed = np.zeros(len(type_logits), dtype=bool)
    allowed[allowed_types(runner.stage, row, plan)] = True
    kind = sample(type_logits, allowed, rng, sampling)
    token = np.zeros(N_FIELDS, dtype=np.int64)
    token[TYPE] = kind
    logits = field_logits[kind]
    if kind == TokenType.BAR:
        token[METER], token[TEMPO] = plan.meter[row.bars], plan.tempo[row.bars]
    elif kind == TokenType.POSITION:
        token[POSITION] = _position(runner, row, plan, logits, rng, sampling)
    elif kind == TokenType.CHORD:
        token[QUALITY], token[ROOT] = _chord(runner, row, plan, logits, rng, sampling)
        token[DURATION] = _draw(runner, logits, DURATION, range(1, VOCAB.max_duration + 1), rng, sampling)
    elif kind == TokenType.NOTE:
        pitches = runner.field_slice(logits, PITCH)
        token[PITCH] = sample(pitches, _higher_pitches(row, plan, runner.stage), rng, sampling)
        token[DURATION] = _draw(runner, logits, DURATION, range(1, VOCAB.max_duration + 1), rng, sampling)
        token[VELOCITY] = _draw(runner, logits, VELOCITY, range(1, VOCAB.velocity_bins + 1), rng, sampling)
    return token


def _draw(runner: StageRunner, logits: np.ndarray, field_index: int, values: range,
          rng: np.random.Generator, sampling: Sampling) -> int:
    part = runner.field_slice(logits, field_index)
    allowed = np.zeros(len(part), dtype=bool)
    allowed[values.start:min(values.stop, len(part))] = True
    return sample(part, allowed, rng, sampling)


def _higher_pitches(row: RowState, plan: BarPlan, stage: str) -> np.ndarray:
    """PITCH field values a note may take: above the last note at this onset, in the key."""
    allowed = np.zeros(129, dtype=bool)
    allowed[row.last_pitch + 2:] = True
    if plan.key_pitches is not None:
        allowed &= plan.key_pitches
    chord = _chord_tones_here(row, plan, stage)
    if chord is not None and ((allowed & chord).any() or row.last_pitch >= 0):
        allowed &= chord  # (an onset's first note must exist: the key alone if no chord tone is left)
    return allowed


def _chord_tones_here(row: RowState, plan: BarPlan, stage: str) -> Optional[np.ndarray]:
    """(129,) bool over PITCH fields: tones of the chord at the current onset, where the stage keeps to it
    (only the root for the accompaniment's lowest note where a chord starts)."""
    if row.harmony is None or row.bars == 0 or row.position == 0:
        return None
    bar, step = row.bars - 1, row.position - 1
    per_beat = 16 // VOCAB.meters[int(plan.meter[bar]) - 1][1]
    if CHORD_TONE_POSITIONS.get(stage) == "beats" and step % per_beat:
        return None
    classes = row.harmony.tones[bar, step]
    root = row.harmony.onset_roots[bar, step]
    if stage in ROOT_IN_BASS and row.last_pitch < 0 and root >= 0:
        classes = np.arange(12) == root
    if not classes.any():
        return None
    allowed = np.zeros(129, dtype=bool)
    allowed[1:] = classes[np.arange(128) % 12]
    return allowed


@dataclass(frozen=True)
class Harmony:
    """The chords of a chord (or chord+melody) token sequence on the 16th grid of the plan's bars."""

    tones: np.ndarray  # (n_bars, 16ths, 12) bool: pitch classes of the chord sounding at each 16th
    onset_roots: np.ndarray  # (n_bars, 16ths) int: root pitch class of a chord starting there, else -1


def harmony(tokens: np.ndarray, plan: BarPlan) -> Harmony:
    """Where each chord of `tokens` sounds: from its onset until the next chord; none before the first."""
    tones = np.zeros((plan.n_bars, int(plan.sixteenths.max()), 12), dtype=bool)
    roots = np.full(tones.shape[:2], -1, dtype=np.int64)
    bar, position = -1, 0
    for row in tokens:
        kind = row[TYPE]
        if kind == TokenType.BAR:
            bar, position = bar + 1, 1
            if 0 < bar < plan.n_bars:
                tones[bar] = tones[bar - 1, -1]
        elif kind == TokenType.POSITION:
            position = int(row[POSITION])
        elif kind == TokenType.CHORD and 0 <= bar < plan.n_bars and row[QUALITY] != NO_CHORD_QUALITY:
            root = int(row[ROOT]) - 1
            tones[bar, position - 1:] = False
            tones[bar, position - 1:, [(root + t) % 12 for t in CHORD_TONES[QUALITIES[row[QUALITY] - 1]]]] = True
            roots[bar, position - 1] = root
    return Harmony(tones, roots)


def _position(runner, row: RowState, plan: BarPlan, logits, rng, sampling) -> int:
    if row.needs_downbeat_chord:
        return 1
    return _draw(runner, logits, POSITION, range(row.position + 1, int(plan.sixteenths[row.bars - 1]) + 1),
                 rng, sampling)


def _chord(runner, row: RowState, plan: BarPlan, logits, rng, sampling) -> tuple[int, int]:
    """(quality, root) fields: root 0 only for no-chord; in the key; at a section start a new, real chord."""
    pairs = np.zeros((13, len(QUALITIES) + 1), dtype=bool)
    pairs[1:, 1:] = True
    pairs[:, NO_CHORD_QUALITY] = False
    pairs[0, NO_CHORD_QUALITY] = True
    if plan.key_chords is not None:
        pairs &= plan.key_chords
    tonic, closing = plan.tonic_chord, _cadence_chord(row, plan)
    if row.needs_downbeat_chord and plan.section_start[row.bars - 1]:
        pairs[:, NO_CHORD_QUALITY] = False
        pairs[row.chord[0], row.chord[1]] = False
        if tonic is not None and pairs[tonic]:
            return tonic[1], tonic[0]
    elif closing is not None:
        return closing[1], closing[0]
    qualities = runner.field_slice(logits, QUALITY)
    quality = sample(qualities, pairs.any(axis=0), rng, sampling)
    roots = runner.field_slice(logits, ROOT)
    return quality, sample(roots, pairs[:, quality], rng, sampling)


def advance(row: RowState, token: np.ndarray) -> None:
    kind = int(token[TYPE])
    row.last_type = kind
    row.in_bar += 1
    if kind == TokenType.EOS:
        row.done = True
    elif kind == TokenType.BAR:
        row.bars += 1
        row.position, row.in_bar, row.last_pitch, row.onset_notes = 0, 0, -1, 0
        row.needs_downbeat_chord = False
    elif kind == TokenType.POSITION:
        row.position, row.last_pitch, row.onset_notes = int(token[POSITION]), -1, 0
    elif kind == TokenType.CHORD:
        row.chord = (int(token[ROOT]), int(token[QUALITY]))
        row.needs_downbeat_chord = False
    elif kind == TokenType.NOTE:
        row.last_pitch = int(token[PITCH]) - 1
        row.onset_notes += 1


def mark_section_starts(row: RowState, plan: BarPlan, stage: str) -> None:
    """Chord stage: a section-start bar opens on a new chord, a cadence bar on its chord."""
    if stage != "chord" or row.last_type != TokenType.BAR:
        return
    closing = _cadence_chord(row, plan)
    if plan.section_start[row.bars - 1] or (closing is not None and row.chord != closing):
        row.needs_downbeat_chord = True


def _cadence_chord(row: RowState, plan: BarPlan) -> Optional[tuple[int, int]]:
    """The chord the current bar holds if it is one of the plan's closing bars, else None."""
    from_end = plan.n_bars - row.bars  # 0: the last bar
    if row.bars == 0 or from_end >= len(plan.cadence):
        return None
    return plan.cadence[len(plan.cadence) - 1 - from_end]


def _context(kind: int, token: np.ndarray, row: RowState, plan: BarPlan) -> np.ndarray:
    """The context row of the token just written (as `context_rows` would compute it)."""
    if kind == TokenType.BOS:
        return step_context(0, 0, 0, plan.controls, plan.n_bars)
    bar = max(row.bars - 1, 0)
    per_beat = 16 // VOCAB.meters[int(plan.meter[bar]) - 1][1]
    beat = max(row.position - 1, 0) // per_beat
    return step_context(bar, beat, int(plan.tempo[bar]), plan.controls, plan.n_bars)
