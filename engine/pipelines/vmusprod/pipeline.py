"""V-MusProd on ONNX Runtime: plan -> chords -> melody -> accompaniment -> Song.

    chord          decoder over the 'no video' memory, constrained to the plan
                   (bars, sections, the plan's key, a closing V7-I cadence: decode.py, music/theory.py)
    melody         encoder over the chord tokens, decoder over the melody (chord tones on the beats)
    accompaniment  encoder over chords + melody, decoder over the accompaniment (chord tones, root below)

All variations run as one batch per stage. numpy + onnxruntime only. Nothing sounds
past the plan's last bar: notes the decoder holds over it are cut there (`assemble`).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np

from ...music.controls import control_ids
from ...music.music import Music
from ...music.score import TICKS_PER_16TH, Part, Song
from ...music.theory import cadence_fields, key_chord_fields, key_pitch_fields, voice_chords
from ...music.tokens import TYPE, VOCAB, TokenType, decode, encode, metrical_context
from ...planning.plan import ScorePlan
from ...progress import Progress, report
from ...runtime.context import context_rows
from ...runtime.sampling import Sampling
from ...runtime.sessions import available_providers
from ...runtime.store import ModelFolder, find_model
from .decode import BarPlan, StageRunner, generate
from .segments import SegmentConfig

FAMILY = "vmusprod"
STAGES = ("chord", "melody", "accompaniment")
PROGRAMS = {"melody": 0, "accompaniment": 0, "chords": 0}  # POP909 is piano throughout
# A stage whose manifest entry has no "sampling" (benchmarks/tune_sampling.py writes it): the request defaults
# of schema v2, which applied to every stage.
DEFAULT_SAMPLING = Sampling(temperature=1.0, top_p=0.95)
# The melody is one line: a note ends where the next melody onset begins and lasts at most MELODY_HOLD_16THS,
# POP909 001-700's 99th percentile (every 7th song; 701-800: 11). There 0.9% of melody notes sound past the
# next onset; the melody net's durations held 19% of its notes under the next ones.
MELODY_HOLD_16THS = 15


@dataclass
class Generation:
    songs: list[Song]
    tokens: dict[str, list[np.ndarray]] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    sampling: dict[str, dict] = field(default_factory=dict)  # per stage, as used


def load(model_dir: Optional[Path] = None, int8: Optional[bool] = None) -> "VMusProd":
    """The family's entry point (pipelines/__init__.py): the model folder's sessions, opened once."""
    return VMusProd(model_dir, int8=int8)


def decoder_role(model: ModelFolder, stage: str, int8: bool) -> str:
    """The decoder graph to run: int8 or fp32; on the CPU its in-place variant where the folder has one
    (GroupQueryAttention, runtime/kv_cache.py: a CPU kernel of ONNX Runtime; its CUDA kernel takes fp16 only)."""
    role = "decoder_int8" if int8 else "decoder"
    if available_providers()[0] == "CPUExecutionProvider" and model.has(stage, role + "_in_place"):
        return role + "_in_place"
    return role


class VMusProd:
    """The three stage runners of one model folder; build once, generate many times (warm)."""

    def __init__(self, folder: Optional[Path] = None, int8: Optional[bool] = None):
        self.model: ModelFolder = find_model(FAMILY, folder)
        if int8 is None:  # the folder's choice, made on its measured quality (manifest "default_int8")
            int8 = bool(self.model.manifest.get("default_int8", False))
        paths = {s: (self.model.file(s, "encoder"), self.model.file(s, decoder_role(self.model, s, int8)))
                 for s in STAGES}
        self.runners = {s: StageRunner(s, *paths[s], self.model.stage_config(s)) for s in STAGES}
        self.graphs = {s: [p.name for p in paths[s]] for s in STAGES}
        self.sampling = stage_sampling(self.model.manifest)  # per stage; a request's given values override
        self.segments = SegmentConfig()  # the decoder's cache and memory per segment (segments.py)


    @property
    def info(self) -> dict:
        return self.model.info(self.graphs)

    @property
    def providers(self) -> dict[str, str]:
        return {stage: runner.provider for stage, runner in self.runners.items()}

    def generate(self, plan: ScorePlan, inputs: Optional[dict] = None, n: int = 1, seed: int = 0,
                 sampling: Sampling = Sampling(), progress: Optional[Progress] = None) -> list[Music]:
        """The family's interface (pipelines/__init__.py): `n` Songs for `plan`. The nets read the plan's
        controls only; `inputs` (the video analysis) is not used yet."""
        generation = self.generate_stages(plan, n, seed, sampling, progress)
        report = {"providers": generation.providers, "timings": generation.timings,
                  "sampling": generation.sampling}
        return [Music(song=song, report=report) for song in generation.songs]

    def generate_stages(self, plan: ScorePlan, variations: int = 1, seed: int = 0, sampling: Sampling = Sampling(),
                        progress: Optional[Progress] = None) -> Generation:
        """The three stages in turn, all variations as one batch: Songs and each stage's tokens. Each stage
        samples with its own defaults (`self.sampling`) where `sampling` leaves a value unset (None)."""
        rng = np.random.default_rng(seed)
        bars = bar_plan(plan)
        out = Generation(songs=[])
        per_stage = {stage: sampling.over(self.sampling[stage]) for stage in STAGES}
        out.sampling = {stage: asdict(s) for stage, s in per_stage.items()}
        chords = self._run("chord", bars, variations, rng, per_stage["chord"], None, out, progress)
        melody = self._run("melody", bars, variations, rng, per_stage["melody"], chords, out, progress)
        merged = [merge_chords_and_melody(c, m, plan, bars.n_bars) for c, m in zip(chords, melody)]
        accompaniment = self._run("accompaniment", bars, variations, rng, per_stage["accompaniment"], merged, out,
                                  progress)
        out.songs = [assemble(plan, c, m, a) for c, m, a in zip(chords, melody, accompaniment)]
        return out

    def _run(self, stage, bars: BarPlan, batch, rng, sampling, source, out: Generation, progress) -> list[np.ndarray]:
        report(progress, f"generate {stage}", 0.0)
        began = time.perf_counter()
        context = None if source is None else [context_rows(s, bars.controls, bars.n_bars) for s in source]
        tokens = generate(self.runners[stage], bars, batch, rng, sampling, source, context, segments=self.segments)
        out.tokens[stage] = tokens
        out.providers[stage] = self.runners[stage].provider
        out.timings[stage] = round(time.perf_counter() - began, 4)
        report(progress, f"generate {stage}", 1.0)
        return tokens


def stage_sampling(manifest: dict) -> dict[str, Sampling]:
    """Each stage's sampling defaults: its manifest entry's "sampling" (temperature, top_p), else DEFAULT_SAMPLING."""
    stages = manifest.get("stages", {})
    return {stage: Sampling(**{k: v for k, v in stages.get(stage, {}).get("sampling", {}).items()
                               if k in ("temperature", "top_k", "top_p")}).over(DEFAULT_SAMPLING)
            for stage in STAGES}


def bar_plan(plan: ScorePlan) -> BarPlan:
    """The decoder's per-bar constraints from a ScorePlan (metre, tempo, controls, sections)."""
    song = plan.empty_song()
    tempo_ticks = [t.tick for t in sorted(plan.tempos)]
    meters, tempos, sixteenths = [], [], []
    for tick in plan.bar_ticks:
        ts = song.time_signature_at(tick)
        bpm = sorted(plan.tempos)[max(0, np.searchsorted(tempo_ticks, tick, side="right") - 1)].bpm
        meters.append(1 + VOCAB.meter_index(ts))
        tempos.append(1 + VOCAB.tempo_bin(bpm))
        sixteenths.append(ts.ticks_per_bar // TICKS_PER_16TH)
    key_chords, tonic_chord = key_chord_fields(plan.key.tonic, plan.key.mode)
    return BarPlan(np.array(meters), np.array(tempos), np.array(sixteenths), control_ids(plan.controls),
                   np.array([c.section_start for c in plan.controls], dtype=bool), key_chords, tonic_chord,
                   key_pitch_fields(plan.key.tonic, plan.key.mode),
                   cadence_fields(plan.key.tonic, plan.key.mode, plan.n_bars),
                   {stage: np.array(bars, dtype=np.int64) for stage, bars in plan.rhythm_from.items()},
                   cut_positions(plan),
                   np.array([c.role != "instrumental" for c in plan.controls], dtype=bool),
                   np.array([c.density * n / 16 for c, n in zip(plan.controls, sixteenths)]))


def cut_positions(plan: ScorePlan) -> tuple[tuple[int, ...], ...]:
    """Per bar, the POSITION values (1-based 16ths) of the locked cuts that fall in it."""
    ends = list(plan.bar_ticks[1:]) + [float("inf")]
    return tuple(tuple(1 + (t - start) // TICKS_PER_16TH for t in plan.cut_ticks if start <= t < end)
                 for start, end in zip(plan.bar_ticks, ends))


def merge_chords_and_melody(chords: np.ndarray, melody: np.ndarray, plan: ScorePlan, n_bars: int) -> np.ndarray:
    """The accompaniment's source: chords and melody as 'chord+melody' tokens over exactly n_bars bars."""
    song = plan.empty_song()
    song.chords = decode(chords, "chord").chords
    song.parts = [replace(p, notes=melody_line(p.notes)) for p in decode(melody, "melody").parts]
    return fit_bars(encode(song, "chord+melody"), chords, n_bars)


def fit_bars(tokens: np.ndarray, reference: np.ndarray, n_bars: int) -> np.ndarray:
    """`tokens` cut to n_bars bars, with the reference's BAR tokens added for bars it lacks."""
    bar = metrical_context(tokens)["bar"]
    kinds = tokens[:, TYPE]
    body = tokens[(kinds != TokenType.EOS) & ((bar < n_bars) | (kinds == TokenType.BOS))]
    have = int((body[:, TYPE] == TokenType.BAR).sum())
    reference_bars = reference[reference[:, TYPE] == TokenType.BAR]
    eos = np.zeros((1, tokens.shape[1]), dtype=tokens.dtype)
    eos[0, TYPE] = TokenType.EOS
    return np.concatenate([body, reference_bars[have:n_bars], eos])


def assemble(plan: ScorePlan, chords: np.ndarray, melody: np.ndarray, accompaniment: np.ndarray) -> Song:
    """The plan's conductor data with the generated chords, melody and accompaniment, and the chords
    voiced as a playable part of their own under the melody ("chords": block chords, music/theory.py
    `voice_chords`). The melody is one line (`melody_line`).

    Nothing sounds past the plan's last bar (which ends with the picture): later notes are dropped,
    notes held over the end are cut at it.
    """
    song = plan.empty_song()
    end = plan.bar_ticks[-1] + song.time_signature_at(plan.bar_ticks[-1]).ticks_per_bar if plan.bar_ticks else 0
    song.chords = [replace(c, end=min(c.end, end)) for c in decode(chords, "chord").chords if c.start < end]
    parts = []
    for channel, (name, tokens) in enumerate((("melody", melody), ("accompaniment", accompaniment))):
        notes = [replace(n, end=min(n.end, end)) for n in decode(tokens, name).parts[0].notes if n.start < end]
        notes = melody_line(notes) if name == "melody" else notes
        parts.append(Part(name, notes, program=PROGRAMS[name], channel=channel))
    parts.append(Part("chords", voice_chords(song.chords, melody=parts[0].notes), program=PROGRAMS["chords"],
                      channel=len(parts)))
    song.parts = parts
    return song


def melody_line(notes: list) -> list:
    """Each note ended by the next later onset and after MELODY_HOLD_16THS at most."""
    starts = sorted({n.start for n in notes})
    following = dict(zip(starts, starts[1:]))
    longest = MELODY_HOLD_16THS * TICKS_PER_16TH
    return [replace(n, end=min(n.end, following.get(n.start, n.end), n.start + longest)) for n in notes]
