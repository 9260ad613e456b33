"""The audio corpus: POP909 excerpts rendered to 32 kHz mono, varied in sound and playing.

Each excerpt is a `Variant` of one song: a start at a phrase boundary, about
`CorpusConfig.seconds` of whole bars, a SoundFont and synthesiser, General MIDI
programs for the melody and the accompaniment, a transposition and a tempo
scale. The variants of a song follow from (song number, index, seed) alone, so
one command rebuilds the same corpus.

SoundFonts (all free to redistribute; none ships in this repository):
- FluidR3_GM.sf2, Debian fluid-soundfont-gm, MIT; rendered with FluidSynth (its
  reverb and chorus on, as a user would hear it);
- MuseScore_General_Lite.sf3, Debian musescore-general-soundfont-small, MIT
  (parts public domain / CC0); rendered with TinySoundFont (engine.music.render);
- TimGM6mb.sf2, shipped with pretty_midi (GPL-2 by Tim Brechbill); TinySoundFont.
A SoundFont that is not installed is skipped (`available_soundfonts`).

Files live in the user cache (`cache_root()`), never in the repository:
`<cache>/corpus/v<CORPUS_VERSION>/<split>/<id>.flac` (16-bit) and `<id>.json`,
the metadata the paired video generator and the codec read: beats and
downbeats in seconds of the excerpt, phrase starts (POP909 structure labels),
the key after transposition, programs, SoundFont. An excerpt already in the
cache is not rendered again.

    python -m cuesmith.engine.corpus build --songs 1-40 --per-song 1
"""
from __future__ import annotations

import functools
import json
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from ..errors import CuesmithError
from ..files import atomic_path, write_json_atomic
from ..music.pop909 import TRAIN_SONGS, VALID_SONGS, Pop909Song, data_root, load_song
from ..music.score import TICKS_PER_BEAT, Key, Note, Part, Song, TempoChange, TimeSignature
from ..progress import Progress, report

CORPUS_VERSION = "1"  # bump when a variant of the same id would sound different
SAMPLE_RATE = 32_000  # EnCodec-32k's rate: the codec's tokens are 640 samples apart
STRUCTURE_FOLDER = "pop909-structure"

SOUNDFONTS = {  # name -> (candidate paths, synthesiser)
    "fluidr3": (("/usr/share/sounds/sf2/FluidR3_GM.sf2",), "fluidsynth"),
    "musescore-lite": (("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",), "tinysoundfont"),
    "timgm6mb": ((), "tinysoundfont"),  # pretty_midi's own, found at run time
}
MELODY_PROGRAMS = (0, 4, 11, 16, 24, 40, 56, 65, 73, 80)  # piano, EP, vibes, organ, guitar, violin, trumpet, sax, flute, lead
ACCOMPANIMENT_PROGRAMS = (0, 1, 4, 24, 25, 46, 48, 88)  # pianos, EP, guitars, harp, strings, pad
TRANSPOSE_RANGE = (-5, 6)
TEMPO_SCALE_RANGE = (0.85, 1.2)


@dataclass(frozen=True)
class CorpusConfig:
    seconds: float = 30.0  # excerpt length, rounded up to whole bars (VidMuse's window)
    sample_rate: int = SAMPLE_RATE
    seed: int = 15


@dataclass(frozen=True)
class Variant:
    song: int
    index: int  # of the variant within the song
    soundfont: str
    melody_program: int
    accompaniment_program: int
    transpose: int
    tempo_scale: float
    start_phrase: int  # index of the phrase the excerpt starts on

    @property
    def id(self) -> str:
        return f"{self.song:03d}-{self.index}"

    @property
    def split(self) -> str:
        return "train" if self.song in TRAIN_SONGS else "valid" if self.song in VALID_SONGS else "other"


@dataclass
class Excerpt:
    """What the generator and the codec need to know about one rendered excerpt."""

    id: str
    split: str
    variant: dict
    sample_rate: int
    seconds: float
    beats: list[tuple[float, bool]]  # (seconds, is downbeat) inside the excerpt
    phrases: list[tuple[float, str]]  # (start seconds, label) of each phrase that starts inside
    key: Optional[dict]
    audio_path: str = ""
    loudness_lufs: float = 0.0
    version: str = CORPUS_VERSION
    cpu_seconds: float = 0.0  # spent rendering it (this process and its children)

    @classmethod
    def load(cls, path: Path) -> "Excerpt":
        d = json.loads(path.read_text())
        d["beats"] = [tuple(b) for b in d["beats"]]
        d["phrases"] = [tuple(p) for p in d["phrases"]]
        return cls(**d)

    def audio(self) -> np.ndarray:
        import soundfile

        samples, rate = soundfile.read(self.audio_path, dtype="float32")
        assert rate == self.sample_rate
        return samples


