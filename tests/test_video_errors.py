"""Bad input: one line naming the file and the problem, exit code 2, nothing written."""
import subprocess

import pytest

from media import Shot, make_video, write_audio_only, write_zero_frame_video


def make_missing(tmp_path):
    return tmp_path / "nowhere.mp4"


def make_directory(tmp_path):
    d = tmp_path / "folder.mp4"
    d.mkdir()
    return d


def make_text(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is a shopping list, not a video\n" * 50)
    return p


def make_empty(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    return p


def truncated(suffix):
    """A third of a good file: the header promises more frames than the data holds."""
    def make(tmp_path):
        truth = make_video(tmp_path / f"whole{suffix}", [Shot(3.0), Shot(3.0, "cold")])
        data = truth.path.read_bytes()
        p = tmp_path / f"truncated{suffix}"
        p.write_bytes(data[: len(data) // 3])
        return p
    return make


def make_audio_only(tmp_path):
    return write_audio_only(tmp_path / "song.m4a")


def make_zero_frames(tmp_path):
    return write_zero_frame_video(tmp_path / "zero.avi")


BAD = {
    "missing": (make_missing, "no such file"),
    "directory": (make_directory, "directory"),
    "text renamed .mp4": (make_text, "not a video"),
    "empty": (make_empty, "empty"),
    "truncated mp4": (truncated(".mp4"), "truncated"),
    "truncated mkv": (truncated(".mkv"), "truncated"),
    "audio only": (make_audio_only, "no video stream"),
    "zero frames": (make_zero_frames, "no video frames"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, cli, case):
    make, problem = BAD[case]
    path = make(tmp_path)
    out = tmp_path / "out" / "analysis.json"
    run = subprocess.run([cli, "analyze", str(path), "--json", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert str(path) in lines[0] and problem in lines[0], lines[0]
    assert "Traceback" not in run.stderr
    assert not out.exists() and not (tmp_path / "out").exists()


def test_bad_range(tmp_path, cli):
    truth = make_video(tmp_path / "clip.mp4", [Shot(1.0)])
    run = subprocess.run([cli, "analyze", str(truth.path), "--start", "2", "--end", "1"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--end" in run.stderr
    run = subprocess.run([cli, "analyze", str(truth.path), "--start", "5"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "no video frames in the requested range" in run.stderr
