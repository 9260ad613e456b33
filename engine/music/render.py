"""Audio stems from a Song: one WAV per part plus the mix, 48 kHz stereo 24-bit.

Synthesis is TinySoundFont with the General MIDI SoundFont that pretty_midi
ships (TimGM6mb.sf2) unless the caller names another .sf2/.sf3.

Loudness: the mix is normalised to `TARGET_LUFS` integrated (ITU-R BS.1770,
the measure pyloudnorm's Meter takes), then turned down further if needed so
the sample peak of the mix and of every stem stays at or under `CEILING_DBFS`
(-1 dBFS). A full 4x oversampled true-peak meter costs more than the synthesis
itself; the 1 dB margin covers the inter-sample overs of SoundFont material
(the tests check the true peak of a render stays under 0 dBTP).
Every stem gets the very same gain as the mix, so the stems still sum to the
mix sample for sample (up to 24-bit rounding) and keep their balance.

Memory: nothing song-sized is held. Each part is synthesised a chunk
(`CHUNK_FRAMES`) at a time into a float32 scratch file beside the output (a
10-minute stereo part is 230 MB of float32: the mix and four stems would not
fit a 600 MiB budget); a first pass over those files measures the mix's
loudness (BS.1770 sums each 100 ms segment, so the 400 ms gating blocks need
no whole signal) and every peak, a second pass applies the gain while writing
the 24-bit WAVs, a chunk of every file at a time.

Speed (benchmarks/bench_stems.py): TinySoundFont holds the GIL, so where cores
are idle the parts are synthesised in forked processes (Linux), each writing its
own scratch files, a melodic part cut between them by pitch; the result is the
same as in one process (to float rounding). The loudness meter is our own
BS.1770, K-weighting included (numpy, no SciPy: importing scipy.signal costs
more CPU than a 30 s cue's whole render); the WAV files are quantised and packed
to 24 bits in numpy and written in threads.

Files: `<out_dir>/mix.wav` and `<out_dir>/<part name>.wav`; a name that is
taken gets `-2`, `-3`, ... (`files.unused_path`): a render never replaces an
existing file. Parts without notes get no stem.
"""
from __future__ import annotations

import itertools
import os
import re
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from ..cores import free_cores
from ..errors import CuesmithError
from ..files import atomic_path, make_folders, unused_path
from ..progress import Progress, report
from .score import TICKS_PER_BEAT, Note, Part, Song

SAMPLE_RATE = 48_000
SUBTYPE = "PCM_24"
TARGET_LUFS = -16.0  # streaming-platform loudness for a finished mix
CEILING_DBFS = -1.0  # sample-peak ceiling; the 1 dB margin covers inter-sample overs
TAIL_BEATS = 0.5  # release tail after the last note-off, in beats at the final tempo
MIX = "mix"
MAX_WORKERS = 4  # each process beyond the first may need one more stem-sized buffer
_FADE_SECONDS = 0.01
_FLUSH_FRAMES = 4096  # 85 ms at 48 kHz, well over TinySoundFont's 10 ms fast release
_EVENT_GRID = 64  # frames; TinySoundFont's TSF_RENDER_EFFECTSAMPLEBLOCK (see _note_events)
_WRITE_CHUNK_FRAMES = 1 << 14  # 128 KiB of float32 stereo: the quantising stays in L2 cache
CHUNK_FRAMES = 1 << 16  # synthesised, measured and written at a time: 1.4 s, 512 KiB of float32 stereo
_RELEASE_COST_S = 1.0  # synthesis cost of a note ~ its seconds + this (measured on POP909 piano)


@dataclass
class RenderedAudio:
    """Float32 arrays of shape (frames, 2) at `sample_rate`, already loudness-scaled."""

    stems: dict[str, np.ndarray]
    mix: np.ndarray
    sample_rate: int
    gain_db: float  # applied to the raw synthesis
    loudness_lufs: float  # of the mix after the gain

    @property
    def seconds(self) -> float:
        return len(self.mix) / self.sample_rate


def default_soundfont() -> Path:
    """The user's SoundFont ($CUESMITH_SOUNDFONT or "soundfont" in config.json), else pretty_midi's TimGM6mb."""
    from importlib.util import find_spec

    from ..config import user_setting

    chosen = user_setting("soundfont")
    if chosen:
        return Path(chosen).expanduser()
    return Path(find_spec("pretty_midi").origin).parent / "TimGM6mb.sf2"  # found, not imported (mido, ...)


