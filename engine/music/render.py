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

Speed (benchmarks/bench_stems.py): TinySoundFont holds the GIL, so where cores
are idle the parts are synthesised in forked processes (Linux) that write into
shared memory, a melodic part cut between them by pitch; the result is the same
as in one process (to float rounding). The loudness meter is our own BS.1770
(no Python loop over blocks) and runs a thread per channel; the WAV files are
quantised and packed to 24 bits in numpy chunks and written in threads.

Files: `<out_dir>/mix.wav` and `<out_dir>/<part name>.wav`; a name that is
taken gets `-2`, `-3`, ... (`files.unused_path`): a render never replaces an
existing file. Parts without notes get no stem.
"""
from __future__ import annotations

import itertools
import mmap
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import CuesmithError
from ..files import atomic_path, unused_path
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
    import pretty_midi

    from ..config import user_setting

    chosen = user_setting("soundfont")
    return Path(chosen).expanduser() if chosen else Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def render_stems(song: Song, out_dir: str | Path, soundfont: str | Path | None = None,
                 progress: Optional[Progress] = None, workers: Optional[int] = None) -> dict[str, Path]:
    """Render and write the mix (key "mix") and one WAV per part (key: part name)."""
    check_folder(Path(out_dir))
    audio = _render(song, soundfont, SAMPLE_RATE, progress, workers)
    return write_stems(audio.stems, audio.mix, SAMPLE_RATE, out_dir, progress, 10 ** (audio.gain_db / 20), workers)


def write_stems(stems: dict[str, np.ndarray], mix: np.ndarray, sample_rate: int, out_dir: str | Path,
                progress: Optional[Progress] = None, gain: float = 1.0,
                workers: Optional[int] = None) -> dict[str, Path]:
    """mix.wav and one WAV per stem in `out_dir` (24-bit, never over a file already there; `gain` applied
    while quantising). Keys: "mix" and the stem names."""
    out_dir = Path(out_dir)
    check_folder(out_dir)
    keys = [MIX, *stems]
    names = [safe_file_stem(name) or f"part-{i + 1}" for i, name in enumerate(stems)]
    paths = _output_paths(out_dir, [MIX, *names])
    signals = [mix, *stems.values()]
    with ThreadPoolExecutor(_worker_count(workers)) as pool:
        writes = [pool.submit(write_wav, samples, path, sample_rate, gain) for samples, path in zip(signals, paths)]
        for i, write in enumerate(writes):
            write.result()
            report(progress, "write stems", (i + 1) / len(writes))
    return dict(zip(keys, paths))


def check_folder(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise CuesmithError("exists and is not a folder", out_dir)


def render_audio(song: Song, soundfont: str | Path | None = None, sample_rate: int = SAMPLE_RATE,
                 progress: Optional[Progress] = None, workers: Optional[int] = None) -> RenderedAudio:
    """Synthesise every part with notes, mix, and loudness-normalise (see module doc)."""
    audio = _render(song, soundfont, sample_rate, progress, workers)
    gain = np.float32(10 ** (audio.gain_db / 20))
    for samples in (audio.mix, *audio.stems.values()):
        samples *= gain
    return audio


def _render(song: Song, soundfont: str | Path | None, sample_rate: int, progress: Optional[Progress],
            workers: Optional[int]) -> RenderedAudio:
    """`render_audio` before its gain is applied: the samples are the raw synthesis."""
    parts = [p for p in song.parts if p.notes]
    if not parts:
        raise CuesmithError("nothing to render: the song has no notes")
    synth = load_synth(Path(soundfont) if soundfont else default_soundfont(), sample_rate)
    frames = render_length(song, sample_rate)
    stems = synthesize_parts(synth, parts, song, frames, sample_rate, workers, progress)
    mix = np.zeros((frames, 2), dtype=np.float32)
    for samples in stems:
        mix += samples
    loudness = integrated_loudness(mix, sample_rate)
    gain_db = normalising_gain_db(loudness, [mix, *stems])
    keys: list[str] = []
    for part in parts:
        keys.append(_unique_key(part.name, keys))
    return RenderedAudio(stems=dict(zip(keys, stems)), mix=mix, sample_rate=sample_rate, gain_db=gain_db,
                         loudness_lufs=loudness + gain_db)  # loudness scales with gain exactly


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


def synthesize_parts(synth, parts: list[Part], song: Song, frames: int, sample_rate: int,
                     workers: Optional[int] = None, progress: Optional[Progress] = None) -> list[np.ndarray]:
    """Each part alone, as float32 (frames, 2) arrays, the work shared by up to `workers` processes."""
    shares = split_work(parts, song, _worker_count(workers))
    buffers = [[_frames(frames, shared=k > 0) for _ in share] for k, share in enumerate(shares)]

    def job(k: int, job_progress: Optional[Progress]) -> Callable[[], None]:
        def render_share() -> None:
            for i, (piece, out) in enumerate(zip(shares[k], buffers[k])):
                synthesize_part(synth, piece.part, song, out, sample_rate)
                report(job_progress, "render stems", (i + 1) / len(shares[k]))
        return render_share

    # shares are of equal cost, so this process's progress stands for all of them
    _run_forked([job(k, progress if k == 0 else None) for k in range(len(shares))])
    report(progress, "render stems", 1.0)
    stems: list[Optional[np.ndarray]] = [None] * len(parts)
    for share, outs in zip(shares, buffers):
        for piece, out in zip(share, outs):
            if stems[piece.index] is None:
                stems[piece.index] = out
            else:  # a part cut between processes: its pieces sum to it
                stems[piece.index] += out
    return stems


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
    """Processes to synthesise with: `workers`, or by default one per idle core (up to
    MAX_WORKERS). A forked worker pays only on a core nobody else is using: on the
    shared 2-core dev machine at load 4-9 two processes were 5-15 % slower than one
    (benchmarks/bench_stems.py). The output does not depend on it (`_note_events`)."""
    if not hasattr(os, "fork") or sys.platform != "linux":
        return 1  # forking is unsafe on macOS (system frameworks) and absent on Windows
    if workers is not None:
        return max(1, workers)
    idle = len(os.sched_getaffinity(0)) - os.getloadavg()[0]
    return int(min(MAX_WORKERS, max(1, round(idle))))


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


def _frames(frames: int, shared: bool) -> np.ndarray:
    """Zeroed float32 (frames, 2). `shared`: in anonymous shared memory, where what a
    forked child writes the parent sees; only then, as private memory faults in faster."""
    if not shared:
        return np.zeros((frames, 2), dtype=np.float32)
    return np.frombuffer(mmap.mmap(-1, frames * 8), dtype=np.float32).reshape(frames, 2)


def synthesize_part(synth, part: Part, song: Song, out: np.ndarray, sample_rate: int) -> np.ndarray:
    """One part, alone, into float32 `out` of shape (frames, 2); the synth is left silent afterwards."""
    frames = len(out)
    channel = 9 if part.is_drum else 0
    _select_program(synth, channel, part)
    raw = memoryview(out).cast("B")
    bytes_per_frame = out.itemsize * 2
    position = 0
    for frame, is_on, pitch, velocity in _note_events(part, song, sample_rate, frames):
        if frame > position:
            synth.generate_simple(frame - position, raw[position * bytes_per_frame:frame * bytes_per_frame])
            position = frame
        if is_on:
            synth.noteon(channel, pitch, velocity)
        else:
            synth.noteoff(channel, pitch)
    if frames > position:
        synth.generate_simple(frames - position, raw[position * bytes_per_frame:])
    _silence(synth)
    _fade_out(out, sample_rate)
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


def _fade_out(samples: np.ndarray, sample_rate: int) -> None:
    """A 10 ms fade at the very end, so a cut-off release tail does not click."""
    n = min(len(samples), int(_FADE_SECONDS * sample_rate))
    if n:
        samples[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)[:, None]


# -- loudness ----------------------------------------------------------------

_BLOCK_S = 0.4  # BS.1770 gating blocks: 400 ms
_STEP = 0.25  # of a block between block starts: 75 % overlap
_ABSOLUTE_GATE_LUFS = -70.0
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs
_SEGMENTS_PER_CHUNK = 64  # filtered at a time: 6.4 s, about 1 MB of float32 at 48 kHz


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770-4 integrated loudness in LUFS; -inf for silence.

    The measure of `pyloudnorm.Meter(rate).integrated_loudness` (same filters, blocks
    and gates; the tests hold them within 0.01 LU) at a fraction of its cost: the
    K-weighting runs in float32 with one thread per channel, each sample is squared and
    summed once into the 100 ms segments the blocks share, and the blocks are running
    sums of segments, instead of a Python loop over blocks of 400 ms.
    """
    channels = samples.reshape(len(samples), -1)
    block = int(_BLOCK_S * sample_rate) + 1
    if len(channels) < block:
        channels = np.pad(channels, ((0, block - len(channels)), (0, 0)))
    starts, ends = _block_bounds(len(channels), sample_rate)
    sos = _k_weighting(sample_rate)
    with ThreadPoolExecutor(channels.shape[1]) as pool:
        energies = list(pool.map(lambda ch: _block_energies(channels[:, ch], sos, starts, ends),
                                 range(channels.shape[1])))
    weighted = sum(w * e for w, e in zip(_CHANNEL_WEIGHTS, energies)) / (_BLOCK_S * sample_rate)
    return _gated_loudness(weighted)


