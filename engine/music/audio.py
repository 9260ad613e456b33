"""Music from audio: onsets, beats, tempo, key, loudness, brightness and novelty.

`load_audio` decodes any file PyAV opens (WAV, FLAC, MP3, AAC/M4A, Ogg/Opus,
the audio track of a video) into stereo at its own rate (for loudness) and
mono at `ANALYSIS_RATE` (for everything else). `analyze_audio` measures:

- onsets: librosa's spectral-flux onset envelope (hop `HOP` = 11.6 ms) and
  its peaks, each with a salience (its strength over the strongest onset
  within ±`SALIENCE_WINDOW_S`);
- beats and tempo: `track_beats` (below);
- key: the mean CQT chroma correlated with the Krumhansl–Kessler profiles;
- loudness: integrated loudness in LUFS (ITU-R BS.1770 via pyloudnorm), and a
  short-term loudness curve (RMS in dB over 0.4 s) for dynamics;
- brightness: the mean spectral centroid in Hz;
- novelty: Foote's checkerboard novelty over a self-similarity matrix of
  chroma + MFCC frames; its peaks are candidate section changes.

Beat tracking (`track_beats`), tuned on renders of POP909 001-700 only
(benchmarks/bench_beats.py):
- tempo: `estimate_tempo` scores a grid of tempi by the autocorrelation of the
  onset envelope and of a bass-band onset envelope at 1/4 to 8 times the beat
  period, plus a prior over log tempo; the weights (beat_tempo.json) are a
  softmax fit for the annotated tempo on 210 training songs (right within ±4%
  on 88.6% of held-out songs in 4-fold cross-validation, 85.7% from the onset
  envelope alone);
- beats: librosa's dynamic-programming tracker on the onset envelope plus the
  bass envelope (bass notes sit on beats when louder chords sit off them), with
  a high `TIGHTNESS` because pop songs keep their tempo, cropped to where the
  music sounds, and moved `BEAT_DELAY_S` earlier.
On the validation songs 701-800 (bench_beats.py, scored once after tuning):
F-measure 0.879, AMLt 0.937; librosa's default beat_track 0.689, 0.876.
Known limit: the prior is POP909's (mostly ballads, median 73 BPM): music over
~100 BPM whose beats are not subdivided can read at half tempo (a rendered
pulse at 120/140 BPM reads 60/70).
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import CuesmithError
from ..files import regular_file

ANALYSIS_RATE = 22_050
HOP = 256  # 11.6 ms at ANALYSIS_RATE
SALIENCE_WINDOW_S = 2.0
ONSET_MIN_GAIN = 0.3  # see energy_gain
# The onset envelope peaks about a hop after a note starts (mean +16 ms over 15 locked cuts in
# the critique benchmark's renders): onset times are moved one hop earlier.
ONSET_DELAY_S = HOP / ANALYSIS_RATE
SILENCE_DBFS = -60.0  # a file whose RMS stays under this is silent
NOVELTY_FRAME_HOP = 2048  # ~93 ms frames for the self-similarity matrix
NOVELTY_KERNEL_S = 2.0  # half-width of the checkerboard kernel

# Beat tracking, tuned on renders of POP909 001-700 only (benchmarks/bench_beats.py)
TEMPO_MODEL_PATH = Path(__file__).with_name("beat_tempo.json")  # fitted by `bench_beats.py fit`
TEMPO_GRID_BPM = 40.0 * 2 ** (np.arange(0, 2.4, 1 / 240))  # 40 to 211 BPM in 0.3% steps
BASS_MAX_HZ = 250.0
BASS_WEIGHT = 1.0  # of the bass envelope next to the full onset envelope in the beat DP
TIGHTNESS = 1600.0  # librosa's default is 100; rendered pop keeps its tempo
TRIM_LEVEL = 0.5  # beats before the first / after the last onset this strong (over the RMS) are dropped
BEAT_DELAY_S = 0.027  # median lag of the DP's beats behind the annotated ones on 24 training renders


@dataclass
class Audio:
    path: str
    mono: np.ndarray  # float32 at ANALYSIS_RATE
    stereo: np.ndarray  # float32 (frames, channels) at `native_rate`
    native_rate: int
    title: str = ""
    tags: dict = field(default_factory=dict)  # container/stream metadata (title, artist, genre, ...)

    @property
    def duration(self) -> float:
        return len(self.mono) / ANALYSIS_RATE


@dataclass
class Beats:
    beats: np.ndarray  # seconds
    tempo: float  # BPM, from the median beat interval
    downbeats: np.ndarray  # seconds, a subset of beats; filled by analyze_audio (`downbeat_phase`)


@dataclass
class AudioAnalysis:
    path: str
    duration: float
    sample_rate: int
    silent: bool
    onsets: list[float]
    onset_salience: list[float]  # 0..1 per onset
    beats: list[float]
    downbeats: list[float]
    tempo: Optional[float]
    tempo_spread: float  # interquartile range of the beat intervals over their median
    key: Optional[str]  # "A minor"
    key_tonic: Optional[int]
    mode: Optional[str]
    key_strength: float  # correlation of the chroma with the best key profile
    loudness_lufs: Optional[float]
    loudness_times: list[float]
    loudness_db: list[float]  # short-term RMS level in dBFS
    brightness_hz: float
    novelty_times: list[float]
    novelty: list[float]
    novelty_peaks: list[float]
    title: str = ""
    tags: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        minutes, seconds = divmod(self.duration, 60)
        if self.silent:
            return f"{Path(self.path).name}: {int(minutes)}:{seconds:04.1f}, silent"
        tempo = f"{self.tempo:.1f} BPM" + (" (varies)" if self.tempo_spread > 0.15 else "") if self.tempo else "no beat found"
        loud = f"{self.loudness_lufs:.1f} LUFS" if self.loudness_lufs is not None else "n/a"
        return "\n".join([
            f"{Path(self.path).name}: {int(minutes)}:{seconds:04.1f}, {self.sample_rate} Hz",
            f"tempo: {tempo}; beats: {len(self.beats)} ({len(self.downbeats)} downbeats)",
            f"key: {self.key or 'unclear'} (from chroma, strength {self.key_strength:.2f})",
            f"onsets: {len(self.onsets)}; loudness: {loud} integrated (BS.1770); "
            f"brightness: {self.brightness_hz:.0f} Hz spectral centroid",
            "novelty peaks (s): " + (", ".join(f"{t:.1f}" for t in self.novelty_peaks) or "none"),
        ])


# -- loading -------------------------------------------------------------------

def load_audio(path: str | Path) -> Audio:
    """Decode the first audio stream of `path` (CuesmithError if there is none or it cannot be read)."""
    import av

    path = regular_file(path, "audio file")
    try:
        container = av.open(str(path))
    except Exception as error:  # PyAV raises many types for unreadable files
        raise CuesmithError(f"cannot read as audio ({type(error).__name__})", path) from None
    try:
        stereo, rate, tags = _decode(container, path)
    finally:
        container.close()
    if len(stereo) == 0:
        raise CuesmithError("contains no audio samples", path)
    mono = _resample(stereo.mean(axis=1), rate, ANALYSIS_RATE)
    return Audio(str(path), mono, stereo, rate, tags.get("title", ""), tags)


def _decode(container, path: Path) -> tuple[np.ndarray, int, dict]:
    import av

    streams = container.streams.audio
    if not streams:
        raise CuesmithError("has no audio stream", path)
    stream = streams[0]
    rate = stream.codec_context.sample_rate or 48_000
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
    chunks = []
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    except av.error.FFmpegError as error:
        if not chunks:
            raise CuesmithError(f"cannot decode audio ({error})", path) from None
    tags = {k.lower(): str(v) for k, v in {**container.metadata, **stream.metadata}.items()}
    stereo = np.concatenate(chunks, axis=1).T.astype(np.float32) if chunks else np.zeros((0, 2), np.float32)
    return stereo, rate, tags


def _resample(mono: np.ndarray, rate: int, target: int) -> np.ndarray:
    import librosa

    if rate == target:
        return mono.astype(np.float32)
    return librosa.resample(mono.astype(np.float32), orig_sr=rate, target_sr=target, res_type="soxr_hq")


def audio_from_samples(mono: np.ndarray, rate: int, path: str = "") -> Audio:
    """An Audio from samples in memory (a render, a test tone)."""
    mono = np.asarray(mono, dtype=np.float32)
    return Audio(path, _resample(mono, rate, ANALYSIS_RATE), np.stack([mono, mono], axis=1), rate)


# -- measurements ------------------------------------------------------------

def onset_envelope(mono: np.ndarray) -> np.ndarray:
    import librosa

    return librosa.onset.onset_strength(y=mono, sr=ANALYSIS_RATE, hop_length=HOP)


def frame_times(n: int, hop: int = HOP) -> np.ndarray:
    import librosa

    return librosa.frames_to_time(np.arange(n), sr=ANALYSIS_RATE, hop_length=hop)


def energy_gain(mono: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """New energy at each onset frame: Σ max(0, P_after − P_before) / Σ P_after over the spectrum
    (35 ms before, 12 ms after). A note adds most of what sounds after it (0.45–1.0 on piano
    renders); codec noise over a steady tone adds little (< 0.2), though its log-mel flux peaks."""
    import librosa

    power = np.abs(librosa.stft(mono, n_fft=1024, hop_length=HOP)) ** 2
    last = power.shape[1] - 1
    before, after = power[:, np.clip(frames - 3, 0, last)], power[:, np.clip(frames + 1, 0, last)]
    return np.maximum(after - before, 0).sum(axis=0) / np.maximum(after.sum(axis=0), 1e-12)


def detect_onsets(envelope: np.ndarray, mono: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """Onset times and their salience (strength over the strongest within ±SALIENCE_WINDOW_S).
    With `mono`, peaks that add less than ONSET_MIN_GAIN of new energy are dropped."""
    import librosa

    frames = librosa.onset.onset_detect(onset_envelope=envelope, sr=ANALYSIS_RATE, hop_length=HOP)
    if mono is not None and len(frames):
        frames = frames[energy_gain(mono, frames) >= ONSET_MIN_GAIN]
    if len(frames) == 0:
        return np.zeros(0), np.zeros(0)
    times = np.maximum(frame_times(len(envelope))[frames] - ONSET_DELAY_S, 0.0)
    strength = envelope[frames]
    salience = np.array([s / max(strength[np.abs(times - t) <= SALIENCE_WINDOW_S].max(), 1e-9)
                         for t, s in zip(times, strength)])
    return times, salience


def bass_envelope(mono: np.ndarray) -> np.ndarray:
    """Onset strength of the log-mel bands under `BASS_MAX_HZ`: bass notes and kicks fall on beats
    more often than the off-beat chords and arpeggios above them."""
    import librosa

    mel = librosa.feature.melspectrogram(y=mono, sr=ANALYSIS_RATE, hop_length=HOP, n_mels=128, fmax=ANALYSIS_RATE / 2)
    low = librosa.mel_frequencies(n_mels=128, fmax=ANALYSIS_RATE / 2) < BASS_MAX_HZ
    return librosa.onset.onset_strength(S=librosa.power_to_db(mel, ref=np.max)[low], sr=ANALYSIS_RATE)


def beat_envelopes(mono: np.ndarray, onset: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """The envelopes the tempo model reads, trimmed to one length."""
    envelopes = {"onset": onset_envelope(mono) if onset is None else onset, "bass": bass_envelope(mono)}
    n = min(len(e) for e in envelopes.values())
    return {name: e[:n] for name, e in envelopes.items()}


@dataclass(frozen=True)
class TempoModel:
    """A log-linear score over `TEMPO_GRID_BPM`: weighted autocorrelations of each envelope at
    `harmonics` times the beat period, plus a prior made of Gaussian bumps over log2(BPM)."""
    envelopes: tuple[str, ...]
    harmonics: tuple[float, ...]
    prior_centres_bpm: tuple[float, ...]
    prior_width_octaves: float
    weights: tuple[float, ...] = ()
    fitted_on: str = ""


@functools.lru_cache(maxsize=1)
def tempo_model() -> TempoModel:
    import json

    data = json.loads(TEMPO_MODEL_PATH.read_text())
    return TempoModel(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def periodicity(envelope: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelation of the mean-removed envelope, 1 at lag 0."""
    import librosa

    ac = librosa.autocorrelate(envelope - envelope.mean(), max_size=max_lag + 2)
    return ac / ac[0] if ac[0] > 0 else ac


