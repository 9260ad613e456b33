"""`cuesmith inspect`: run as users run it, through the installed console script."""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from cuesmith.engine.music.inspect import inspect_song
from cuesmith.engine.music.midi_io import write_midi
from cuesmith.engine.music.score import (Chord, Key, Marker, Note, Part, Song, TempoChange,
                                         TimeSignature)

CUESMITH = Path(sys.executable).parent / "cuesmith"
HARTE = re.compile(r"^(N|[A-G][#b]*:[a-z0-9]+(\([^)]*\))?(/[#b]*\d+)?)$")


def song_to_inspect() -> Song:
    # 1 bar of 3/4 at 100 BPM, then 3 bars of 4/4 at 140 BPM; C major material
    piano = Part("Piano", [Note(t, t + 480, p, 70) for t in range(0, 7200, 480) for p in (48, 52, 55)])
    melody = Part("Lead ✓", [Note(t, t + 240, p) for t, p in zip(range(0, 7200, 240),
                                                                    [60, 62, 64, 65, 67, 69, 71, 72] * 4)],
                  program=73)
    return Song(parts=[piano, melody],
                tempos=[TempoChange(0, 100.0), TempoChange(1440, 140.0)],
                time_signatures=[TimeSignature(0, 3, 4), TimeSignature(1440, 4, 4)],
                markers=[Marker(1440, "cut 1")], key=Key(9, "minor"), title="Inspect me")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CUESMITH), "inspect", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def inspected(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inspect")
    midi = write_midi(song_to_inspect(), folder / "cue.mid")
    done = run_cli(str(midi), "--json", str(folder / "out.json"))
    return done, json.loads((folder / "out.json").read_text()) if done.returncode == 0 else None


def test_cli_prints_a_summary_and_writes_json(inspected):
    done, result = inspected
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "cue.mid" in out and "100–140 BPM" in out and "3/4, 4/4" in out
    assert "Lead ✓" in out and "Flute" in out and "the file's key signature says A minor" in out
    assert result is not None and "wrote" in out


def test_tempo_map_metre_and_markers_in_seconds(inspected):
    _, result = inspected
    assert [(t["tick"], t["bpm"]) for t in result["tempos"]] == [(0, 100.0), (1440, 140.0)]
    assert result["tempos"][1]["seconds"] == pytest.approx(1.8)
    assert [m["time_signature"] for m in result["time_signatures"]] == ["3/4", "4/4"]
    assert result["markers"] == [{"tick": 1440, "seconds": 1.8, "text": "cut 1"}]
    assert result["duration_seconds"] == pytest.approx(1.8 + 12 * 60 / 140, abs=1e-6)


def test_beats_and_downbeats(inspected):
    _, result = inspected
    beat = 60 / 140
    expected = [0.0, 0.6, 1.2] + [1.8 + i * beat for i in range(12)]
    assert result["beats"] == pytest.approx(expected, abs=1e-6)
    assert result["downbeats"] == pytest.approx([0.0, 1.8, 1.8 + 4 * beat, 1.8 + 8 * beat], abs=1e-6)


def test_parts_key_and_chords(inspected):
    _, result = inspected
    parts = {p["name"]: p for p in result["parts"]}
    assert parts["Piano"]["notes"] == 45 and (parts["Piano"]["lowest"], parts["Piano"]["highest"]) == ("C3", "G3")
    assert parts["Lead ✓"]["program"] == 73 and parts["Lead ✓"]["channel"] == 2
    assert result["key_signature"]["name"] == "A minor"
    assert result["key"]["mode"] in ("major", "minor") and 0 <= result["key"]["tonic"] < 12
    if importlib.util.find_spec("cuesmith.engine.music.chords") is None:
        assert result["chords"] is None
    else:
        assert result["chords"], "no chords recognised"
        assert all(HARTE.match(c["label"]) for c in result["chords"])
        starts = [c["start"] for c in result["chords"]]
        assert starts == sorted(starts) and all(c["end"] > c["start"] for c in result["chords"])


def test_chords_are_reported_in_seconds_with_harte_labels(monkeypatch):
    fake = types.ModuleType("cuesmith.engine.music.chords")
    fake.recognize_chords = lambda song, per="beat": [Chord(0, 1440, 0, "M"), Chord(1440, 1920, 9, "m7")]
    fake.harte_label = lambda chord: {"M": "C:maj", "m7": "A:min7"}[chord.quality]
    monkeypatch.setitem(sys.modules, "cuesmith.engine.music.chords", fake)
    result = inspect_song(song_to_inspect())
    assert [(c.start, c.end, c.label) for c in result.chords] == [
        (0.0, 1.8, "C:maj"), (1.8, pytest.approx(1.8 + 60 / 140), "A:min7")]
    assert "C:maj A:min7" in result.summary()


@pytest.mark.parametrize("content, problem", [
    (None, "no such file"),
    (b"", "empty file"),
    (b"<html>not music</html>", "not a MIDI file"),
])
def test_bad_input_is_one_line_exit_2_and_no_json(tmp_path, content, problem):
    music = tmp_path / "bad.mid"
    if content is not None:
        music.write_bytes(content)
    out = tmp_path / "out.json"
    done = run_cli(str(music), "--json", str(out))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and problem in done.stderr and str(music) in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_json_path_that_is_a_folder_is_refused(tmp_path):
    midi = write_midi(song_to_inspect(), tmp_path / "cue.mid")
    done = run_cli(str(midi), "--json", str(tmp_path))
    assert done.returncode == 2 and "--json needs a file path" in done.stderr
