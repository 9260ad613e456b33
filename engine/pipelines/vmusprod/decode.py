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
- form (the plan's `rhythm_from`, planning/form.py): a bar that repeats an
  earlier bar's rhythm has its onsets exactly where that bar had them (the
  nets choose the notes); a bar the plan marks melodic has a melody note;
- cuts: the chord and accompaniment stages have an onset on every locked cut
  (a chord, and a bass note on the chord's root), so a cut is heard;
- range: every note within MIDI `PITCH_RANGE`; the melody one note per onset;
  the accompaniment at most `ABOVE_MELODY` semitones above the melody (the
  note sounding at its onset, in a rest the last one heard), so the melody is
  heard on top;
- the last bar: the melody and the accompaniment together have no more onsets
  than the plan's density asks for (`LAST_BAR_SHARE`; an onset may still be a
  chord), none after the start of its last beat, and the chord stage strikes
  its cadence chord once (`LAST_BAR_CHORDS`), so the close lands instead of
  running on in 16ths;
- chord stage: a section-start bar opens with a chord on its downbeat that
  differs from the chord before it (chords change at section boundaries);
- key: chords stay within the plan's key (every chord tone in the scale;
  in minor the raised leading tone only in the dominant chords V, V7 and
  vii; in major no chord on the submediant, vi), the piece opens on the
  tonic chord (a later section on any new chord: forcing the tonic at every
  cut kept the harmony still, issue 12) and closes on an authentic cadence (the
  second-to-last bar holds V7, the last the tonic chord);