def tempo_features(envelopes: dict[str, np.ndarray], model: TempoModel) -> np.ndarray:
    """(len(TEMPO_GRID_BPM), features): autocorrelation at each harmonic of each candidate beat
    period per envelope, then the prior bumps."""
    lags = ANALYSIS_RATE / HOP * 60.0 / TEMPO_GRID_BPM
    max_lag = int(max(model.harmonics) * lags.max()) + 1
    columns = []
    for name in model.envelopes:
        ac = periodicity(envelopes[name], max_lag)
        columns += [np.interp(lags * h, np.arange(len(ac)), ac, right=0.0) for h in model.harmonics]
    log_bpm = np.log2(TEMPO_GRID_BPM)[:, None]
    bumps = np.exp(-0.5 * ((log_bpm - np.log2(model.prior_centres_bpm)) / model.prior_width_octaves) ** 2)
    return np.column_stack(columns + list(bumps.T))


def estimate_tempo(envelopes: dict[str, np.ndarray], model: Optional[TempoModel] = None) -> float:
    """Global tempo: the grid BPM that `tempo_model()` scores highest."""
    model = model or tempo_model()
    return float(TEMPO_GRID_BPM[int(np.argmax(tempo_features(envelopes, model) @ np.array(model.weights)))])


def track_beats(audio: Audio, envelope: Optional[np.ndarray] = None) -> Beats:
    """Tempo from `estimate_tempo`, then librosa's dynamic-programming tracker on the onset
    envelope plus the bass envelope (both over their standard deviation), moved `BEAT_DELAY_S` earlier."""
    import librosa

    envelopes = beat_envelopes(audio.mono, envelope)
    onset = envelopes["onset"]
    if not np.any(onset > 0):
        return Beats(np.zeros(0), 0.0, np.zeros(0))
    bpm = estimate_tempo(envelopes)
    combined = onset / onset.std() + BASS_WEIGHT * envelopes["bass"] / max(envelopes["bass"].std(), 1e-9)
    _, frames = librosa.beat.beat_track(onset_envelope=combined, sr=ANALYSIS_RATE, hop_length=HOP,
                                        bpm=bpm, tightness=TIGHTNESS, trim=False)
    frames = _within_music(frames, onset, ANALYSIS_RATE / HOP * 60.0 / bpm)
    times = np.maximum(frame_times(len(onset))[frames] - BEAT_DELAY_S, 0.0)
    tempo = float(60.0 / np.median(np.diff(times))) if len(times) > 1 else bpm
    return Beats(times, tempo, np.zeros(0))


