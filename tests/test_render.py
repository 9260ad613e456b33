"""Stems: audible, the right length and format, loudness-normalised, never clipping or overwriting."""
from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.music import render
from cuesmith.engine.music.render import CEILING_DBFS, MIX, TARGET_LUFS, render_stems
from cuesmith.engine.music.score import Note, Part, Song, TempoChange


def short_song() -> Song:
    chords = Part("Piano", [Note(t, t + 900, p, 70) for t in range(0, 3840, 960)
                            for p in (48, 55, 60, 64)], program=0)
    lead = Part("Lead", [Note(t, t + 220, 72 + (t // 240) % 5, 100) for t in range(0, 3840, 240)],
                program=80)
    drums = Part("Kit", [Note(t, t + 60, 36 if t % 960 == 0 else 42, 120) for t in range(0, 3840, 240)],
                 channel=9, is_drum=True)
    return Song(parts=[chords, lead, drums, Part("Empty")],
                tempos=[TempoChange(0, 120.0), TempoChange(1920, 150.0)])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("stems")
    calls = []
    song = short_song()
    paths = render_stems(song, out, progress=lambda stage, f: calls.append((stage, f)))
    return song, paths, calls


def test_one_file_per_part_with_notes_plus_mix(rendered):
    _, paths, _ = rendered
    assert list(paths) == [MIX, "Piano", "Lead", "Kit"]
    assert [p.name for p in paths.values()] == ["mix.wav", "Piano.wav", "Lead.wav", "Kit.wav"]


def test_format_is_48k_stereo_24bit(rendered):
    _, paths, _ = rendered
    for path in paths.values():
        info = soundfile.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (48000, 2, "PCM_24", "WAV")


def test_length_is_the_song_length_within_a_beat(rendered):
    song, paths, _ = rendered
    beat = 60.0 / song.tempos[-1].bpm
    for path in paths.values():
        assert abs(soundfile.info(path).duration - song.duration_seconds) < beat


def test_stems_are_audible_and_sum_to_the_mix(rendered):
    _, paths, _ = rendered
    audio = {name: soundfile.read(path, dtype="float64")[0] for name, path in paths.items()}
    for name, samples in audio.items():
        assert np.sqrt(np.mean(samples ** 2)) > 1e-3, f"{name} is silent"
    stems_sum = sum(samples for name, samples in audio.items() if name != MIX)
    assert np.max(np.abs(stems_sum - audio[MIX])) < 4 * 2.0 ** -23  # 24-bit rounding only


def test_mix_is_at_target_loudness_and_never_clips(rendered):
    import pyloudnorm
    from scipy.signal import resample_poly

    _, paths, _ = rendered
    mix = soundfile.read(paths[MIX], dtype="float64")[0]
    loudness = pyloudnorm.Meter(48000).integrated_loudness(mix)
    peak_db = 20 * np.log10(np.max(np.abs(mix)))
    assert peak_db <= CEILING_DBFS + 0.01
    # normalised to the target unless the peak ceiling had to win
    assert loudness == pytest.approx(TARGET_LUFS, abs=0.5) or peak_db > CEILING_DBFS - 0.1
    true_peak = np.max(np.abs(resample_poly(mix, 4, 1, axis=0)))
    assert true_peak < 1.0
    for path in paths.values():
        assert np.max(np.abs(soundfile.read(path)[0])) <= 10 ** (CEILING_DBFS / 20) + 1e-4


def test_progress_reaches_the_end(rendered):
    _, _, calls = rendered
    assert calls and all(0.0 <= f <= 1.0 for _, f in calls)
    assert ("render stems", 1.0) in calls and calls[-1] == ("write stems", 1.0)


def test_existing_files_are_never_replaced(tmp_path):
    (tmp_path / "mix.wav").write_bytes(b"the user's mix")
    song = Song(parts=[Part("Lead", [Note(0, 960, 60)])])
    paths = render_stems(song, tmp_path)
    assert (tmp_path / "mix.wav").read_bytes() == b"the user's mix"
    assert paths[MIX] == tmp_path / "mix-2.wav"
    assert soundfile.info(paths[MIX]).samplerate == 48000


def test_odd_part_names_make_safe_unique_files(tmp_path):
    song = Song(parts=[Part("a/b: c", [Note(0, 480, 60)]), Part("a/b: c", [Note(0, 480, 64)]),
                       Part("mix", [Note(0, 480, 67)])])
    paths = render_stems(song, tmp_path)
    assert set(paths) == {MIX, "a/b: c", "a/b: c-2", "mix-2"}
    assert all(p.parent == tmp_path and p.exists() for p in paths.values())
    assert len({p.name for p in paths.values()}) == 4


def test_user_soundfont_is_used(tmp_path):
    bad = tmp_path / "broken.sf2"
    bad.write_bytes(b"RIFF not really")
    with pytest.raises(CuesmithError, match="not a usable SoundFont"):
        render_stems(short_song(), tmp_path / "out", soundfont=bad)
    with pytest.raises(CuesmithError, match="SoundFont not found"):
        render_stems(short_song(), tmp_path / "out", soundfont=tmp_path / "missing.sf2")
    assert not (tmp_path / "out").exists()


def test_the_soundfont_setting_reaches_the_render(tmp_path, monkeypatch):
    import json
    import shutil

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CUESMITH_SOUNDFONT", raising=False)
    config = tmp_path / "config" / "cuesmith" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"soundfont": str(tmp_path / "from-config.sf2")}))
    with pytest.raises(CuesmithError, match="from-config.sf2: SoundFont not found"):
        render_stems(short_song(), tmp_path / "out")
    import pretty_midi

    mine = shutil.copy(Path(pretty_midi.__file__).parent / "TimGM6mb.sf2", tmp_path / "mine.sf2")
    monkeypatch.setenv("CUESMITH_SOUNDFONT", str(mine))  # the environment wins over config.json
    assert render.default_soundfont() == Path(mine)
    assert render_stems(short_song(), tmp_path / "out")[MIX].exists()