- harmony: melody and accompaniment notes take pitches of the scale; their
  notes on the beats are tones of the chord sounding there (between beats any
  scale tone: passing and neighbour notes; with the accompaniment on chord
  tones only, its pitch-class entropy was 2.24 bits against POP909's 2.69),
  the accompaniment's lowest note where a chord starts the chord's root.

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
from ...runtime.kv_cache import InPlaceCache, is_in_place
from ...runtime.sampling import Sampling, sample
from ...runtime.sessions import open_session, session_provider
from .segments import SegmentConfig, Segments

EVENT_TYPE = {"chord": TokenType.CHORD, "melody": TokenType.NOTE, "accompaniment": TokenType.NOTE}
MAX_PER_BAR = {"chord": 12, "melody": 40, "accompaniment": 72}
# Notes sounding together at one onset, at most: the 99.9th percentile in POP909 001-700 (every 7th song:
# piano 6). Without it the last onset of a piece, which cannot move on to a new bar, stacked up
# to ~15 rising notes (up to C9) before the nets chose EOS. (Making EOS as likely as BAR in the last bar
# stopped the pile but left 5 of 8 four-bar melodies empty and the mode flips at 15 of 20: not kept.)
# The melody is one line: 0.09% of POP909's melody onsets hold two notes (a second apart at the median);
# the melody net's cues had 2.2%, the upper note 7-21 semitones higher, often on the last onset.
MAX_NOTES_PER_ONSET = {"melody": 1, "accompaniment": 6}
# Where a note must be a tone of the chord sounding at its onset: on the beats (passing and neighbour tones
# between them), for the melody and the accompaniment alike.
CHORD_TONE_POSITIONS = {"melody": "beats", "accompaniment": "beats"}
ROOT_IN_BASS = ("accompaniment",)  # its lowest note where a chord starts is the chord's root
# A decode step of these small nets is ~260 tiny ops: thread hand-offs cost more than they save
# (8-bar plan on the 2-core dev machine, best of 3: 1 variation 0.39 s with one thread vs 1.59 s with ORT's
# default, 3 variations 1.03 vs 2.28 s; step times in benchmarks/bench_vmusprod.py)
DECODER_THREADS = 1
# The longest source the nets were trained on (TrainConfig.max_tokens): a longer one (a cue of minutes) is
# encoded in bar-aligned windows of at most this many tokens, which also keeps the encoder's attention
# memory bounded (a 10-minute cue's 3000-token source took ~600 MB at once).
ENCODER_WINDOW = 768
PITCH_RANGE = (28, 96)  # lowest and highest MIDI note any stage may write
# The accompaniment keeps under the melody: a note may lie at most this many semitones above the melody note
# sounding at its onset, or in a rest the last one heard (POP909 001-700, every 7th song: 11.5% of
# accompaniment notes start above the sounding melody note, 4.8% more than 7 above; the nets' cues had 21%
# and 9%, the melody was the top voice in 55% of its 16ths against POP909's 74%, and the last onset of a cue,
# after the melody's last note, stacked up to MIDI 96).
ABOVE_MELODY = {"accompaniment": 7}
LAST_BAR_SHARE = {"melody": 1 / 3, "accompaniment": 2 / 3}  # of the plan's onsets in the last bar
# ... and none after the start of its last beat (cuts aside): in POP909 001-700 the last onset of a song falls
# at or before it in 90% of songs (median: beat 2); the nets ran 16ths into the last two 16ths of every cue.
# The chord stage's last bar holds its cadence chord, struck once (cuts aside): one chord in POP909's last
# bars (median and 90th percentile, 001-700); the net re-struck it on the last 16ths of the cue.
LAST_BAR_CHORDS = 1


@dataclass(frozen=True)
class BarPlan:
    """What the decoder must write for each bar: metre and tempo fields, controls, section starts."""

    meter: np.ndarray  # (n_bars,) METER field values (1 + index)
    tempo: np.ndarray  # (n_bars,) TEMPO field values (1 + bin)
    sixteenths: np.ndarray  # (n_bars,) bar length in 16ths
    controls: np.ndarray  # (n_bars, len(CONTROL_FIELDS)) control_ids
    section_start: np.ndarray  # (n_bars,) bool
    key_chords: Optional[np.ndarray] = None  # (13, 1 + len(QUALITIES)) bool over (ROOT, QUALITY) fields
    tonic_chord: Optional[tuple[int, int]] = None  # (ROOT, QUALITY) field values of the key's tonic chord
    key_pitches: Optional[np.ndarray] = None  # (129,) bool over PITCH field values: notes of the key's scale
    cadence: tuple[tuple[int, int], ...] = ()  # (ROOT, QUALITY) of the chord each of the last bars holds
    rhythm_from: dict = field(default_factory=dict)  # stage -> (n_bars,) earlier bar whose onsets it repeats, or -1
    cut_positions: tuple = ()  # per bar, the POSITION values (1-based 16ths) of the locked cuts in it
    melodic: Optional[np.ndarray] = None  # (n_bars,) bool: the plan wants a melody in the bar
    notes: Optional[np.ndarray] = None  # (n_bars,) notes the plan asks for (density, scaled to the bar)

    @property
    def n_bars(self) -> int:
        return len(self.meter)


class StageRunner:
    """The encoder and decoder sessions of one stage and its sizes."""

    def __init__(self, stage: str, encoder_path, decoder_path, net_config: dict):
        self.stage = stage
        self.encoder = open_session(encoder_path)
        self.decoder = open_session(decoder_path, threads=DECODER_THREADS)
        self.in_place = is_in_place(self.decoder)  # its caches are appended in place (runtime/kv_cache.py)
        # caches go back in under the names they come out with: per layer (past_k_0 ... from
        # present_k_0 ...) or stacked (past_k from present_k) in graphs exported before per-layer caches
        self.cache_names = [o.name.replace("present", "past") for o in self.decoder.get_outputs()[2:]]
        self.cross_names = [o.name for o in self.encoder.get_outputs()]
        # the number of controls the graphs read: a graph trained before a control existed reads the first ones
        self.context_width = _last_dim(self.decoder, "context")
        self.source_width = _last_dim(self.encoder, "source_context")
        self.n_layers, self.n_heads = net_config["n_layers"], net_config["n_heads"]
        self.head_dim = net_config["d_model"] // net_config["n_heads"]
        self.d_video = net_config.get("d_video", 16)
        self.bar_window = net_config.get("bar_window", 1)  # decoder bar b sees source bars b-w..b+w; -1: all
        self.field_sizes = tuple(net_config["field_sizes"])
        self.offsets = np.cumsum((0,) + self.field_sizes[1:])

    @property
    def provider(self) -> str:
        return session_provider(self.decoder)

    def memory(self, batch: int, source: Optional[list[np.ndarray]], source_context: Optional[list[np.ndarray]]):
        """Cross K/V (by input name) and memory bars: from the source tokens, or the 'no video' zeros (chord)."""
        if source is None:
            video = np.zeros((batch, 1, self.d_video), dtype=np.float32)
            cross = self.encoder.run(None, {"video": video})
            return dict(zip(self.cross_names, cross)), np.zeros((batch, 1), dtype=np.int64)
        pieces = [self._encode([s[m] for s, m in zip(source, masks)], [c[m] for c, m in zip(source_context, masks)])
                  for masks in _bar_windows(source_context, ENCODER_WINDOW)]
        cross = {name: np.concatenate([p[0][name] for p in pieces], axis=-2) for name in self.cross_names}
        return cross, np.concatenate([p[1] for p in pieces], axis=1)

    def _encode(self, source: list[np.ndarray], source_context: list[np.ndarray]):
        length = max(1, max(len(s) for s in source))
        tokens = np.zeros((len(source), length, N_FIELDS), dtype=np.int64)
        context = np.zeros((len(source), length, source_context[0].shape[1]), dtype=np.int64)
        bars = np.full((len(source), length), -1, dtype=np.int64)
        for i, (s, c) in enumerate(zip(source, source_context)):
            tokens[i, :len(s)], context[i, :len(s)], bars[i, :len(s)] = s, c, c[:, 0]
        cross = self.encoder.run(None, {"source": tokens, "source_context": context[..., :self.source_width],
                                        "source_bar": bars})
        return dict(zip(self.cross_names, cross)), bars

    def step(self, token: np.ndarray, context: np.ndarray, cache, cross: dict, memory_bar: np.ndarray):
        """One decoder step for the batch's (batch, N_FIELDS) tokens: type logits, field logits, the cache
        with the token added (an `InPlaceCache` is the same object; its logits are valid until its next step).
        `cross` is a dict the caller replaces, never changes, when the memory changes."""
        feeds = {"token": token[:, None], "context": context[:, None, :self.context_width]}
        if isinstance(cache, InPlaceCache):
            type_logits, field_logits = cache.step(feeds, cross, memory_bar)
            return type_logits, field_logits, cache
        type_logits, field_logits, *present = self.decoder.run(None, {**feeds, "memory_bar": memory_bar,
                                                                      **cache, **cross})
        return type_logits, field_logits, dict(zip(self.cache_names, present))

    def empty_cache(self, batch: int, capacity: int):
        """An `InPlaceCache` of `capacity` tokens for an in-place graph; else one masked slot per cache (see
        EventTransformer.step), grown by each step."""
        if self.in_place:
            return InPlaceCache(self.decoder, self.cache_names, (batch, self.n_heads, capacity, self.head_dim))
        per_layer = len(self.cache_names) == 2 * self.n_layers
        shape = (batch, self.n_heads, 1, self.head_dim) if per_layer else \
            (self.n_layers, batch, self.n_heads, 1, self.head_dim)
        return {name: np.zeros(shape, dtype=np.float32) for name in self.cache_names}

    def field_slice(self, logits: np.ndarray, field_index: int) -> np.ndarray:
        return logits[self.offsets[field_index - 1]:self.offsets[field_index]]


def _bar_windows(source_context: list[np.ndarray], limit: int) -> list[list[np.ndarray]]:
    """Bar-aligned windows of the sources, at most `limit` tokens of any row each (a bar longer than that
    alone): per window, one boolean mask per row. One window when every source fits."""
    bars = [c[:, 0] for c in source_context]
    last = max(int(b.max()) for b in bars)
    counts = np.stack([np.bincount(b, minlength=last + 1) for b in bars])  # (rows, bars)
    windows, start, used = [], 0, np.zeros(len(bars), dtype=np.int64)
    for bar in range(last + 1):
        if bar > start and (used + counts[:, bar] > limit).any():
            windows.append((start, bar))
            start, used = bar, np.zeros(len(bars), dtype=np.int64)
        used += counts[:, bar]
    windows.append((start, last + 1))
    return [[(b >= a) & (b < z) for b in bars] for a, z in windows]


def _last_dim(session, name: str) -> Optional[int]:
    shape = next((i.shape for i in session.get_inputs() if i.name == name), None)
    return shape[-1] if shape and isinstance(shape[-1], int) else None


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
    notes_in_bar: int = 0
    onsets: dict = field(default_factory=dict)  # bar -> POSITION values written in it
    tokens: list = field(default_factory=list)


def generate(runner: StageRunner, plan: BarPlan, batch: int, rng: np.random.Generator, sampling: Sampling,
             source: Optional[list[np.ndarray]] = None, source_context: Optional[list[np.ndarray]] = None,
             max_tokens: Optional[int] = None, segments: SegmentConfig = SegmentConfig()) -> list[np.ndarray]:
    """`batch` token sequences (BOS ... EOS) of `runner.stage` that follow `plan`, decoded in segments of a
    bounded cache and memory (segments.py)."""
    cross, memory_bar = runner.memory(batch, source, source_context)
    limit = max_tokens or plan.n_bars * MAX_PER_BAR[runner.stage] + 2
    segment = Segments(runner, plan, cross, memory_bar, segments, capacity=limit + 1)
    cache = runner.empty_cache(batch, segment.capacity)
    rows = [RowState() for _ in range(batch)]
    if source is not None and runner.stage in CHORD_TONE_POSITIONS:
        for row, tokens in zip(rows, source):
            row.harmony = harmony(tokens, plan)
    bos = np.zeros(N_FIELDS, dtype=np.int64)
    bos[TYPE] = TokenType.BOS
    token = np.repeat(bos[None], batch, 0)
    context = np.stack([_context(TokenType.BOS, bos, row, plan) for row in rows])
    for row in rows:
        row.tokens.append(bos)
    segment.record(token, context)
    for _ in range(limit):
        cache = segment.bound(cache, rows)
        type_logits, field_logits, cache = runner.step(token, context, cache, segment.cross, segment.memory_bar)
        for b, row in enumerate(rows):
            if row.done:
                continue
            token[b] = next_token(runner, row, plan, type_logits[b], field_logits[b], rng, sampling)
            advance(row, token[b])
            mark_section_starts(row, plan, runner.stage)
            context[b] = _context(int(token[b, TYPE]), token[b], row, plan)
            row.tokens.append(token[b].copy())
        segment.record(token, context)
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
    if row.last_type == TokenType.POSITION:
        return [EVENT_TYPE[stage]]
    if row.last_type == TokenType.BAR and row.needs_downbeat_chord:
        return [TokenType.POSITION]
    full = row.in_bar >= MAX_PER_BAR[stage] - 2
    pattern, pending = _pattern(row, plan, stage), _pending(row, plan, stage)
    room = row.position < _last_free_position(row, plan) and not full and not _over_budget(row, plan, stage)
    if pattern is not None:
        room = bool(pending)
    must_go_on = bool(pending) or (stage == "melody" and row.notes_in_bar == 0 and plan.melodic is not None
                                   and bool(plan.melodic[row.bars - 1]))
    kinds = [] if must_go_on and (room or pending) else [closing]
    if room or pending:
        kinds.append(TokenType.POSITION)
    if (row.last_type != TokenType.BAR and EVENT_TYPE[stage] == TokenType.NOTE
            and row.onset_notes < MAX_NOTES_PER_ONSET[stage] and not full
            and _higher_pitches(row, plan, stage).any()):
        kinds.append(TokenType.NOTE)
    return kinds


def _pattern(row: RowState, plan: BarPlan, stage: str) -> Optional[list[int]]:
    """The onsets the current bar repeats (the plan's form), with the cuts in it; None when it is free."""
    sources = plan.rhythm_from.get(stage)
    if sources is None or row.bars == 0 or sources[row.bars - 1] < 0:
        return None
    positions = row.onsets.get(int(sources[row.bars - 1]))
    if not positions:
        return None
    return sorted(set(positions) | set(_cuts_here(row, plan, stage)))


def _cuts_here(row: RowState, plan: BarPlan, stage: str) -> tuple[int, ...]:
    if stage not in ("chord", "accompaniment") or row.bars == 0 or row.bars > len(plan.cut_positions):
        return ()
    return plan.cut_positions[row.bars - 1]


def _pending(row: RowState, plan: BarPlan, stage: str) -> list[int]:
    """Positions still to come in this bar that must hold an onset."""
    pattern = _pattern(row, plan, stage)
    due = pattern if pattern is not None else _cuts_here(row, plan, stage)
    return [p for p in due if p > row.position]


def _last_free_position(row: RowState, plan: BarPlan) -> int:
    """The last POSITION a free onset may take in the current bar: its last 16th; in the plan's last bar the
    start of its last beat (LAST_BAR_SHARE's note)."""
    bar = row.bars - 1
    if row.bars != plan.n_bars:
        return int(plan.sixteenths[bar])
    return int(plan.sixteenths[bar]) - 16 // VOCAB.meters[int(plan.meter[bar]) - 1][1] + 1


def _over_budget(row: RowState, plan: BarPlan, stage: str) -> bool:
    """The last bar: the stage has its share of the onsets the plan asks for there (each may be a chord);
    the chord stage its LAST_BAR_CHORDS."""
    if row.bars != plan.n_bars:
        return False
    written = len(row.onsets.get(row.bars - 1, ()))
    if stage == "chord":
        return written >= LAST_BAR_CHORDS
    if plan.notes is None or stage not in LAST_BAR_SHARE:
        return False
    return written >= max(1, round(LAST_BAR_SHARE[stage] * float(plan.notes[-1])))


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
    allowed[max(row.last_pitch + 2, PITCH_RANGE[0] + 1):PITCH_RANGE[1] + 2] = True
    if plan.key_pitches is not None:
        allowed &= plan.key_pitches
    ceiling = _melody_ceiling(row, stage)
    if ceiling is not None and (allowed[:ceiling + 2].any() or row.last_pitch >= 0):
        allowed[ceiling + 2:] = False  # (PITCH field = 1 + MIDI pitch)
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


def _melody_ceiling(row: RowState, stage: str) -> Optional[int]:
    """The highest MIDI pitch the stage may write at this onset: ABOVE_MELODY over the melody (`melody_grid`)."""
    if stage not in ABOVE_MELODY or row.harmony is None or row.bars == 0 or row.position == 0:
        return None
    melody = int(row.harmony.melody[row.bars - 1, row.position - 1])
    return melody + ABOVE_MELODY[stage] if melody >= 0 else None


@dataclass(frozen=True)
class Harmony:
    """The chords (and melody) of a chord or chord+melody token sequence on the 16th grid of the plan's bars."""

    tones: np.ndarray  # (n_bars, 16ths, 12) bool: pitch classes of the chord sounding at each 16th
    onset_roots: np.ndarray  # (n_bars, 16ths) int: root pitch class of a chord starting there, else -1
    melody: np.ndarray  # (n_bars, 16ths) int: `melody_grid`


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
    return Harmony(tones, roots, melody_grid(tokens, plan))


def melody_grid(tokens: np.ndarray, plan: BarPlan) -> np.ndarray:
    """(n_bars, 16ths) int: the highest pitch of `tokens`' notes (the melody) sounding at each 16th of the
    plan's bars, in a rest the last one heard; -1 before the first note (and without notes)."""
    bar_starts = np.concatenate([[0], np.cumsum(plan.sixteenths)])
    line = np.full(int(bar_starts[-1]), -1, dtype=np.int64)
    bar, position = -1, 0
    for row in tokens:
        if row[TYPE] == TokenType.BAR:
            bar, position = bar + 1, 1
        elif row[TYPE] == TokenType.POSITION:
            position = int(row[POSITION])
        elif row[TYPE] == TokenType.NOTE and 0 <= bar < plan.n_bars:
            sounding = line[bar_starts[bar] + position - 1:bar_starts[bar] + position - 1 + int(row[DURATION])]
            np.maximum(sounding, int(row[PITCH]) - 1, out=sounding)
    heard = np.maximum.accumulate(np.where(line >= 0, np.arange(len(line)), -1))  # the latest 16th with a note
    line = np.where(heard >= 0, line[np.maximum(heard, 0)], -1)
    grid = np.full((plan.n_bars, int(plan.sixteenths.max())), -1, dtype=np.int64)
    for bar in range(plan.n_bars):
        grid[bar, :plan.sixteenths[bar]] = line[bar_starts[bar]:bar_starts[bar + 1]]
    return grid


def _position(runner, row: RowState, plan: BarPlan, logits, rng, sampling) -> int:
    if row.needs_downbeat_chord:
        return 1
    pending = _pending(row, plan, runner.stage)
    if _pattern(row, plan, runner.stage) is not None:
        return pending[0]
    last = pending[0] if pending else _last_free_position(row, plan)  # never past a cut
    return _draw(runner, logits, POSITION, range(row.position + 1, last + 1), rng, sampling)


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
        if tonic is not None and pairs[tonic] and row.bars == 1:  # the piece opens on the tonic; a cut on a new chord
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
        row.position, row.in_bar, row.last_pitch, row.onset_notes, row.notes_in_bar = 0, 0, -1, 0, 0
        row.needs_downbeat_chord = False
    elif kind == TokenType.POSITION:
        row.position, row.last_pitch, row.onset_notes = int(token[POSITION]), -1, 0
        row.onsets.setdefault(row.bars - 1, []).append(row.position)
    elif kind == TokenType.CHORD:
        row.chord = (int(token[ROOT]), int(token[QUALITY]))
        row.needs_downbeat_chord = False
    elif kind == TokenType.NOTE:
        row.last_pitch = int(token[PITCH]) - 1
        row.onset_notes += 1
        row.notes_in_bar += 1


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