def _block_bounds(n: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ranges of the gating blocks, rounded as pyloudnorm rounds them."""
    count = int(np.round((n / sample_rate - _BLOCK_S) / (_BLOCK_S * _STEP))) + 1
    j = np.arange(count)
    starts = (_BLOCK_S * (j * _STEP) * sample_rate).astype(int)
    ends = (_BLOCK_S * (j * _STEP + 1) * sample_rate).astype(int)
    return starts, np.minimum(ends, n)


def _k_weighting(sample_rate: int) -> np.ndarray:
    """BS.1770's two K-weighting stages as float32 second-order sections (pyloudnorm's design)."""
    from pyloudnorm.iirfilter import IIRfilter

    stages = [IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate, "high_shelf"),
              IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass")]
    return np.array([[*stage.b, *stage.a] for stage in stages], dtype=np.float32)


def _block_energies(channel: np.ndarray, sos: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sum of the K-weighted squares in each block."""
    edges = np.unique(np.concatenate([starts, ends]))
    running = np.concatenate([[0.0], np.cumsum(_segment_energies(channel, sos, edges))])
    return running[np.searchsorted(edges, ends)] - running[np.searchsorted(edges, starts)]


def _segment_energies(channel: np.ndarray, sos: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Sum of the K-weighted squares between consecutive edges, filtered some
    seconds at a time (the filter state carried over) so the work stays in cache."""
    from scipy.signal import sosfilt

    state = np.zeros((len(sos), 2), dtype=np.float32)
    sums = []
    for first in range(0, len(edges) - 1, _SEGMENTS_PER_CHUNK):
        chunk = edges[first:first + _SEGMENTS_PER_CHUNK + 1]
        weighted, state = sosfilt(sos, np.asarray(channel[chunk[0]:chunk[-1]], np.float32), zi=state)
        np.square(weighted, out=weighted)
        sums.append(np.add.reduceat(weighted, chunk[:-1] - chunk[0], dtype=np.float64))
    return np.concatenate(sums)


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


def peak_dbfs(samples: np.ndarray) -> float:
    peak = max(float(samples.max()), -float(samples.min())) if samples.size else 0.0  # no |x| temporary
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def normalising_gain_db(loudness: float, signals: list[np.ndarray]) -> float:
    """Gain (dB) that brings `loudness` to TARGET_LUFS, capped so no signal's sample
    peak passes CEILING_DBFS."""
    gain_db = TARGET_LUFS - loudness if np.isfinite(loudness) else 0.0
    peak = max(peak_dbfs(x) for x in signals)
    if np.isfinite(peak):
        gain_db = min(gain_db, CEILING_DBFS - peak)
    return float(gain_db)


# -- files -------------------------------------------------------------------

def write_wav(samples: np.ndarray, path: Path, sample_rate: int = SAMPLE_RATE, gain: float = 1.0) -> Path:
    """`samples * gain` as a 24-bit PCM WAV file (the header libsndfile writes, byte for
    byte), quantised and packed a chunk at a time: no file-sized temporaries."""
    import wave

    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as wav:
        wav.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        wav.setsampwidth(3)
        wav.setframerate(sample_rate)
        for start in range(0, len(samples), _WRITE_CHUNK_FRAMES):
            wav.writeframesraw(_int24_bytes(_pcm24(samples[start:start + _WRITE_CHUNK_FRAMES], gain)))
    return path


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