def render_stems(song: Song, out_dir: str | Path, soundfont: str | Path | None = None,
                 progress: Optional[Progress] = None, workers: Optional[int] = None) -> dict[str, Path]:
    """Render and write the mix (key "mix") and one WAV per part (key: part name), a chunk at a time."""
    out_dir = Path(out_dir)
    check_folder(out_dir)
    parts_with_notes(song)
    synth = load_synth(Path(soundfont) if soundfont else default_soundfont(), SAMPLE_RATE)
    make_folders(out_dir)  # the scratch files go beside the stems, on the same disk
    with _synthesized(synth, song, SAMPLE_RATE, out_dir, progress, workers) as synthesized:
        loudness, peak = _levels(synthesized.chunks(), synthesized.frames, SAMPLE_RATE, progress)
        gain = 10 ** (normalising_gain_db(loudness, peak) / 20)
        names = [safe_file_stem(key) or f"part-{i + 1}" for i, key in enumerate(synthesized.keys)]
        paths = _output_paths(out_dir, [MIX, *names])
        _write_wavs(paths, [2] * len(paths), SAMPLE_RATE, synthesized.signal_chunks(), synthesized.chunk_count,
                    gain, progress, workers)
    return dict(zip([MIX, *synthesized.keys], paths))


def write_stems(stems: dict[str, np.ndarray], mix: np.ndarray, sample_rate: int, out_dir: str | Path,
                progress: Optional[Progress] = None, gain: float = 1.0,
                workers: Optional[int] = None) -> dict[str, Path]:
    """mix.wav and one WAV per stem in `out_dir` (24-bit, never over a file already there; `gain` applied
    while quantising). Keys: "mix" and the stem names."""
    out_dir = Path(out_dir)
    check_folder(out_dir)
    names = [safe_file_stem(name) or f"part-{i + 1}" for i, name in enumerate(stems)]
    paths = _output_paths(out_dir, [MIX, *names])
    signals = [mix, *stems.values()]
    length = max(len(x) for x in signals)
    chunks = ([x[start:start + CHUNK_FRAMES] for x in signals] for start in range(0, length, CHUNK_FRAMES))
    _write_wavs(paths, [1 if x.ndim == 1 else x.shape[1] for x in signals], sample_rate, chunks,
                -(-length // CHUNK_FRAMES), gain, progress, workers)
    return dict(zip([MIX, *stems], paths))


def check_folder(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise CuesmithError("exists and is not a folder", out_dir)


def render_audio(song: Song, soundfont: str | Path | None = None, sample_rate: int = SAMPLE_RATE,
                 progress: Optional[Progress] = None, workers: Optional[int] = None) -> RenderedAudio:
    """Synthesise every part with notes, mix, and loudness-normalise (see module doc), in memory."""
    synth = load_synth(Path(soundfont) if soundfont else default_soundfont(), sample_rate)
    with _synthesized(synth, song, sample_rate, None, progress, workers) as synthesized:
        frames = synthesized.frames
        stems = [np.empty((frames, 2), dtype=np.float32) for _ in synthesized.keys]
        mix = np.empty((frames, 2), dtype=np.float32)

        def kept() -> Iterator[tuple[int, list[np.ndarray], np.ndarray]]:
            for start, parts, mixed in synthesized.chunks():
                for whole, chunk in zip([mix, *stems], [mixed, *parts]):
                    whole[start:start + len(chunk)] = chunk
                yield start, parts, mixed

        loudness, peak = _levels(kept(), frames, sample_rate, progress)
    gain_db = normalising_gain_db(loudness, peak)
    gain = np.float32(10 ** (gain_db / 20))
    for samples in (mix, *stems):
        samples *= gain
    return RenderedAudio(stems=dict(zip(synthesized.keys, stems)), mix=mix, sample_rate=sample_rate,
                         gain_db=gain_db, loudness_lufs=loudness + gain_db)  # loudness scales with gain exactly


def _levels(chunks: Iterator[tuple[int, list[np.ndarray], np.ndarray]], frames: int, sample_rate: int,
            progress: Optional[Progress] = None) -> tuple[float, float]:
    """(integrated loudness of the mix in LUFS, the highest sample peak of the mix and the stems in dBFS)."""
    meter, peak = LoudnessMeter(frames, 2, sample_rate), 0.0
    for start, stems, mix in chunks:
        meter.add(mix)
        peak = max(peak, *(_peak(x) for x in (mix, *stems)))
        report(progress, "measure loudness", (start + len(mix)) / frames)
    return meter.loudness(), (20 * np.log10(peak) if peak > 0 else -np.inf)


def load_synth(soundfont: Path, sample_rate: int):
    import tinysoundfont

    if not soundfont.is_file():
        raise CuesmithError("SoundFont not found", soundfont)
    synth = tinysoundfont.Synth(samplerate=sample_rate)
    try:
        synth.sfload(str(soundfont))
    except Exception:  # the C loader raises a bare Exception naming only the file
        raise CuesmithError("not a usable SoundFont (.sf2/.sf3)", soundfont) from None
    return synth


def render_length(song: Song, sample_rate: int) -> int:
    """Frames from tick 0 to the last note-off plus a short release tail."""
    end = song.end_tick
    seconds = tick_seconds(song, np.array([end, end + TAIL_BEATS * TICKS_PER_BEAT]))
    return int(np.ceil(seconds[1] * sample_rate))


# -- synthesis ---------------------------------------------------------------

@dataclass
class _Piece:
    """Notes of one part that one process synthesises."""

    index: int  # of the part in the list being rendered
    part: Part  # the part with only these notes


@dataclass
class Synthesized:
    """The raw synthesis of each part, in float32 scratch files (one per piece of work), read a chunk at a time."""

    keys: list[str]  # one per part with notes, unique, never "mix"
    pieces: list[list[Path]]  # per part: its pieces' files, summed in this order
    frames: int
    sample_rate: int

    @property
    def chunk_count(self) -> int:
        return -(-self.frames // CHUNK_FRAMES)

    def chunks(self) -> Iterator[tuple[int, list[np.ndarray], np.ndarray]]:
        """(first frame, each part's samples, their mix), float32 (n, 2), `CHUNK_FRAMES` at a time."""
        with ExitStack() as stack:
            files = [[stack.enter_context(open(path, "rb")) for path in paths] for paths in self.pieces]
            for start in range(0, self.frames, CHUNK_FRAMES):
                count = 2 * min(CHUNK_FRAMES, self.frames - start)
                stems = []
                for pieces in files:
                    stem = np.fromfile(pieces[0], dtype=np.float32, count=count).reshape(-1, 2)
                    for piece in pieces[1:]:  # a part cut between processes: its pieces sum to it
                        stem += np.fromfile(piece, dtype=np.float32, count=count).reshape(-1, 2)
                    stems.append(stem)
                mix = np.zeros_like(stems[0])
                for stem in stems:
                    mix += stem
                yield start, stems, mix

    def signal_chunks(self) -> Iterator[list[np.ndarray]]:
        """[mix, *stems] a chunk at a time."""
        for _, stems, mix in self.chunks():
            yield [mix, *stems]


@contextmanager
def _synthesized(synth, song: Song, sample_rate: int, scratch_dir: Optional[Path],
                 progress: Optional[Progress], workers: Optional[int]) -> Iterator[Synthesized]:
    """Every part with notes synthesised into scratch files in `scratch_dir` (None: the system's temporary
    folder), removed when the block ends."""
    parts = parts_with_notes(song)
    keys: list[str] = []
    for part in parts:
        keys.append(_unique_key(part.name, keys))
    frames = render_length(song, sample_rate)
    with tempfile.TemporaryDirectory(prefix=".cuesmith-render-", dir=scratch_dir) as scratch:
        pieces = synthesize_parts(synth, parts, song, frames, sample_rate, Path(scratch), workers, progress)
        yield Synthesized(keys, pieces, frames, sample_rate)


def parts_with_notes(song: Song) -> list[Part]:
    parts = [p for p in song.parts if p.notes]
    if not parts:
        raise CuesmithError("nothing to render: the song has no notes")
    return parts


def synthesize_parts(synth, parts: list[Part], song: Song, frames: int, sample_rate: int, scratch: Path,
                     workers: Optional[int] = None, progress: Optional[Progress] = None) -> list[list[Path]]:
    """Each part alone, as float32 stereo frames in files under `scratch` (per part: the files of its
    pieces, to be summed), the work shared by up to `workers` processes."""
    shares = split_work(parts, song, _worker_count(workers))
    files = [[scratch / f"{k}-{i}.f32" for i in range(len(share))] for k, share in enumerate(shares)]

    def job(k: int, job_progress: Optional[Progress]) -> Callable[[], None]:
        def render_share() -> None:
            for i, (piece, path) in enumerate(zip(shares[k], files[k])):
                with open(path, "wb") as out:
                    for done, chunk in synthesize_chunks(synth, piece.part, song, frames, sample_rate):
                        out.write(memoryview(chunk))
                        report(job_progress, "render stems", (i + done) / len(shares[k]))
        return render_share

    # shares are of equal cost, so this process's progress stands for all of them
    _run_forked([job(k, progress if k == 0 else None) for k in range(len(shares))])
    report(progress, "render stems", 1.0)
    pieces: list[list[Path]] = [[] for _ in parts]
    for share, paths in zip(shares, files):
        for piece, path in zip(share, paths):
            pieces[piece.index].append(path)
    return pieces


def split_work(parts: list[Part], song: Song, workers: int) -> list[list[_Piece]]:
    """The parts cut into at most `workers` shares of about equal synthesis cost.

    Units of work, in order: a drum part whole (its exclusive classes, e.g. open and
    closed hi-hat, cut each other off), a melodic part one pitch at a time (voices of
    different keys never interact, and all notes of one key stay together so note-offs
    end the same voices). Cutting that row at equal cost cuts at most workers - 1 parts.
    """
    units = [(i, notes) for i, part in enumerate(parts) for notes in _units(part, workers)]
    costs = np.array([_synthesis_cost(song, notes) for _, notes in units])
    middles = np.cumsum(costs) - costs / 2
    share_of = np.minimum((middles / costs.sum() * workers).astype(int), workers - 1)
    shares: list[list[_Piece]] = [[] for _ in range(workers)]
    for (i, notes), k in zip(units, share_of.tolist()):
        share = shares[k]
        if share and share[-1].index == i:
            share[-1].part.notes.extend(notes)
        else:
            share.append(_Piece(i, replace(parts[i], notes=list(notes))))
    return [share for share in shares if share]


def _units(part: Part, workers: int) -> list[list[Note]]:
    if part.is_drum or workers == 1:
        return [part.notes]
    by_pitch = sorted(part.notes, key=lambda n: n.pitch)
    return [list(notes) for _, notes in itertools.groupby(by_pitch, key=lambda n: n.pitch)]


def _synthesis_cost(song: Song, notes: list[Note]) -> float:
    """Voice-seconds, about: what TinySoundFont's time grows with."""
    starts = tick_seconds(song, np.array([n.start for n in notes]))
    ends = tick_seconds(song, np.array([n.end for n in notes]))
    return float(np.sum(ends - starts) + _RELEASE_COST_S * len(notes))


def _worker_count(workers: Optional[int]) -> int:
    """Processes to synthesise with: `workers`, or by default one per core other processes leave idle
    (engine/cores.py; up to MAX_WORKERS). A forked worker pays only on a core nobody else is using: on the
    shared 2-core dev machine at load 4-9 two processes were 5-15 % slower than one
    (benchmarks/bench_stems.py). The output does not depend on it (`_note_events`)."""
    if not hasattr(os, "fork") or sys.platform != "linux":
        return 1  # forking is unsafe on macOS (system frameworks) and absent on Windows
    if workers is not None:
        return max(1, workers)
    return int(min(MAX_WORKERS, max(1, round(free_cores()))))


def _run_forked(jobs: list[Callable[[], None]]) -> None:
    """jobs[0] here, the others in forked children at the same time. A child that fails
    has its job run again here, so that its error surfaces with a traceback."""
    children = []
    try:
        for job in jobs[1:]:
            pid = os.fork()
            if pid == 0:
                _child(job)
            children.append((pid, job))
        jobs[0]()
    finally:
        failed = [job for pid, job in children if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0]
    for job in failed:
        job()


def _child(job: Callable[[], None]) -> None:
    code = 1
    try:
        job()
        code = 0
    finally:
        os._exit(code)  # no atexit handlers or buffer flushes that belong to the parent


def synthesize_chunks(synth, part: Part, song: Song, frames: int,
                      sample_rate: int) -> Iterator[tuple[float, np.ndarray]]:
    """One part, alone: (fraction done, float32 (n, 2) samples), `CHUNK_FRAMES` at a time in one reused
    buffer; the synth is left silent afterwards. Chunks start on TinySoundFont's 64-frame grid, so the
    samples are those of one render call (`_note_events`)."""
    channel = 9 if part.is_drum else 0
    _select_program(synth, channel, part)
    events = iter(_note_events(part, song, sample_rate, frames))
    event = next(events, None)
    buffer = np.empty((min(CHUNK_FRAMES, frames), 2), dtype=np.float32)
    fade = int(min(frames, _FADE_SECONDS * sample_rate))
    for start in range(0, frames, CHUNK_FRAMES):
        end = min(start + CHUNK_FRAMES, frames)
        out = buffer[:end - start]
        raw = memoryview(out).cast("B")
        position = start
        while event is not None and event[0] < end:
            frame, is_on, pitch, velocity = event
            if frame > position:
                synth.generate_simple(frame - position, raw[(position - start) * 8:(frame - start) * 8])
                position = frame
            if is_on:
                synth.noteon(channel, pitch, velocity)
            else:
                synth.noteoff(channel, pitch)
            event = next(events, None)
        if end > position:
            synth.generate_simple(end - position, raw[(position - start) * 8:])
        _fade_out(out, start, frames, fade)
        yield end / frames, out
    for frame, is_on, pitch, velocity in ([event] if event else []) + list(events):  # those at the very end
        synth.noteon(channel, pitch, velocity) if is_on else synth.noteoff(channel, pitch)
    _silence(synth)


def synthesize_part(synth, part: Part, song: Song, out: np.ndarray, sample_rate: int) -> np.ndarray:
    """One part, alone, into float32 `out` of shape (frames, 2); the synth is left silent afterwards."""
    start = 0
    for _, chunk in synthesize_chunks(synth, part, song, len(out), sample_rate):
        out[start:start + len(chunk)] = chunk
        start += len(chunk)
    return out


def _silence(synth) -> None:
    """End every voice. `sounds_off` fades them out over 10 ms of the next samples
    rendered, which would put this part's last notes at the start of the next part
    rendered with this synth: render those 10 ms (and a margin) into a scratch buffer."""
    synth.sounds_off()
    synth.generate_simple(_FLUSH_FRAMES)


def _select_program(synth, channel: int, part: Part) -> None:
    try:
        synth.program_change(channel, part.program & 0x7F, is_drums=part.is_drum)
    except RuntimeError:  # this SoundFont lacks the preset: fall back to its first one
        synth.program_change(channel, 0, is_drums=part.is_drum)


def _note_events(part: Part, song: Song, sample_rate: int, frames: int) -> list[tuple[int, bool, int, int]]:
    """(frame, is_on, pitch, velocity), note-offs before note-ons at one frame.

    Frames are on a grid of `_EVENT_GRID` (1.3 ms at 48 kHz): TinySoundFont updates
    envelopes and LFOs every 64 samples counted from the start of each render call,
    so on this grid a voice sounds the same whichever other notes share its synth,
    and pieces of a part rendered apart sum to the part (to float rounding)."""
    starts = np.array([n.start for n in part.notes])
    ends = np.array([n.end for n in part.notes])
    on = _on_grid(tick_seconds(song, starts) * sample_rate)
    off = np.maximum(_on_grid(tick_seconds(song, ends) * sample_rate), on + _EVENT_GRID)
    events = []
    for note, a, b in zip(part.notes, on.tolist(), off.tolist()):
        pitch, velocity = min(max(note.pitch, 0), 127), min(max(note.velocity, 1), 127)
        events.append((min(a, frames), True, pitch, velocity))
        events.append((min(b, frames), False, pitch, 0))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return events


def _on_grid(frames: np.ndarray) -> np.ndarray:
    return np.rint(frames / _EVENT_GRID).astype(int) * _EVENT_GRID


def tick_seconds(song: Song, ticks: np.ndarray) -> np.ndarray:
    """`Song.tick_to_seconds` for many ticks at once."""
    tempos = sorted(song.tempos)
    starts = np.array([t.tick for t in tempos], dtype=np.float64)
    starts[0] = 0.0  # the first tempo holds from the start, as in Song
    seconds_per_tick = 60.0 / (np.array([t.bpm for t in tempos]) * TICKS_PER_BEAT)
    offsets = np.concatenate([[0.0], np.cumsum(np.diff(starts) * seconds_per_tick[:-1])])
    index = np.clip(np.searchsorted(starts, ticks, side="right") - 1, 0, len(starts) - 1)
    return offsets[index] + (np.asarray(ticks, dtype=np.float64) - starts[index]) * seconds_per_tick[index]


def _fade_out(chunk: np.ndarray, start: int, frames: int, length: int) -> None:
    """A fade over the last `length` frames of `frames`, applied to the `chunk` starting at frame `start`,
    so a cut-off release tail does not click."""
    first, end = max(frames - length, start), start + len(chunk)
    if first < end:
        ramp = np.linspace(1.0, 0.0, length, dtype=np.float32)[first - (frames - length):end - (frames - length)]
        chunk[first - start:] *= ramp[:, None]


# -- loudness ----------------------------------------------------------------

_BLOCK_S = 0.4  # BS.1770 gating blocks: 400 ms
_STEP = 0.25  # of a block between block starts: 75 % overlap
_ABSOLUTE_GATE_LUFS = -70.0
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs
_IIR_BLOCK = 64  # samples per block of the K-weighting's matrix form: 64 multiply-adds per sample
_IIR_BATCH = 64  # blocks per matrix product


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770-4 integrated loudness in LUFS of a whole signal; -inf for silence (`LoudnessMeter`)."""
    channels = samples.reshape(len(samples), -1)
    meter = LoudnessMeter(len(channels), channels.shape[1], sample_rate)
    for start in range(0, len(channels), CHUNK_FRAMES):
        meter.add(channels[start:start + CHUNK_FRAMES])
    return meter.loudness()


class LoudnessMeter:
    """ITU-R BS.1770-4 integrated loudness of a signal of known length fed a chunk at a time.

    The measure of `pyloudnorm.Meter(rate).integrated_loudness` (same filters, blocks
    and gates; the tests hold them within 0.01 LU) at a fraction of its cost and memory:
    each K-weighted sample is squared and summed once into the 100 ms segments the
    overlapping 400 ms blocks share; the blocks are running sums of segments.
    """

    def __init__(self, frames: int, channels: int, sample_rate: int):
        self.sample_rate = sample_rate
        block = int(_BLOCK_S * sample_rate) + 1
        # a signal under one block is measured as if padded with silence to one block (as pyloudnorm)
        self.starts, self.ends = _block_bounds(max(frames, block), sample_rate)
        self.edges = np.unique(np.concatenate([self.starts, self.ends]))
        self.segments = np.zeros((channels, len(self.edges) - 1))
        self.filters = [KWeighting(sample_rate) for _ in range(channels)]
        self.position = 0

    def add(self, chunk: np.ndarray) -> None:
        """The next frames, (n, channels) (or (n,) for one channel)."""
        chunk = chunk.reshape(len(chunk), -1)
        start, end = self.position, self.position + len(chunk)
        self.position = end
        first = int(np.searchsorted(self.edges, start, side="right")) - 1  # the segment holding `start`
        inner = self.edges[(self.edges > start) & (self.edges < end)]
        if first >= self.segments.shape[1] or not len(chunk):
            return  # past the last block
        cuts = np.concatenate([[0], inner - start]).astype(np.intp)
        count = min(len(cuts), self.segments.shape[1] - first)
        for channel, weighting in enumerate(self.filters):
            weighted = weighting(chunk[:, channel])
            np.square(weighted, out=weighted)
            self.segments[channel, first:first + count] += np.add.reduceat(weighted, cuts, dtype=np.float64)[:count]

    def loudness(self) -> float:
        """In LUFS; -inf for silence."""
        running = np.concatenate([np.zeros((len(self.segments), 1)), np.cumsum(self.segments, axis=1)], axis=1)
        ends, starts = np.searchsorted(self.edges, self.ends), np.searchsorted(self.edges, self.starts)
        energies = running[:, ends] - running[:, starts]
        weights = np.array(_CHANNEL_WEIGHTS[:len(energies)])[:, None]
        return _gated_loudness((weights * energies).sum(axis=0) / (_BLOCK_S * self.sample_rate))


def _block_bounds(n: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ranges of the gating blocks, rounded as pyloudnorm rounds them."""
    count = int(np.round((n / sample_rate - _BLOCK_S) / (_BLOCK_S * _STEP))) + 1
    j = np.arange(count)
    starts = (_BLOCK_S * (j * _STEP) * sample_rate).astype(int)
    ends = (_BLOCK_S * (j * _STEP + 1) * sample_rate).astype(int)
    return starts, np.minimum(ends, n)


def k_weighting_coefficients(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of BS.1770's K-weighting, its two stages cascaded: pyloudnorm's design (RBJ cookbook
    high shelf +4 dB at 1500 Hz, Q 1/sqrt(2); high pass at 38 Hz, Q 0.5)."""
    w0 = 2.0 * np.pi * 1500.0 / sample_rate
    gain, alpha = 10 ** (4.0 / 40.0), np.sin(w0) / (2.0 / np.sqrt(2))
    root, cos = 2 * np.sqrt(gain) * alpha, np.cos(w0)
    shelf_b = gain * np.array([(gain + 1) + (gain - 1) * cos + root, -2 * ((gain - 1) + (gain + 1) * cos),
                               (gain + 1) + (gain - 1) * cos - root])
    shelf_a = np.array([(gain + 1) - (gain - 1) * cos + root, 2 * ((gain - 1) - (gain + 1) * cos),
                        (gain + 1) - (gain - 1) * cos - root])
    w0 = 2.0 * np.pi * 38.0 / sample_rate
    alpha, cos = np.sin(w0) / (2.0 * 0.5), np.cos(w0)
    pass_b = np.array([(1 + cos) / 2, -(1 + cos), (1 + cos) / 2])
    pass_a = np.array([1 + alpha, -2 * cos, 1 - alpha])
    return (np.convolve(shelf_b / shelf_a[0], pass_b / pass_a[0]),
            np.convolve(shelf_a / shelf_a[0], pass_a / pass_a[0]))


class KWeighting:
    """The K-weighting filter of one channel, run a chunk at a time (its state carried over) in numpy.

    The same output as a direct-form IIR filter (scipy.signal.lfilter, to float rounding)
    without a Python loop over samples and without SciPy, whose import alone costs more
    than a 30 s cue's loudness pass: the signal is cut into blocks of `_IIR_BLOCK`
    samples; inside a block the output is the impulse response's Toeplitz matrix times
    the input plus the response to the filter state at the block's start; those states
    come from a prefix scan over the blocks (state-space form, transposed direct form II).
    """

    def __init__(self, sample_rate: int):
        b, a = k_weighting_coefficients(sample_rate)
        order, size = len(a) - 1, _IIR_BLOCK
        step = np.zeros((order, order))  # state update: s' = step @ s + gain * x
        step[:, 0] = -a[1:]
        step[:-1, 1:] = np.eye(order - 1)
        gain = b[1:] - a[1:] * b[0]
        powers = [np.eye(order)]
        for _ in range(size):
            powers.append(step @ powers[-1])
        response = np.array([b[0]] + [(powers[i] @ gain)[0] for i in range(size - 1)])
        lag = np.arange(size)[:, None] - np.arange(size)[None, :]
        self.toeplitz = np.where(lag >= 0, response[np.clip(lag, 0, None)], 0.0).T.astype(np.float32)
        self.from_state = np.stack([p[0] for p in powers[:size]], axis=1)  # output i of state s: (s @ this)[i]
        self.to_state = np.stack([powers[size - 1 - j] @ gain for j in range(size)])  # (size, order)
        self.powers = powers
        self.state = np.zeros(order)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The filtered `x` (1-D) as float32; the state moves on by len(x) samples."""
        n, size = len(x), _IIR_BLOCK
        if not n:
            return np.zeros(0, dtype=np.float32)
        blocks = -(-n // size)
        batches = -(-blocks // _IIR_BATCH)
        padded = np.zeros(batches * _IIR_BATCH * size, dtype=np.float32)
        padded[:n] = x
        batched = padded.reshape(batches, _IIR_BATCH, size)
        padded = padded.reshape(-1, size)[:blocks]
        states = np.empty((blocks + 1, len(self.state)))
        states[0] = self.state
        states[1:] = padded @ self.to_state
        power, shift = self.powers[size], 1
        while shift <= blocks:  # states[k] = A^size states[k - 1] + inputs, by doubling
            states[shift:] += states[:-shift] @ power.T
            power, shift = power @ power, shift * 2
        out = (batched @ self.toeplitz).reshape(-1, size)[:blocks]  # small products: BLAS runs them on
        out += (states[:-1] @ self.from_state).astype(np.float32)  # one thread (one big one: 50x the CPU here)
        tail = n - (blocks - 1) * size  # samples in the last block
        self.state = self.powers[tail] @ states[blocks - 1] + padded[-1, :tail] @ self.to_state[size - tail:]
        return out.reshape(-1)[:n]


def _gated_loudness(block_power: np.ndarray) -> float:
    """BS.1770 gating: blocks above -70 LUFS, then above the relative gate 10 LU under their mean."""
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10 * np.log10(block_power)
    above_absolute = block_lufs >= _ABSOLUTE_GATE_LUFS
    if not above_absolute.any():
        return -np.inf
    relative_gate = -0.691 + 10 * np.log10(block_power[above_absolute].mean()) - 10
    gated = (block_lufs > relative_gate) & (block_lufs > _ABSOLUTE_GATE_LUFS)
    if not gated.any():
        return -np.inf
    return float(-0.691 + 10 * np.log10(block_power[gated].mean()))


def _peak(samples: np.ndarray) -> float:
    return max(float(samples.max()), -float(samples.min())) if samples.size else 0.0  # no |x| temporary


def peak_dbfs(samples: np.ndarray) -> float:
    peak = _peak(samples)
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def normalising_gain_db(loudness: float, peak_db: float) -> float:
    """Gain (dB) that brings `loudness` to TARGET_LUFS, capped so that a signal whose sample peak is
    `peak_db` stays at or under CEILING_DBFS."""
    gain_db = TARGET_LUFS - loudness if np.isfinite(loudness) else 0.0
    if np.isfinite(peak_db):
        gain_db = min(gain_db, CEILING_DBFS - peak_db)
    return float(gain_db)


# -- files -------------------------------------------------------------------

def write_wav(samples: np.ndarray, path: Path, sample_rate: int = SAMPLE_RATE, gain: float = 1.0) -> Path:
    """`samples * gain` as a 24-bit PCM WAV file (the header libsndfile writes, byte for
    byte), quantised and packed a chunk at a time: no file-sized temporaries."""
    with _wav_file(path, 1 if samples.ndim == 1 else samples.shape[1], sample_rate) as wav:
        _write_frames(wav, samples, gain)
    return path


def _write_wavs(paths: list[Path], channels: list[int], sample_rate: int, chunks: Iterator[list[np.ndarray]],
                chunk_count: int, gain: float, progress: Optional[Progress], workers: Optional[int]) -> None:
    """One 24-bit WAV per path, each written a chunk at a time from `chunks` (lists of samples, one per
    path), all of them renamed into place only once every one is whole."""
    with ExitStack() as files, ThreadPoolExecutor(_worker_count(workers)) as pool:
        wavs = [files.enter_context(_wav_file(path, n, sample_rate)) for path, n in zip(paths, channels)]
        for i, signals in enumerate(chunks):
            list(pool.map(lambda wav, samples: _write_frames(wav, samples, gain), wavs, signals))
            report(progress, "write stems", (i + 1) / max(chunk_count, 1))
    report(progress, "write stems", 1.0)


@contextmanager
def _wav_file(path: Path, channels: int, sample_rate: int):
    import wave

    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(3)
        wav.setframerate(sample_rate)
        yield wav


def _write_frames(wav, samples: np.ndarray, gain: float) -> None:
    for start in range(0, len(samples), _WRITE_CHUNK_FRAMES):
        wav.writeframesraw(_int24_bytes(_pcm24(samples[start:start + _WRITE_CHUNK_FRAMES], gain)))


def _pcm24(samples: np.ndarray, gain: float) -> np.ndarray:
    """`samples * gain` rounded to 24-bit integers (int32) and clipped to their range."""
    full_scale = 2 ** 23
    scaled = np.multiply(samples, np.float32(gain * full_scale), dtype=np.float32)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -full_scale, full_scale - 1, out=scaled)
    return scaled.astype(np.int32)


def _int24_bytes(pcm: np.ndarray) -> np.ndarray:
    """Little-endian 3-byte samples, as a uint8 array. Every four samples are shifted
    into three 32-bit words, on contiguous planes: copying 3-byte slices in numpy, or
    libsndfile's own packing, costs about twice as much. (Assumes a little-endian
    machine, as x86 and ARM are.)"""
    flat = pcm.reshape(-1).view(np.uint32)
    n = len(flat)
    if n % 4:
        flat = np.concatenate([flat, np.zeros(4 - n % 4, dtype=np.uint32)])
    a, b, c, d = flat.reshape(-1, 4).T.copy()
    words = np.empty((3, len(a)), dtype=np.uint32)
    np.bitwise_and(a, 0xFFFFFF, out=words[0])
    words[0] |= b << 24
    np.right_shift(b, 8, out=words[1])
    words[1] &= 0xFFFF
    words[1] |= c << 16
    np.right_shift(c, 16, out=words[2])
    words[2] &= 0xFF
    words[2] |= d << 8
    return words.T.reshape(-1).view(np.uint8)[:3 * n]


def _output_paths(out_dir: Path, stems: list[str]) -> list[Path]:
    """An unused `<stem>.wav` for each stem, all distinct, chosen before any file is
    written (the files are written at the same time)."""
    paths: list[Path] = []
    for stem in stems:
        path, n = unused_path(out_dir / f"{stem}.wav"), 2
        while path in paths:
            path, n = unused_path(out_dir / f"{stem}-{n}.wav"), n + 1
        paths.append(path)
    return paths


def safe_file_stem(name: str) -> str:
    """A part name as a portable file name: letters, digits, space, '-', '_', '.'."""
    return re.sub(r"[^\w .-]+", "_", name).strip(" .")


def _unique_key(name: str, taken) -> str:
    key, n = name, 2
    while key in taken or key == MIX:
        key, n = f"{name}-{n}", n + 1
    return key
