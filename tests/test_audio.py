"""Audio analysis (music.audio) on renders whose tempo, key and loudness are known."""
import fractions

import av
import numpy as np
import pytest
import soundfile

from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.music.audio import (TEMPO_GRID_BPM, analyze_audio, analyze_audio_file, audio_from_samples,
                                         beat_envelopes, load_audio, tempo_features, tempo_model, track_beats)
from cuesmith.engine.music.render import integrated_loudness, render_audio
from cuesmith.engine.music.score import Note, Part, Song, TempoChange

RATE = 22_050
# music.audio's tempo model is fitted on POP909 (mostly ballads): a bare beat pulse over ~100 BPM
# can read at half tempo (see the module doc); the tests stay in the range it reads right
PULSE_BPM = 96.0
FORMATS = {".mp3": "libmp3lame", ".m4a": "aac", ".opus": "libopus", ".flac": "flac"}


def pulse_song(bpm: float, bars: int = 8, minor: bool = False) -> Song:
    """I–IV–V–I in C (or A minor), a triad on every beat, downbeats louder."""
    roots = (57, 62, 64, 57) if minor else (48, 53, 55, 48)
    third = 3 if minor else 4
    notes = []
    for beat in range(bars * 4):
        tick, root = beat * 480, roots[(beat // 4) % 4]
        velocity = 110 if beat % 4 == 0 else 75
        notes += [Note(tick, tick + 420, root + i, velocity) for i in (0, third, 7, 12)]
        notes.append(Note(tick, tick + 200, root + 24 + (beat % 3) * 2, velocity - 10))
    return Song(parts=[Part("keys", notes)], tempos=[TempoChange(0, bpm)])


def offbeat_song(bpm: float, bars: int = 12) -> Song:
    """A soft bass note on every beat, a loud chord on every off-beat (the "and")."""
    bass, keys = [], []
    for beat in range(bars * 4):
        tick, root = beat * 480, (36, 41, 43, 36)[(beat // 4) % 4]
        bass.append(Note(tick, tick + 400, root, 70))
        keys += [Note(tick + 240, tick + 400, root + 24 + i, 120) for i in (0, 4, 7)]
    return Song(parts=[Part("bass", bass, program=33), Part("keys", keys)], tempos=[TempoChange(0, bpm)])


@pytest.fixture(scope="module")
def pulse_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "pulse.wav"
    audio = render_audio(pulse_song(PULSE_BPM), sample_rate=RATE)
    soundfile.write(path, audio.mix, RATE)
    return path


def encode(samples: np.ndarray, path, codec: str, rate: int = 48_000) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        frame_size = stream.codec_context.frame_size or 1024
        stereo = np.ascontiguousarray(np.stack([samples, samples]).astype(np.float32))
        for start in range(0, stereo.shape[1], frame_size):
            chunk = np.ascontiguousarray(stereo[:, start:start + frame_size])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = rate, start
            frame.time_base = fractions.Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_tempo_beats_and_key_of_a_render(pulse_wav):
    a = analyze_audio_file(pulse_wav)
    assert a.tempo == pytest.approx(PULSE_BPM, rel=0.02)
    expected = np.arange(32) * 60 / PULSE_BPM
    hits = [np.min(np.abs(expected - b)) < 0.05 for b in a.beats]
    assert np.mean(hits) > 0.9 and len(a.beats) >= 28
    assert a.key == "C major" and a.mode == "major"
    onsets = np.array(a.onsets)
    assert all(np.min(np.abs(onsets - t)) < 0.02 for t in expected[1:-1])  # within 20 ms of each beat
    assert not a.silent and a.brightness_hz > 200


def test_beats_follow_the_bass_under_louder_offbeat_chords():
    """The beat DP reads the bass envelope too: beats on the bass notes, all through the song, and
    none in the silence after it (librosa's own trim dropped the first and last few here)."""
    import mir_eval

    bpm = 84.0
    mix = render_audio(offbeat_song(bpm), sample_rate=RATE).mix.mean(axis=1)
    mono = np.r_[mix, np.zeros(4 * RATE, np.float32)]
    beats = track_beats(audio_from_samples(mono, RATE))
    expected = np.arange(48) * 60 / bpm
    assert beats.tempo == pytest.approx(bpm, rel=0.02)
    assert mir_eval.beat.f_measure(expected, beats.beats) > 0.97  # ±70 ms of the bass notes
    assert beats.beats[-1] < expected[-1] + 60 / bpm  # at most the beat after the last off-beat chord


def test_tempo_model_fits_its_features():
    model = tempo_model()
    noise = np.random.default_rng(0).standard_normal(RATE * 5).astype(np.float32)
    envelopes = beat_envelopes(noise)
    assert "001-700" in model.fitted_on and set(model.envelopes) <= set(envelopes)
    assert tempo_features(envelopes, model).shape == (len(TEMPO_GRID_BPM), len(model.weights))


def test_minor_render_reads_minor():
    audio = render_audio(pulse_song(96.0, minor=True), sample_rate=RATE)
    a = analyze_audio(audio_from_samples(audio.mix.mean(axis=1), RATE))
    assert a.mode == "minor" and a.key == "A minor"


def test_loudness_is_bs1770_and_follows_gain(pulse_wav, tmp_path):
    samples, rate = soundfile.read(pulse_wav, dtype="float32")
    a = analyze_audio_file(pulse_wav)
    assert a.loudness_lufs == pytest.approx(integrated_loudness(samples, rate), abs=0.05)
    quieter = tmp_path / "quieter.wav"
    soundfile.write(quieter, samples * 10 ** (-6 / 20), rate)
    assert analyze_audio_file(quieter).loudness_lufs == pytest.approx(a.loudness_lufs - 6.0, abs=0.1)


@pytest.mark.parametrize("suffix", FORMATS)
def test_common_formats_decode_alike(pulse_wav, tmp_path, suffix):
    samples, rate = soundfile.read(pulse_wav, dtype="float32")
    path = tmp_path / f"pulse{suffix}"
    resampled = np.interp(np.arange(0, len(samples), rate / 48_000), np.arange(len(samples)), samples.mean(axis=1))
    encode(resampled, path, FORMATS[suffix])
    a = analyze_audio_file(path)
    assert a.tempo == pytest.approx(PULSE_BPM, rel=0.03)
    assert abs(a.duration - len(samples) / rate) < 0.1


def test_novelty_peaks_at_a_change_of_sound(tmp_path):
    """Eight bars of keys then eight of a bright lead an octave up: a novelty peak at the change."""
    first = pulse_song(100.0)
    second = pulse_song(100.0)
    offset = 32 * 480
    second.parts[0].notes = [Note(n.start + offset, n.end + offset, n.pitch + 19, n.velocity) for n in second.parts[0].notes]
    second.parts[0].program = 80  # square lead
    song = Song(parts=[first.parts[0], second.parts[0]], tempos=[TempoChange(0, 100.0)])
    audio = render_audio(song, sample_rate=RATE)
    a = analyze_audio(audio_from_samples(audio.mix.mean(axis=1), RATE))
    change = offset / 480 * 0.6
    assert any(abs(p - change) < 0.5 for p in a.novelty_peaks), a.novelty_peaks


def test_silence_and_bad_files(tmp_path):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(RATE * 3, dtype=np.float32), RATE)
    a = analyze_audio_file(silent)
    assert a.silent and a.beats == [] and a.tempo is None and a.loudness_lufs is None
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    with pytest.raises(CuesmithError, match="notes.txt"):
        load_audio(text)
    with pytest.raises(CuesmithError, match="folder"):
        load_audio(tmp_path)
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), RATE)
    with pytest.raises(CuesmithError):
        load_audio(empty)