def _within_music(frames: np.ndarray, onset: np.ndarray, beat_frames: float) -> np.ndarray:
    """Beats from half a beat before the first to half a beat after the last frame whose onset
    strength reaches `TRIM_LEVEL` of the envelope's RMS (the DP runs on through silence at the ends)."""
    active = np.flatnonzero(onset >= TRIM_LEVEL * np.sqrt(np.mean(onset ** 2)))
    if len(active) == 0:
        return frames[:0]
    return frames[(frames >= active[0] - beat_frames / 2) & (frames <= active[-1] + beat_frames / 2)]


def downbeat_phase(mono: np.ndarray, beats: np.ndarray, per_bar: int = 4) -> np.ndarray:
    """Every `per_bar`-th beat, at the phase where the chroma changes most (chords change on downbeats)."""
    import librosa

    if len(beats) < 2 * per_bar:
        return beats[:1]
    chroma = librosa.feature.chroma_stft(y=mono, sr=ANALYSIS_RATE, hop_length=HOP * 2)
    frames = librosa.time_to_frames(beats, sr=ANALYSIS_RATE, hop_length=HOP * 2)
    synced = librosa.util.sync(chroma, np.clip(frames, 0, chroma.shape[1] - 1), aggregate=np.mean)
    change = np.r_[0.0, np.linalg.norm(np.diff(synced, axis=1), axis=0)][:len(beats)]
    phase = int(np.argmax([change[p::per_bar].mean() for p in range(per_bar)]))
    return beats[phase::per_bar]


