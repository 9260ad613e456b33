"""Issue 14, cases 6 and 7, against a real `cuesmith serve`: a journal disk that fills during a job fails
that job with a message and a final event while the engine keeps answering; an output folder swapped for
a symlink after the job was accepted does not lead the job's writes outside the output root."""
from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import pytest

from bridge_helpers import running_engine, short_clip
from disk_helpers import files_under, tiny_filesystem
from media import Shot, make_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return short_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=3.0)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    shots = [Shot(4.0, "warm", 0.3), Shot(4.0, "cold", 0.8), Shot(4.0, "forest", 0.2), Shot(4.0, "dusk", 0.5)]
    return make_video(tmp_path_factory.mktemp("long") / "long.mp4", shots, size=(320, 180)).path


def fill(disk: Path) -> Path:
    """Write a file on `disk` until the disk refuses more: the disk is full."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return filler


def test_a_full_journal_disk_fails_the_job_and_the_engine_keeps_running(tmp_path, long_clip, clip):
    with tiny_filesystem(tmp_path / "journal-disk", "1m") as disk:
        with running_engine(tmp_path / "engine", journal=disk / "journal.sqlite") as engine:
            events, first_progress = [], threading.Event()

            def on_event(event):
                events.append(event)
                if event["event"] == "progress":
                    first_progress.set()

            with engine.client("udp", on_event=on_event) as client:
                job_id = client.submit("score", {"video": str(long_clip), "seed": 3})
                assert first_progress.wait(120), events
                filler = fill(disk)
                final = client.wait(job_id, timeout=300)
                assert final["event"] == "failed", final
                assert "cannot write the job journal" in final["message"], final
                assert any(e["event"] == "failed" and e["job_id"] == job_id for e in events), \
                    "the final event was not sent (only polled)"
                started = time.monotonic()
                assert client.ping() < 1.0 and time.monotonic() - started < 1.0
                assert client.job(job_id)["state"] == "failed"
                # the disk has room again: the engine takes new jobs and records the failed one
                filler.unlink()
                second = client.wait(client.submit("analyze", {"video": str(clip)}), timeout=120)
                assert second["event"] == "result", second
                assert client.job(job_id)["state"] == "failed"
            assert engine.proc.poll() is None


def test_an_out_dir_swapped_for_a_symlink_after_submit_gets_nothing_written_outside(tmp_path, clip, long_clip):
    outside = tmp_path / "outside"
    outside.mkdir()
    with running_engine(tmp_path / "engine") as engine:
        root = engine.output_root
        (root / "was-a-folder").mkdir()
        with engine.client("udp") as client:
            first = client.submit("analyze", {"video": str(long_clip)})  # the one worker is busy with this
            jobs = [client.submit("analyze", {"video": str(clip), "out_dir": out_dir})
                    for out_dir in ("not-yet-made", "was-a-folder")]
            for out_dir in ("not-yet-made", "was-a-folder"):  # accepted, still queued: now swapped
                swapped = root / out_dir
                if swapped.is_dir():
                    swapped.rmdir()
                swapped.symlink_to(outside, target_is_directory=True)
            assert client.wait(first, timeout=120)["event"] == "result"
            finals = [client.wait(job_id, timeout=120) for job_id in jobs]
            for final in finals:
                assert final["event"] == "failed", final
                assert "output root" in final["message"] and "nothing written" in final["message"], final
            assert files_under(outside) == []
            assert client.ping() < 1.0