def test_a_song_without_notes_is_an_error(tmp_path):
    with pytest.raises(CuesmithError, match="no notes"):
        render_stems(Song(parts=[Part("Empty")]), tmp_path)


def test_tick_seconds_matches_the_song_tempo_map():
    song = short_song()
    ticks = np.array([0, 100, 1920, 2500, 3840])
    assert render.tick_seconds(song, ticks) == pytest.approx([song.tick_to_seconds(t) for t in ticks])


def test_gentle_music_reaches_the_loudness_target_exactly(tmp_path):
    import pyloudnorm

    song = short_song()
    song.parts = song.parts[:1]  # sustained piano chords: the peak ceiling does not bind
    paths = render_stems(song, tmp_path)
    mix = soundfile.read(paths[MIX], dtype="float64")[0]
    assert pyloudnorm.Meter(48000).integrated_loudness(mix) == pytest.approx(TARGET_LUFS, abs=0.05)
    assert 20 * np.log10(np.max(np.abs(mix))) < CEILING_DBFS - 1


# -- speed-ups: the same output as the plain way --------------------------------------

def test_loudness_meter_matches_pyloudnorm():
    import pyloudnorm

    rng = np.random.default_rng(7)
    stereo = render.render_audio(short_song(), workers=1).mix
    fading = rng.standard_normal((44_100 * 5 + 123, 2)) * np.linspace(0.3, 1e-5, 44_100 * 5 + 123)[:, None]
    mono = rng.standard_normal(22_050 * 3) * 0.01
    for samples, rate in [(stereo, 48_000), (fading, 44_100), (mono, 22_050)]:
        expected = pyloudnorm.Meter(rate).integrated_loudness(np.asarray(samples, np.float64))
        assert render.integrated_loudness(samples, rate) == pytest.approx(expected, abs=0.01)
    assert render.integrated_loudness(np.zeros((48_000, 2)), 48_000) == -np.inf
    assert np.isfinite(render.integrated_loudness(rng.standard_normal((1000, 2)), 48_000))  # under one block


def test_work_is_split_by_pitch_into_equal_shares():
    song = short_song()
    parts = [p for p in song.parts if p.notes]
    shares = render.split_work(parts, song, 2)
    assert len(shares) == 2
    for i, part in enumerate(parts):
        pieces = [piece.part for share in shares for piece in share if piece.index == i]
        assert sorted(n for piece in pieces for n in piece.notes) == sorted(part.notes)
        pitch_sets = [{n.pitch for n in piece.notes} for piece in pieces]
        assert all(a.isdisjoint(b) for a, b in zip(pitch_sets, pitch_sets[1:]))  # a key never in two processes
    drums = [piece for share in shares for piece in share if piece.part.is_drum]
    assert len(drums) == 1  # a kit is never cut: its exclusive classes cut each other off
    costs = [sum(render._synthesis_cost(song, piece.part.notes) for piece in share) for share in shares]
    assert max(costs) < 1.5 * min(costs)
    assert [len(s) for s in render.split_work(parts, song, 1)] == [3]