def detect_key(mono: np.ndarray) -> tuple[Optional[int], Optional[str], float]:
    import librosa

    from .key import KK_MAJOR, KK_MINOR, MODES, key_scores

    chroma = librosa.feature.chroma_cqt(y=mono, sr=ANALYSIS_RATE, hop_length=HOP * 8)
    profile = chroma.mean(axis=1)
    if not np.any(profile > 0) or np.ptp(profile) < 1e-6:
        return None, None, 0.0
    scores = key_scores(profile, KK_MAJOR, KK_MINOR)
    mode, tonic = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return int(tonic), MODES[mode], float(scores.max())


def integrated_loudness(stereo: np.ndarray, rate: int) -> Optional[float]:
    from .render import integrated_loudness as bs1770

    value = bs1770(stereo, rate)
    return None if not np.isfinite(value) else round(value, 2)


def loudness_curve(mono: np.ndarray, window_s: float = 0.4, step_s: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    frame, hop = int(window_s * ANALYSIS_RATE), int(step_s * ANALYSIS_RATE)
    rms = librosa.feature.rms(y=mono, frame_length=frame, hop_length=hop, center=True)[0]
    return frame_times(len(rms), hop), 20 * np.log10(np.maximum(rms, 1e-6))


def brightness(mono: np.ndarray) -> float:
    import librosa

    centroid = librosa.feature.spectral_centroid(y=mono, sr=ANALYSIS_RATE, hop_length=HOP * 4)[0]
    rms = librosa.feature.rms(y=mono, hop_length=HOP * 4)[0][:len(centroid)]
    weights = rms / rms.sum() if rms.sum() > 0 else None
    return float(np.average(centroid, weights=weights)) if len(centroid) else 0.0


def novelty(mono: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Foote novelty (times, curve 0..1, peak times) from chroma + MFCC self-similarity."""
    import librosa
    import scipy.signal

    hop = NOVELTY_FRAME_HOP
    chroma = librosa.feature.chroma_stft(y=mono, sr=ANALYSIS_RATE, hop_length=hop)
    mfcc = librosa.feature.mfcc(y=mono, sr=ANALYSIS_RATE, hop_length=hop, n_mfcc=13)[1:]
    features = np.vstack([librosa.util.normalize(chroma, axis=0),
                          librosa.util.normalize(mfcc, axis=0)])
    n = features.shape[1]
    half = max(2, int(round(NOVELTY_KERNEL_S * ANALYSIS_RATE / hop)))
    if n < 2 * half + 1:
        return frame_times(n, hop), np.zeros(n), np.zeros(0)
    unit = features / np.maximum(np.linalg.norm(features, axis=0, keepdims=True), 1e-9)
    similarity = unit.T @ unit
    sign = np.sign(np.arange(-half, half) + 0.5)
    gauss = np.exp(-0.5 * (np.arange(-half, half) / (0.5 * half)) ** 2)
    kernel = np.outer(sign * gauss, sign * gauss)
    padded = np.pad(similarity, half, mode="constant")
    curve = np.array([np.sum(kernel * padded[i:i + 2 * half, i:i + 2 * half]) for i in range(n)])
    curve = np.maximum(curve, 0)
    curve = curve / curve.max() if curve.max() > 0 else curve
    peaks, _ = scipy.signal.find_peaks(curve, height=0.3, distance=half)
    times = frame_times(n, hop)
    return times, curve, times[peaks]


def analyze_audio(audio: Audio) -> AudioAnalysis:
    rms_db = 20 * np.log10(max(float(np.sqrt(np.mean(audio.mono ** 2))) if len(audio.mono) else 0.0, 1e-9))
    silent = bool(rms_db < SILENCE_DBFS)
    envelope = onset_envelope(audio.mono)
    onsets, salience = (np.zeros(0), np.zeros(0)) if silent else detect_onsets(envelope, audio.mono)
    beats = Beats(np.zeros(0), 0.0, np.zeros(0)) if silent or len(onsets) < 4 else track_beats(audio, envelope)
    if len(beats.beats):
        beats.downbeats = downbeat_phase(audio.mono, beats.beats)
    intervals = np.diff(beats.beats)
    spread = float(np.subtract(*np.percentile(intervals, [75, 25])) / np.median(intervals)) if len(intervals) > 3 else 0.0
    tonic, mode, strength = (None, None, 0.0) if silent else detect_key(audio.mono)
    l_times, l_db = loudness_curve(audio.mono)
    n_times, n_curve, n_peaks = novelty(audio.mono) if not silent else (np.zeros(0), np.zeros(0), np.zeros(0))
    from .score import PITCH_CLASSES

    return AudioAnalysis(
        path=audio.path, duration=round(audio.duration, 4), sample_rate=audio.native_rate, silent=silent,
        onsets=_r(onsets), onset_salience=_r(salience, 3), beats=_r(beats.beats), downbeats=_r(beats.downbeats),
        tempo=round(beats.tempo, 2) if len(beats.beats) > 1 else None, tempo_spread=round(spread, 4),
        key=f"{PITCH_CLASSES[tonic]} {mode}" if tonic is not None else None, key_tonic=tonic, mode=mode,
        key_strength=round(strength, 3),
        loudness_lufs=None if silent else integrated_loudness(audio.stereo, audio.native_rate),
        loudness_times=_r(l_times, 3), loudness_db=_r(l_db, 2), brightness_hz=round(brightness(audio.mono), 1),
        novelty_times=_r(n_times, 3), novelty=_r(n_curve, 3), novelty_peaks=_r(n_peaks, 3),
        title=audio.title, tags=audio.tags)


def _r(values, digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in values]


def analyze_audio_file(path: str | Path) -> AudioAnalysis:
    return analyze_audio(load_audio(path))
