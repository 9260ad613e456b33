"""Audio stems from a Song: one WAV per part plus the mix, 48 kHz stereo 24-bit.

Synthesis is TinySoundFont with the General MIDI SoundFont that pretty_midi
ships (TimGM6mb.sf2) unless the caller names another .sf2/.sf3.

Loudness: the mix is normalised to `TARGET_LUFS` integrated (ITU-R BS.1770
via pyloudnorm), then turned down further if needed so the sample peak of the
mix and of every stem stays at or under `CEILING_DBFS` (-1 dBFS). A full 4x
oversampled true-peak meter costs more than the synthesis itself; the 1 dB
margin covers the inter-sample overs of SoundFont material (the tests check
the true peak of a render stays under 0 dBTP).
Every stem gets the very same gain as the mix, so the stems still sum to the
mix sample for sample (up to 24-bit rounding) and keep their balance.

Files: `<out_dir>/mix.wav` and `<out_dir>/<part name>.wav`; a name that is
taken gets `-2`, `-3`, ... (`files.unused_path`): a render never replaces an
existing file. Parts without notes get no stem.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import CuesmithError
from ..files import atomic_path, unused_path
from ..progress import Progress, report
from .score import TICKS_PER_BEAT, Part, Song

SAMPLE_RATE = 48_000
SUBTYPE = "PCM_24"
TARGET_LUFS = -16.0  # streaming-platform loudness for a finished mix
CEILING_DBFS = -1.0  # sample-peak ceiling; the 1 dB margin covers inter-sample overs
TAIL_BEATS = 0.5  # release tail after the last note-off, in beats at the final tempo
MIX = "mix"
_FADE_SECONDS = 0.01


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
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def render_stems(song: Song, out_dir: str | Path, soundfont: str | Path | None = None,
                 progress: Optional[Progress] = None) -> dict[str, Path]:
    """Render and write the mix (key "mix") and one WAV per part (key: part name)."""
    audio = render_audio(song, soundfont=soundfont, progress=progress)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CuesmithError("exists and is not a folder", out_dir)
    written = {MIX: write_wav(audio.mix, unused_path(out_dir / f"{MIX}.wav"), audio.sample_rate)}
    for i, (name, samples) in enumerate(audio.stems.items()):
        path = unused_path(out_dir / f"{safe_file_stem(name) or f'part-{i + 1}'}.wav")
        written[name] = write_wav(samples, path, audio.sample_rate)
        report(progress, "write stems", (i + 1) / len(audio.stems))
    return written


def render_audio(song: Song, soundfont: str | Path | None = None, sample_rate: int = SAMPLE_RATE,
                 progress: Optional[Progress] = None) -> RenderedAudio:
    """Synthesise every part with notes, mix, and loudness-normalise (see module doc)."""
    parts = [p for p in song.parts if p.notes]
    if not parts:
        raise CuesmithError("nothing to render: the song has no notes")
    synth = load_synth(Path(soundfont) if soundfont else default_soundfont(), sample_rate)
    frames = render_length(song, sample_rate)
    stems: dict[str, np.ndarray] = {}
    for i, part in enumerate(parts):
        stems[_unique_key(part.name, stems)] = synthesize_part(synth, part, song, frames, sample_rate)
        report(progress, "render stems", (i + 1) / len(parts))
    mix = np.zeros((frames, 2), dtype=np.float32)
    for samples in stems.values():
        mix += samples
    loudness = integrated_loudness(mix, sample_rate)
    gain_db = normalising_gain_db(loudness, [mix, *stems.values()])
    gain = np.float32(10 ** (gain_db / 20))
    mix *= gain
    for samples in stems.values():
        samples *= gain
    return RenderedAudio(stems=stems, mix=mix, sample_rate=sample_rate, gain_db=gain_db,
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


def synthesize_part(synth, part: Part, song: Song, frames: int, sample_rate: int) -> np.ndarray:
    """One part, alone, as float32 (frames, 2); the synth is left silent afterwards."""
    channel = 9 if part.is_drum else 0
    _select_program(synth, channel, part)
    out = np.zeros((frames, 2), dtype=np.float32)
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
    synth.sounds_off()
    _fade_out(out, sample_rate)
    return out


def _select_program(synth, channel: int, part: Part) -> None:
    try:
        synth.program_change(channel, part.program & 0x7F, is_drums=part.is_drum)
    except RuntimeError:  # this SoundFont lacks the preset: fall back to its first one
        synth.program_change(channel, 0, is_drums=part.is_drum)


def _note_events(part: Part, song: Song, sample_rate: int, frames: int) -> list[tuple[int, bool, int, int]]:
    """(frame, is_on, pitch, velocity), note-offs before note-ons at one frame."""
    starts = np.array([n.start for n in part.notes])
    ends = np.array([max(n.end, n.start + 1) for n in part.notes])
    on = np.rint(tick_seconds(song, starts) * sample_rate).astype(int)
    off = np.rint(tick_seconds(song, ends) * sample_rate).astype(int)
    events = []
    for note, a, b in zip(part.notes, on.tolist(), off.tolist()):
        pitch, velocity = min(max(note.pitch, 0), 127), min(max(note.velocity, 1), 127)
        events.append((min(a, frames), True, pitch, velocity))
        events.append((min(max(b, a + 1), frames), False, pitch, 0))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return events


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

def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    import pyloudnorm

    block = int(0.4 * sample_rate) + 1  # BS.1770 gating blocks are 400 ms
    if len(samples) < block:
        samples = np.pad(samples, ((0, block - len(samples)), (0, 0)))
    # float32 filters twice as fast as float64 and agrees to 1e-6 LU
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(np.asarray(samples, np.float32)))


def peak_dbfs(samples: np.ndarray) -> float:
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
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

def write_wav(samples: np.ndarray, path: Path, sample_rate: int = SAMPLE_RATE) -> Path:
    import soundfile

    with atomic_path(path) as tmp:
        soundfile.write(tmp, samples, sample_rate, subtype=SUBTYPE, format="WAV")
    return path


def safe_file_stem(name: str) -> str:
    """A part name as a portable file name: letters, digits, space, '-', '_', '.'."""
    return re.sub(r"[^\w .-]+", "_", name).strip(" .")


def _unique_key(name: str, taken: dict) -> str:
    key, n = name, 2
    while key in taken or key == MIX:
        key, n = f"{name}-{n}", n + 1
    return key
