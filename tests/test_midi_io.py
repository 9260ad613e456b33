"""MIDI files: what we write loads the same in mido, pretty_midi, music21 and MuseScore."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import mido
import pytest

from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.music.midi_io import read_midi, write_midi
from cuesmith.engine.music.score import (Chord, Key, Marker, Note, Part, Song, TempoChange,
                                         TimeSignature)

POP909_001 = Path("/work/shared/data/pop909/001/001.mid")


def example_song() -> Song:
    melody = Part("Melody", [Note(0, 480, 72, 90), Note(480, 960, 74), Note(960, 1920, 76, 100),
                             Note(2400, 2880, 76), Note(2880, 3360, 76)], program=73)
    bass = Part("Bass", [Note(0, 1440, 36), Note(1440, 2880, 43), Note(2880, 4320, 41)],
                program=33, channel=0)  # same channel as the melody: write_midi must move it
    drums = Part("Drums", [Note(t, t + 120, 36 if t % 960 == 0 else 38, 110)
                           for t in range(0, 4320, 480)], channel=9, is_drum=True)
    return Song(parts=[melody, bass, drums],
                chords=[Chord(0, 1440, 0, "M"), Chord(1440, 2880, 7, "7"), Chord(2880, 4320, 9, "m7")],
                tempos=[TempoChange(0, 100.0), TempoChange(1440, 140.0)],
                time_signatures=[TimeSignature(0, 3, 4), TimeSignature(1440, 4, 4)],
                markers=[Marker(0, "cut 1"), Marker(1440, "cut 2 – Übergang")],
                key=Key(9, "minor"), title="Example")


@pytest.fixture
def written(tmp_path) -> tuple[Song, Path]:
    song = example_song()
    return song, write_midi(song, tmp_path / "example.mid")


def test_round_trip_keeps_everything(written):
    song, path = written
    back = read_midi(path)
    assert [p.name for p in back.parts] == ["Melody", "Bass", "Drums"]
    for original, read in zip(song.parts, back.parts):
        assert read.notes == sorted(original.notes)
        assert read.program == original.program
    assert back.part("Drums").is_drum and back.part("Drums").channel == 9
    assert len({p.channel for p in back.parts}) == 3
    assert back.tempos == song.tempos
    assert back.time_signatures == song.time_signatures
    assert back.key == song.key
    assert back.markers == song.markers
    assert back.chords == song.chords
    assert back.title == "Example"


def test_layout_is_what_daws_expect(written):
    _, path = written
    midi = mido.MidiFile(path)
    assert midi.type == 1 and midi.ticks_per_beat == 480
    conductor = midi.tracks[0]
    assert not [m for m in conductor if m.type == "note_on"]
    kinds = {m.type for m in conductor}
    assert {"set_tempo", "time_signature", "key_signature", "marker"} <= kinds
    assert [m.key for m in conductor if m.type == "key_signature"] == ["Am"]
    for track, name in zip(midi.tracks[1:], ["Melody", "Bass", "Drums"]):
        assert track.name == name
        channels = {m.channel for m in track if hasattr(m, "channel")}
        assert len(channels) == 1
        assert any(m.type == "program_change" for m in track)
    assert {m.channel for m in midi.tracks[3] if hasattr(m, "channel")} == {9}


def test_same_song_same_bytes(tmp_path):
    a = write_midi(example_song(), tmp_path / "a.mid").read_bytes()
    b = write_midi(example_song(), tmp_path / "b.mid").read_bytes()
    assert a == b


def test_pretty_midi_reads_same_notes_and_tempo(written):
    import pretty_midi

    song, path = written
    pm = pretty_midi.PrettyMIDI(str(path))
    assert [i.name for i in pm.instruments] == ["Melody", "Bass", "Drums"]
    assert pm.instruments[2].is_drum
    for part, instrument in zip(song.parts, pm.instruments):
        assert instrument.program == part.program
        ours = [(n.pitch, song.tick_to_seconds(n.start), song.tick_to_seconds(n.end))
                for n in sorted(part.notes)]
        theirs = sorted((n.pitch, n.start, n.end) for n in instrument.notes)
        theirs.sort(key=lambda x: (x[1], x[0]))
        ours.sort(key=lambda x: (x[1], x[0]))
        assert [p for p, _, _ in ours] == [p for p, _, _ in theirs]
        for (_, s1, e1), (_, s2, e2) in zip(ours, theirs):
            assert s1 == pytest.approx(s2, abs=1e-4) and e1 == pytest.approx(e2, abs=1e-4)
    times, bpms = pm.get_tempo_changes()
    assert list(bpms) == pytest.approx([100.0, 140.0], abs=1e-3)
    assert times[1] == pytest.approx(song.tick_to_seconds(1440), abs=1e-4)


def test_music21_reads_same_notes_tempo_and_markers(written):
    import music21

    song, path = written
    score = music21.converter.parse(str(path), format="midi", forceSource=True,
                                    quantizePost=False)
    # music21 splits notes at barlines into ties: count only where each note starts
    notes = [n for n in score.parts[0].recurse().notes if n.tie is None or n.tie.type == "start"]
    pitches = [n.pitch.midi for n in notes]
    assert pitches == [n.pitch for n in sorted(song.part("Melody").notes)]
    offsets = [float(n.getOffsetInHierarchy(score)) for n in notes]
    assert offsets == pytest.approx([n.start / 480 for n in sorted(song.part("Melody").notes)])
    marks = [m.number for m in score.recurse().getElementsByClass("MetronomeMark")]
    assert 100 in marks and 140 in marks
    raw = music21.midi.MidiFile()
    raw.open(str(path))
    raw.read()
    raw.close()
    texts = [e.data.decode("utf-8") for e in raw.tracks[0].events
             if e.type == music21.midi.MetaEvents.MARKER]
    assert texts == ["cut 1", "cut 2 – Übergang"]


def test_mido_reads_markers_at_their_ticks(written):
    song, path = written
    tick, found = 0, []
    for message in mido.MidiFile(path).tracks[0]:
        tick += message.time
        if message.type == "marker":
            found.append(tick)
    assert found == [m.tick for m in song.markers]


def test_reads_pop909_like_pretty_midi():
    import pretty_midi

    if not POP909_001.exists():
        pytest.skip("POP909 not available")
    song = read_midi(POP909_001)
    assert [p.name for p in song.parts] == ["MELODY", "BRIDGE", "PIANO"]
    assert song.tempos[0].bpm == pytest.approx(90.0, abs=0.01)
    assert (song.time_signatures[0].numerator, song.time_signatures[0].denominator) == (2, 4)
    pm = pretty_midi.PrettyMIDI(str(POP909_001))
    for part, instrument in zip(song.parts, pm.instruments):
        assert len(part.notes) == len(instrument.notes)
        first = min(instrument.notes, key=lambda n: (n.start, n.pitch))
        assert song.tick_to_seconds(part.notes[0].start) == pytest.approx(first.start, abs=1e-3)
    last_note_off = max(n.end for i in pm.instruments for n in i.notes)
    assert song.duration_seconds == pytest.approx(last_note_off, abs=1e-3)


def test_other_resolutions_are_rescaled(tmp_path):
    midi = mido.MidiFile(type=1, ticks_per_beat=96)
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="lead"),
                            mido.Message("note_on", note=60, velocity=80, time=96),
                            mido.Message("note_off", note=60, time=48)])
    midi.tracks.append(track)
    midi.save(tmp_path / "low.mid")
    song = read_midi(tmp_path / "low.mid")
    assert song.parts[0].notes == [Note(480, 720, 60, 80)]
    assert song.tempos == [TempoChange(0, 120.0)]


def test_type0_channels_become_parts(tmp_path):
    midi = mido.MidiFile(type=0)
    midi.tracks.append(mido.MidiTrack([
        mido.MetaMessage("track_name", name="song"),
        mido.Message("program_change", channel=0, program=5),
        mido.Message("note_on", channel=0, note=60, velocity=80),
        mido.Message("note_on", channel=9, note=36, velocity=80),
        mido.Message("note_on", channel=0, note=60, velocity=0, time=480),
        mido.Message("note_off", channel=9, note=36)]))
    midi.save(tmp_path / "type0.mid")
    song = read_midi(tmp_path / "type0.mid")
    assert [(p.name, p.program, p.is_drum) for p in song.parts] == [
        ("song ch1", 5, False), ("song ch10", 0, True)]


def test_no_notes_is_fine(tmp_path):
    path = write_midi(Song(markers=[Marker(0, "start")]), tmp_path / "empty-song.mid")
    song = read_midi(path)
    assert song.parts == [] and song.markers == [Marker(0, "start")]


def _tempo_file(path: Path, bpm: float) -> Path:
    midi = mido.MidiFile()
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))]))
    midi.save(path)
    return path


@pytest.mark.parametrize("make, problem", [
    (lambda d: d / "missing.mid", "no such file"),
    (lambda d: d, "directory"),
    (lambda d: _write(d / "empty.mid", b""), "empty file"),
    (lambda d: _write(d / "notes.mid", b"just some text\n"), "not a MIDI file"),
    (lambda d: _write(d / "cut.mid", _whole_file(d)[:300]), "truncated"),
    (lambda d: _write(d / "none.mid", b"MThd\x00\x00\x00\x06\x00\x01\x00\x00\x01\xe0"), "no tracks"),
    (lambda d: _tempo_file(d / "slow.mid", 5), "absurd tempo"),
    (lambda d: _tempo_file(d / "fast.mid", 2000), "absurd tempo"),
    (lambda d: _meta_file(d / "zero.mid", mido.MetaMessage("set_tempo", tempo=0)), "absurd tempo"),
    (lambda d: _meta_file(d / "metre.mid", mido.MetaMessage("time_signature", numerator=0)),
     "invalid time signature 0/4"),
])
def test_bad_input_is_one_clear_error(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(CuesmithError) as caught:
        read_midi(path)
    message = str(caught.value)
    assert problem in message and str(path) in message and "\n" not in message


def _meta_file(path: Path, message: mido.MetaMessage) -> Path:
    midi = mido.MidiFile()
    midi.tracks.append(mido.MidiTrack([message, mido.Message("note_on", note=60, velocity=64)]))
    midi.save(path)
    return path


def _whole_file(folder: Path) -> bytes:
    return write_midi(example_song(), folder / "whole.mid").read_bytes()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_write_replaces_nothing_on_failure(tmp_path):
    target = tmp_path / "keep.mid"
    target.write_bytes(b"user data")
    with pytest.raises(CuesmithError):
        write_midi(Song(tempos=[TempoChange(0, 5000.0)]), target)
    assert target.read_bytes() == b"user data"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("song", [
    Song(tempos=[TempoChange(0, 5000.0)]),
    Song(time_signatures=[TimeSignature(0, 4, 3)]),
    Song(time_signatures=[TimeSignature(0, 0, 4)]),
])
def test_unwritable_songs_are_refused_clearly(tmp_path, song):
    with pytest.raises(CuesmithError, match="cannot write"):
        write_midi(song, tmp_path / "x.mid")
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(shutil.which("mscore3") is None, reason="MuseScore 3 (mscore3) not installed")
def test_musescore_engraves_the_file(written, tmp_path):
    _, path = written
    pdf = tmp_path / "score.pdf"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(tmp_path))
    done = subprocess.run(["mscore3", "-o", str(pdf), str(path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000
