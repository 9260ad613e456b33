import time

import pytest

from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.music import pop909
from cuesmith.engine.music.midi_io import read_midi
from cuesmith.engine.music.pop909 import (TRAIN_SONGS, VALID_SONGS, load_song, melody_and_accompaniment,
                                          parse_harte, parse_key)
from cuesmith.engine.music.score import TICKS_PER_BEAT, Key
from cuesmith.engine.music.tokens import STAGES, decode, encode, quantize, stage_notes


from pop909_marks import needs_data  # noqa: E402


@pytest.mark.parametrize("label, expected", [
    ("N", (None, "N")), ("B:maj", (11, "M")), ("Bb:min7/b7", (10, "m7")), ("C#:maj/3", (1, "M")),
    ("Gb:sus4(b7)", (6, "sus4")), ("Ab:hdim7", (8, "o")), ("E:dim7", (4, "o7")), ("F:aug", (5, "+")),
    ("D:maj6", (2, "M")), ("A:minmaj7", (9, "m")), ("Cb:7", (11, "7")), ("G:sus2", (7, "sus2")),
    ("E:maj7/7", (4, "M7")), ("F#", (6, "M")),
])
def test_parse_harte(label, expected):
    assert parse_harte(label) == expected


@pytest.mark.parametrize("label", ["H:maj", "C:weird", ":maj"])
def test_parse_harte_rejects_nonsense(label):
    with pytest.raises(CuesmithError):
        parse_harte(label)


def test_parse_key():
    assert parse_key("Gb:maj") == Key(6, "major")
    assert parse_key("C#:min") == Key(1, "minor")
    with pytest.raises(CuesmithError):
        parse_key("C:dorian")


def test_split_and_data_root_override(tmp_path, monkeypatch):
    assert TRAIN_SONGS[0] == 1 and TRAIN_SONGS[-1] == 700
    assert VALID_SONGS[0] == 701 and VALID_SONGS[-1] == 800 and not set(TRAIN_SONGS) & set(VALID_SONGS)
    monkeypatch.setenv("CUESMITH_POP909", str(tmp_path))
    assert pop909.data_root() == tmp_path
    with pytest.raises(CuesmithError, match="song 5"):
        load_song(5)
    monkeypatch.setenv("CUESMITH_POP909", str(tmp_path / "missing"))
    with pytest.raises(CuesmithError, match="CUESMITH_POP909"):
        pop909.data_root()


@needs_data
def test_load_song_puts_bar_lines_on_annotated_downbeats():
    loaded = load_song(1)
    song = loaded.song
    assert [p.name for p in song.parts] == ["melody", "bridge", "piano"]
    assert all(p.notes for p in song.parts)
    assert song.key == Key(6, "major")  # key_audio.txt: Gb:maj
    assert loaded.chord_labels[0][2] == "N" and len(loaded.key_labels) == 1
    assert loaded.beats[0] == (pytest.approx(0.0553332), True)
    assert min(n.start for p in song.parts for n in p.notes) >= 0
    raw = read_midi(pop909.song_dir(1) / "001.mid")
    bars = set(song.bars())
    downbeats = [round(raw.seconds_to_tick(s)) - loaded.tick_offset for s, down in loaded.beats if down]
    assert len(downbeats) > 50
    nearest_beats = [round(d / TICKS_PER_BEAT) * TICKS_PER_BEAT for d in downbeats]
    assert all(abs(d - b) <= 2 for d, b in zip(downbeats, nearest_beats))
    assert set(nearest_beats) <= bars
    # notes keep their timing relative to the beats: melody onsets sit on the 16th grid
    onsets = [n.start % 120 for n in song.part("melody").notes]
    assert sum(min(o, 120 - o) <= 10 for o in onsets) > 0.9 * len(onsets)
    # chords: our qualities, no neighbours that repeat the same chord
    assert all(a.end <= b.start for a, b in zip(song.chords, song.chords[1:]))
    assert all((a.root, a.quality) != (b.root, b.quality) or a.end != b.start
               for a, b in zip(song.chords, song.chords[1:]))
    assert {c.quality for c in song.chords} >= {"M", "N"}


@needs_data
def test_melody_and_accompaniment():
    song = load_song(2).song
    both = melody_and_accompaniment(song)
    assert [p.name for p in both.parts] == ["melody", "accompaniment"]
    assert both.part("melody").notes == song.part("melody").notes
    assert len(both.part("accompaniment").notes) == len(song.part("bridge").notes) + len(song.part("piano").notes)
    assert both.chords == song.chords and both.time_signatures == song.time_signatures


@needs_data
def test_token_round_trip_is_lossless_on_all_validation_songs():
    started = time.perf_counter()
    for number in VALID_SONGS:
        quantised = quantize(melody_and_accompaniment(load_song(number).song))
        for stage, spec in STAGES.items():
            back = decode(encode(quantised, stage), stage)
            where = f"song {number}, stage {stage}"
            assert back.time_signatures == quantised.time_signatures, where
            if spec.chords:
                assert back.chords == quantised.chords, where
            if spec.parts:
                assert back.parts[0].notes == stage_notes(quantised, stage), where
    assert time.perf_counter() - started < 100  # about 10 s on the 2-core dev machine