# -- where ----------------------------------------------------------------------

def cache_root() -> Path:
    override = os.environ.get("CUESMITH_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("cuesmith"))


def corpus_dir(root: Optional[Path] = None) -> Path:
    return (root or cache_root()) / "corpus" / f"v{CORPUS_VERSION}"


def soundfont_path(name: str) -> Optional[Path]:
    if name == "timgm6mb":
        import pretty_midi

        return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    candidates, synth = SOUNDFONTS[name]
    if synth == "fluidsynth" and shutil.which("fluidsynth") is None:
        return None
    return next((Path(p) for p in candidates if Path(p).is_file()), None)


def available_soundfonts() -> list[str]:
    return [name for name in SOUNDFONTS if soundfont_path(name) is not None]


# -- structure labels -----------------------------------------------------------

def read_phrases(number: int) -> list[tuple[str, int]]:
    """(label, bars) of each phrase, from human_label1.txt (else 2); [] if the song has none."""
    folder = data_root().parent / STRUCTURE_FOLDER / f"{number:03d}"
    for name in ("human_label1.txt", "human_label2.txt"):
        path = folder / name
        if path.is_file():
            return parse_phrases(path.read_text().strip())
    return []


def parse_phrases(text: str) -> list[tuple[str, int]]:
    """'i4A4B8o3' -> [('i', 4), ('A', 4), ('B', 8), ('o', 3)]."""
    import re

    return [(label, int(bars)) for label, bars in re.findall(r"([A-Za-z])(\d+)", text)]


def phrase_start_ticks(pop: Pop909Song, phrases: list[tuple[str, int]]) -> list[tuple[int, str]]:
    """Tick of each phrase's first bar: the labels count bars from the first annotated
    downbeat, which `load_song` put on a bar line after its pick-up bars. Checked on
    eight songs against where the melody enters after the intro: five agree, three
    are a bar off (a pick-up or a rest bar: the source's own bar counting is not
    always that of beat_midi.txt), so a phrase start is a downbeat within about a bar."""
    bars = pop.song.bars(pop.song.end_tick + 64 * TICKS_PER_BEAT)
    first = _first_downbeat_bar(pop, bars)
    starts, bar = [], first
    for label, length in phrases:
        if bar >= len(bars):
            break
        starts.append((bars[bar], label))
        bar += length
    return starts


def _first_downbeat_bar(pop: Pop909Song, bars: list[int]) -> int:
    """Bar index of the first annotated downbeat. POP909 files keep one tempo, so its
    annotated second maps to a tick of the original file at that tempo; `tick_offset`
    is where `load_song` moved the original tick 0."""
    seconds = next((s for s, down in pop.beats if down), pop.beats[0][0])
    tick = seconds * pop.song.tempos[0].bpm * TICKS_PER_BEAT / 60.0 - pop.tick_offset
    return int(np.argmin(np.abs(np.asarray(bars) - tick)))


# -- variants -------------------------------------------------------------------

def plan_variants(songs: Iterable[int], per_song: int, config: CorpusConfig = CorpusConfig(),
                  soundfonts: Optional[list[str]] = None) -> list[Variant]:
    """`per_song` variants of each song, the same for the same arguments (seeded per song and index)."""
    fonts = soundfonts or available_soundfonts()
    if not fonts:
        raise CuesmithError("no SoundFont available", hint="make setup installs fluid-soundfont-gm")
    variants = []
    for number in songs:
        phrases = read_phrases(number)
        for index in range(per_song):
            rng = random.Random(f"{config.seed}/{number}/{index}")
            variants.append(Variant(
                song=number, index=index, soundfont=fonts[(number + index) % len(fonts)],
                melody_program=rng.choice(MELODY_PROGRAMS),
                accompaniment_program=rng.choice(ACCOMPANIMENT_PROGRAMS),
                transpose=rng.randint(*TRANSPOSE_RANGE),
                tempo_scale=round(rng.uniform(*TEMPO_SCALE_RANGE), 3),
                start_phrase=rng.randrange(max(1, len(phrases) - 1))))
    return variants


def variant_song(pop: Pop909Song, variant: Variant, seconds: float) -> tuple[Song, int, int, list[tuple[int, str]]]:
    """The excerpt as its own Song (tick 0 = its first bar), its start and end tick in the
    original, and the phrase starts inside it (ticks of the excerpt)."""
    song = pop.song
    # phrase labels can run past the MIDI's last note (songs 173, 231): only phrases that start inside it
    starts = [s for s in phrase_start_ticks(pop, read_phrases(pop.number)) if s[0] < song.end_tick]
    start = starts[min(variant.start_phrase, len(starts) - 1)][0] if starts else 0
    bpm = song.tempos[0].bpm * variant.tempo_scale
    all_bars = song.bars(song.end_tick + 64 * TICKS_PER_BEAT)
    last = next(b for b in all_bars if b >= song.end_tick)  # the bar line after the music ends
    bars = [b for b in all_bars if start <= b <= last]
    end = next((b for b in bars if (b - start) * 60.0 / (bpm * TICKS_PER_BEAT) >= seconds), last)
    if end <= start:
        raise CuesmithError(f"POP909 song {pop.number}: nothing to render after its phrase {variant.start_phrase}")
    parts = [_excerpt_part(p, start, end, variant) for p in song.parts]
    tempos = [TempoChange(max(0, t.tick - start), t.bpm * variant.tempo_scale)
              for t in song.tempos if t.tick < end]
    tempos = [t for i, t in enumerate(tempos) if i == len(tempos) - 1 or tempos[i + 1].tick > t.tick]
    signature = song.time_signature_at(start)
    signatures = [TimeSignature(0, signature.numerator, signature.denominator)] + [
        TimeSignature(ts.tick - start, ts.numerator, ts.denominator)
        for ts in song.time_signatures if start < ts.tick < end]
    key = Key((song.key.tonic + variant.transpose) % 12, song.key.mode) if song.key else None
    excerpt = Song(parts=[p for p in parts if p.notes], tempos=tempos, time_signatures=signatures, key=key,
                   title=f"POP909 {pop.number:03d} variant {variant.index}")
    inside = [(t - start, label) for t, label in starts if start <= t < end]
    return excerpt, start, end, inside


def _excerpt_part(part: Part, start: int, end: int, variant: Variant) -> Part:
    program = variant.melody_program if part.name == "melody" else variant.accompaniment_program
    notes = [Note(max(n.start, start) - start, min(n.end, end) - start,
                  min(127, max(0, n.pitch + variant.transpose)), n.velocity)
             for n in part.notes if n.end > start and n.start < end]
    return Part(part.name, [n for n in notes if n.end > n.start], program, part.channel, part.is_drum)


# -- rendering ------------------------------------------------------------------

def render_variant(variant: Variant, config: CorpusConfig = CorpusConfig(),
                   root: Optional[Path] = None) -> Excerpt:
    """Render one variant into the cache (or read it back if it is there already)."""
    folder = corpus_dir(root) / variant.split
    meta_path = folder / f"{variant.id}.json"
    if meta_path.is_file():
        excerpt = Excerpt.load(meta_path)
        if excerpt.variant == asdict(variant) and Path(excerpt.audio_path).is_file():
            return excerpt
    cpu_before = _cpu_seconds()
    pop = load_song(variant.song)
    song, _, _, phrases = variant_song(pop, variant, config.seconds)
    samples = synthesize(song, variant.soundfont, config.sample_rate)
    loudness = _normalise(samples, config.sample_rate)
    audio_path = folder / f"{variant.id}.flac"
    _write_flac(samples, audio_path, config.sample_rate)
    seconds = len(samples) / config.sample_rate
    beats = [(round(song.tick_to_seconds(t), 4), down) for t, down in song.beats(song.end_tick)
             if song.tick_to_seconds(t) < seconds]
    excerpt = Excerpt(
        id=variant.id, split=variant.split, variant=asdict(variant), sample_rate=config.sample_rate,
        seconds=round(seconds, 4), beats=beats,
        phrases=[(round(song.tick_to_seconds(t), 4), label) for t, label in phrases],
        key=asdict(song.key) if song.key else None, audio_path=str(audio_path),
        loudness_lufs=round(loudness, 2), cpu_seconds=round(_cpu_seconds() - cpu_before, 3))
    write_json_atomic(meta_path, asdict(excerpt))
    return excerpt


def synthesize(song: Song, soundfont: str, sample_rate: int) -> np.ndarray:
    """Mono float32 at `sample_rate`, before loudness normalisation."""
    path = soundfont_path(soundfont)
    if path is None:
        raise CuesmithError(f"SoundFont {soundfont!r} is not installed", hint="run make setup")
    if SOUNDFONTS[soundfont][1] == "fluidsynth":
        stereo = _fluidsynth(song, path, sample_rate)
    else:
        stereo = _tinysoundfont(song, path, sample_rate)
    return np.ascontiguousarray(stereo.mean(axis=1), dtype=np.float32)


def _tinysoundfont(song: Song, soundfont: Path, sample_rate: int) -> np.ndarray:
    """Every part with notes summed, stereo float32, a chunk at a time in this process."""
    from ..music.render import render_length, synthesize_chunks

    synth = _loaded_synth(soundfont, sample_rate)
    frames = render_length(song, sample_rate)
    stereo = np.zeros((frames, 2), dtype=np.float32)
    for part in (p for p in song.parts if p.notes):
        at = 0
        for _, chunk in synthesize_chunks(synth, part, song, frames, sample_rate):
            stereo[at:at + len(chunk)] += chunk
            at += len(chunk)
    return stereo


@functools.lru_cache(maxsize=2)
def _loaded_synth(path: Path, sample_rate: int):
    """A TinySoundFont synth kept between excerpts: loading an .sf3 (decoding its
    Ogg samples) costs more CPU than rendering a 30 s excerpt."""
    from ..music.render import load_synth

    return load_synth(path, sample_rate)


def _fluidsynth(song: Song, soundfont: Path, sample_rate: int) -> np.ndarray:
    import soundfile

    from ..music.midi_io import write_midi

    with tempfile.TemporaryDirectory(prefix="cuesmith-fluid-") as tmp:
        midi, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        write_midi(song, midi)
        command = ["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(sample_rate), "-F", str(wav),
                   str(soundfont), str(midi)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not wav.is_file():
            raise CuesmithError(f"fluidsynth failed: {result.stderr.strip()[:200]}")
        samples, rate = soundfile.read(wav, dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise CuesmithError(f"fluidsynth wrote {rate} Hz, not {sample_rate}")
    end = int(np.ceil((song.tick_to_seconds(song.end_tick) + 0.5) * sample_rate))
    return samples[:end]


def _normalise(samples: np.ndarray, sample_rate: int) -> float:
    from ..music.render import integrated_loudness, normalising_gain_db, peak_dbfs

    loudness = integrated_loudness(samples, sample_rate)
    gain_db = normalising_gain_db(loudness, peak_dbfs(samples))
    samples *= np.float32(10 ** (gain_db / 20))
    return float(loudness + gain_db) if np.isfinite(loudness) else float("-inf")


def _write_flac(samples: np.ndarray, path: Path, sample_rate: int) -> None:
    import soundfile

    with atomic_path(path) as tmp:
        soundfile.write(tmp, samples, sample_rate, subtype="PCM_16", format="FLAC")


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# -- the corpus -----------------------------------------------------------------

@dataclass
class BuildReport:
    excerpts: list[Excerpt] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def audio_seconds(self) -> float:
        return sum(e.seconds for e in self.excerpts)

    @property
    def cpu_seconds(self) -> float:
        return sum(e.cpu_seconds for e in self.excerpts)

    def rate_per_cpu_hour(self) -> float:
        """Seconds of audio per CPU-hour, over the excerpts rendered (not read from the cache)."""
        return self.audio_seconds / self.cpu_seconds * 3600 if self.cpu_seconds else float("nan")


def build(variants: list[Variant], config: CorpusConfig = CorpusConfig(), root: Optional[Path] = None,
          progress: Optional[Progress] = None) -> BuildReport:
    started = time.perf_counter()
    result = BuildReport()
    for i, variant in enumerate(variants):
        result.excerpts.append(render_variant(variant, config, root))
        report(progress, "render corpus", (i + 1) / len(variants))
    result.wall_seconds = time.perf_counter() - started
    return result


def load_excerpts(split: str, root: Optional[Path] = None) -> list[Excerpt]:
    """Every excerpt of `split` in the cache, by id."""
    folder = corpus_dir(root) / split
    paths = sorted(p for p in folder.glob("*.json") if p.suffixes == [".json"]) if folder.is_dir() else []
    return [Excerpt.load(p) for p in paths]


def parse_song_range(text: str) -> list[int]:
    """'1-40,701-710' -> [1..40, 701..710]."""
    numbers = []
    for piece in text.split(","):
        low, _, high = piece.strip().partition("-")
        try:
            numbers.extend(range(int(low), int(high or low) + 1))
        except ValueError:
            raise CuesmithError(f"--songs {text!r}: expected numbers and ranges like 1-40,701-710") from None
    return numbers


def with_rate(config: CorpusConfig, sample_rate: int) -> CorpusConfig:
    return replace(config, sample_rate=sample_rate)