def test_parallel_render_is_the_serial_one():
    song = short_song()
    serial, parallel = render.render_audio(song, workers=1), render.render_audio(song, workers=3)
    assert list(parallel.stems) == list(serial.stems)
    assert parallel.gain_db == pytest.approx(serial.gain_db, abs=1e-5)
    for name, samples in serial.stems.items():
        other = parallel.stems[name]
        assert other.shape == samples.shape and other.dtype == np.float32
        # the same up to float rounding: events on TinySoundFont's 64-sample grid
        difference = np.sqrt(np.mean((other - samples) ** 2)) / np.sqrt(np.mean(samples ** 2))
        assert difference < 10 ** (-120 / 20), name


def test_a_stem_holds_nothing_of_the_part_rendered_before_it():
    song = Song(parts=[Part("Held", [Note(0, 1920, 60, 100)]), Part("Late", [Note(960, 1920, 72, 100)])])
    late = render.render_audio(song, workers=1).stems["Late"]
    assert not late[:int(0.9 * 48_000)].any()  # its note starts at 1.0 s
    assert late[48_000:].any()


def test_a_failed_worker_process_has_its_share_redone_here():
    parent = os.getpid()
    out = np.frombuffer(mmap.mmap(-1, 32), dtype=np.float32).reshape(4, 2)  # what a child writes, we see

    def fails_in_the_child():
        if os.getpid() != parent:
            raise RuntimeError("worker died")
        out[0] = 1.0

    def works_anywhere():
        out[1] = 2.0

    render._run_forked([lambda: None, works_anywhere, fails_in_the_child])
    assert out[:2, 0].tolist() == [1.0, 2.0]
    with pytest.raises(ZeroDivisionError):
        render._run_forked([lambda: None, lambda: 1 / 0])


def test_wav_is_rounded_to_24_bits_and_clipped(tmp_path):
    lsb = 2.0 ** -23
    samples = np.array([[0.5, -0.5], [0.4 * lsb, 0.6 * lsb], [1.5, -1.5], [0.25, -1.6 * lsb], [-lsb, 0.1]],
                       dtype=np.float32)  # 10 samples: packed four at a time, and a tail of two
    path = render.write_wav(samples, tmp_path / "x.wav", gain=0.5)
    assert soundfile.info(path).subtype == "PCM_24" and soundfile.info(path).frames == 5
    pcm = soundfile.read(path, dtype="int32")[0] >> 8
    assert pcm.tolist() == [[2 ** 21, -(2 ** 21)], [0, 0], [3 * 2 ** 21, -3 * 2 ** 21], [2 ** 20, -1],
                            [0, round(0.05 * 2 ** 23)]]
    loud = render.write_wav(samples, tmp_path / "y.wav", gain=2.0)
    assert (soundfile.read(loud, dtype="int32")[0] >> 8)[2].tolist() == [2 ** 23 - 1, -(2 ** 23)]


def test_wav_bytes_are_what_libsndfile_writes(tmp_path):
    samples = np.random.default_rng(3).uniform(-1, 1, (12_345, 2)).astype(np.float32)
    ours = render.write_wav(samples, tmp_path / "ours.wav", gain=0.7)
    soundfile.write(tmp_path / "libsndfile.wav", render._pcm24(samples, 0.7) << 8, 48_000, subtype="PCM_24")
    assert ours.read_bytes() == (tmp_path / "libsndfile.wav").read_bytes()


def test_colliding_file_names_are_all_chosen_before_writing(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"the user's")
    song = Song(parts=[Part("x", [Note(0, 480, 60)]), Part("x", [Note(0, 480, 64)]), Part("x?", [Note(0, 480, 67)])])
    paths = render_stems(song, tmp_path)
    assert [p.name for p in paths.values()] == ["mix.wav", "x-2.wav", "x-2-2.wav", "x_.wav"]
    assert (tmp_path / "x.wav").read_bytes() == b"the user's"
