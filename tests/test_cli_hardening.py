"""Issue 14, case 8: the real CLI on careless input answers with one line and exit 2 and leaves no file;
it never replaces a file, never hangs on a FIFO, never ends in a traceback when its reader goes away,
and sweeps the temporaries a killed run left."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import mido
import pytest

from bridge_helpers import short_clip
from disk_helpers import files_under, tiny_filesystem
from media import Shot, make_video


def run(cli, *args, timeout=600):
    return subprocess.run([cli, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def one_line_error(done) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return short_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=3.0)


@pytest.fixture(scope="module")
def midi_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("midi") / "tune.mid"
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    for i, pitch in enumerate((60, 64, 67, 72, 67, 64, 60, 64)):
        track += [mido.Message("note_on", note=pitch, velocity=80, time=0 if i == 0 else 0),
                  mido.Message("note_off", note=pitch, velocity=0, time=480)]
    midi.tracks.append(track)
    midi.save(path)
    return path


def test_score_of_a_clip_shorter_than_a_bar_is_refused_and_leaves_nothing(cli, tmp_path):
    video = make_video(tmp_path / "blink.mp4", [Shot(0.5, "warm", 0.3)], size=(160, 90)).path
    out = tmp_path / "out"
    error = one_line_error(run(cli, "score", video, "--out", out))
    assert "shorter than" in error and "bar" in error, error
    assert not out.exists()


def test_score_into_a_full_folder_leaves_no_partial_file(cli, clip, tmp_path):
    # room for the MIDI and the critique, not for the stems: the score fails part way through
    with tiny_filesystem(tmp_path / "disk", "192k") as disk:
        (disk / "mine.txt").write_text("the user's file")
        error = one_line_error(run(cli, "score", clip, "--out", disk))
        assert "No space left on device" in error, error
        assert files_under(disk) == ["mine.txt"]
        assert (disk / "mine.txt").read_text() == "the user's file"


def test_score_into_a_read_only_folder_leaves_nothing(cli, clip, tmp_path):
    with tiny_filesystem(tmp_path / "ro", "64k", read_only=True) as disk:
        error = one_line_error(run(cli, "score", clip, "--out", disk / "out"))
        assert "Read-only file system" in error, error
        assert files_under(disk) == []


def test_analyze_json_into_a_read_only_folder_is_one_line(cli, clip, tmp_path):
    with tiny_filesystem(tmp_path / "ro", "64k", read_only=True) as disk:
        error = one_line_error(run(cli, "analyze", clip, "--json", disk / "analysis.json"))
        assert "Read-only file system" in error and "analysis.json" in error, error


@pytest.mark.parametrize("command", ["analyze", "inspect"])
def test_json_never_replaces_an_existing_file(cli, clip, midi_file, tmp_path, command):
    mine = tmp_path / "result.json"
    mine.write_text("the user's notes, not JSON")
    done = run(cli, command, clip if command == "analyze" else midi_file, "--json", mine)
    assert done.returncode == 0, done.stderr
    assert mine.read_text() == "the user's notes, not JSON"
    written = tmp_path / "result-2.json"
    assert written.read_text().startswith("{")
    assert f"wrote {written} ({mine} exists: not replaced)" in done.stdout


def special_files(tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    return {"FIFO": fifo, "device": Path("/dev/zero")}


@pytest.mark.parametrize("command", ["analyze", "inspect", "critique"])
def test_a_fifo_or_a_device_is_named_for_what_it_is(cli, tmp_path, command):
    for kind, path in special_files(tmp_path).items():
        started = time.monotonic()
        error = one_line_error(run(cli, command, path, timeout=60))  # a FIFO must not block the reader
        assert kind in error and "directory" not in error and "folder" not in error, error
        assert time.monotonic() - started < 60


def test_a_closed_pipe_ends_quietly_and_the_json_is_written(cli, clip, tmp_path):
    """`cuesmith analyze clip.mp4 --json a.json | head -0`: the reader is gone before the summary is printed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    proc = subprocess.Popen([cli, "analyze", str(clip), "--json", str(tmp_path / "a.json")], stdout=write_end,
                            stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    _, stderr = proc.communicate(timeout=300)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert proc.returncode == 141
    assert (tmp_path / "a.json").read_text().startswith("{")


def test_temporaries_of_a_killed_run_are_swept(cli, clip, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".analysis.json.k3x9q2ab.part"  # our naming, left by a run killed before this one began
    stale.write_bytes(b"half a file")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    kept = {out / "take.part": b"the user's", out / ".notes.part": b"also the user's"}
    for path, data in kept.items():
        path.write_bytes(data)
        os.utime(path, (old, old))
    done = run(cli, "analyze", clip, "--json", out / "analysis.json")
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    assert all(path.read_bytes() == data for path, data in kept.items())
    assert (out / "analysis.json").is_file()


def test_critique_into_a_full_folder_leaves_neither_file(cli, tmp_path):
    clip = make_video(tmp_path / "clip.mp4", [Shot(1.5, "warm", 0.3), Shot(1.5, "cold", 0.8)], size=(160, 90),
                      audio=True).path
    with tiny_filesystem(tmp_path / "disk", "4k") as disk:  # one page: critique.json (~4 KB), not the .md
        error = one_line_error(run(cli, "critique", clip, "--out", disk))
        assert "No space left on device" in error, error
        assert files_under(disk) == []
