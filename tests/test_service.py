"""The job service: real clips, the shipped model, a real SQLite journal and a real SIGKILL."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cuesmith.engine import Engine
from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.service import JOB_KINDS, JOB_STATES, JobEvent, JobService
from cuesmith.engine.service.service import ProgressThrottle
from media import Shot, make_video
from vmusprod_helpers import shipped_model

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    shots = [Shot(1.4, "warm", 0.3), Shot(1.6, "cold", 0.8)]
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", shots, audio=True).path


@pytest.fixture(scope="module")
def engine() -> Engine:
    """One warm engine for the whole module; no analysis cache, so every job reports its analysis."""
    shipped_model()
    return Engine(use_cache=False)


class Events:
    """A subscriber that keeps every event it is given."""

    def __init__(self):
        self.seen: list[JobEvent] = []
        self.times: dict[int, float] = {}  # id(event) -> when it came
        self.lock = threading.Lock()

    def __call__(self, event: JobEvent) -> None:
        with self.lock:
            self.seen.append(event)
            self.times[id(event)] = time.monotonic()

    def of(self, job_id: str) -> list[JobEvent]:
        with self.lock:
            return [e for e in self.seen if e.job_id == job_id]

    def named(self, name: str) -> list[JobEvent]:
        with self.lock:
            return [e for e in self.seen if e.event == name]


def journal_rows(path: Path) -> dict[str, dict]:
    """The journal as another process would read it: its own connection."""
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return {row["id"]: dict(row) for row in db.execute("SELECT * FROM jobs")}


@pytest.fixture
def service(tmp_path, engine):
    svc = JobService(journal=tmp_path / "journal.sqlite", output_root=tmp_path / "root", engine=engine)
    yield svc
    svc.stop(wait=True)


def test_the_interface_names():
    assert JOB_KINDS == ("score", "critique", "analyze", "describe")
    assert JOB_STATES == ("queued", "running", "done", "failed", "cancelled")


def test_a_score_job_sends_its_events_and_journals_its_result(service, clip):
    events = Events()
    service.subscribe(events)
    service.start()
    job = service.submit("score", {"video": str(clip), "stems": False, "seed": 2}, reply_to="udp:127.0.0.1:9000")
    assert len(job.id) == 12 and job.state == "queued"
    assert journal_rows(service.journal.path)[job.id]["state"] in ("queued", "running", "done")  # committed

    done = service.wait(job.id, timeout=120)
    assert done.state == "done", done.error
    assert done.result == str(service.output_root / job.id / "result.json") and Path(done.result).is_file()
    assert json.loads(Path(done.result).read_text())["request"]["video"] == str(clip)
    names = [e.event for e in events.of(job.id)]
    assert names[:3] == ["accepted", "started", "progress"] and names[-1] == "result"
    assert set(names[2:-1]) == {"progress"}
    assert all(e.reply_to == "udp:127.0.0.1:9000" and e.kind == "score" for e in events.of(job.id))
    progress = [e for e in events.of(job.id) if e.event == "progress"]
    assert progress[0].stage == "analyse"  # the first report is always sent
    assert progress[-1].stage == "critique" and progress[-1].fraction == 1.0  # and the last
    gaps = np.diff([events.times[id(e)] for e in progress[:-1]])  # all but the last: throttled
    # at most ~10 per second; a job that runs in a few tenths of a second (a quiet machine, a warm engine)
    # may send only the first and the last (the throttle itself: test_progress_is_throttled_...)
    assert gaps.size == 0 or gaps.min() >= 0.09
    assert events.of(job.id)[-1].result == done.result

    row = journal_rows(service.journal.path)[job.id]
    assert (row["state"], row["result"], row["attempts"]) == ("done", done.result, 1)
    assert json.loads(row["request"])["out_dir"] == str(service.output_root / job.id)
    assert service.counts()["done"] == 1 and service.list()[0].id == job.id


def test_analyze_and_critique_jobs_write_their_result_files(service, clip):
    service.start()
    analyze = service.submit("analyze", {"video": str(clip), "out_dir": "mine"})
    critique = service.submit("critique", {"video": str(clip), "out_dir": "mine"})
    analysis = service.wait(analyze.id, timeout=60)
    assert analysis.result == str(service.output_root / "mine" / "analysis.json")
    assert len(json.loads(Path(analysis.result).read_text())["cuts"]) == 1
    judged = service.wait(critique.id, timeout=60)
    assert judged.state == "done", judged.error
    assert judged.result == str(service.output_root / "mine" / "critique.json")
    again = service.wait(service.submit("analyze", {"video": str(clip), "out_dir": "mine"}).id, timeout=60)
    assert again.result.endswith("analysis-2.json")  # the first one is never replaced
    assert [r.id for r in service.list(limit=2)] == [again.id, critique.id]  # newest first


def test_priorities_order_the_queue_fifo_within_a_priority(service, clip):
    events = Events()
    service.subscribe(events)
    jobs = {name: service.submit("analyze", {"video": str(clip)}, priority=priority)
            for name, priority in [("low1", 0), ("high1", 5), ("low2", 0), ("high2", 5), ("mid", 1)]}
    service.start()
    for job in jobs.values():
        assert service.wait(job.id, timeout=60).state == "done"
    order = {job.id: name for name, job in jobs.items()}
    assert [order[e.job_id] for e in events.named("started")] == ["high1", "high2", "mid", "low1", "low2"]


def test_never_more_than_max_running_at_once(tmp_path, engine, clip):
    svc = JobService(tmp_path / "journal.sqlite", tmp_path / "root", engine=engine, max_running=2)
    running = []
    svc.subscribe(lambda e: running.append(svc.counts()["running"]) if e.event in ("started", "progress") else None)
    jobs = [svc.submit("analyze", {"video": str(clip)}) for _ in range(5)]
    svc.start()
    try:
        assert all(svc.wait(job.id, timeout=60).state == "done" for job in jobs)
    finally:
        svc.stop()
    assert max(running) == 2


def test_cancel_a_queued_job(service, clip):
    events = Events()
    service.subscribe(events)
    first = service.submit("analyze", {"video": str(clip)})
    second = service.submit("score", {"video": str(clip), "stems": False})
    assert service.cancel(second.id).state == "cancelled"  # at once, the service is not even started
    service.start()
    assert service.wait(first.id, timeout=60).state == "done"
    assert service.wait(second.id, timeout=1).state == "cancelled"
    assert [e.event for e in events.of(second.id)] == ["accepted", "cancelled"]
    assert not (service.output_root / second.id).exists()
    assert service.cancel(first.id).state == "done"  # finished jobs stay as they are
    with pytest.raises(CuesmithError, match="no job"):
        service.cancel("0123456789ab")


def test_cancel_a_running_job_at_its_next_progress_report(service, clip):
    events = Events()
    service.subscribe(events)
    service.subscribe(lambda e: service.cancel(e.job_id) if e.event == "progress" else None)
    service.start()
    job = service.submit("score", {"video": str(clip), "stems": False})
    ended = service.wait(job.id, timeout=60)
    assert (ended.state, ended.result) == ("cancelled", "")
    names = [e.event for e in events.of(job.id)]
    assert names == ["accepted", "started", "progress", "cancelled"]
    written = sorted(service.output_root.rglob("*"))
    time.sleep(0.5)
    assert sorted(service.output_root.rglob("*")) == written  # nothing more is written for it
    assert not list(service.output_root.rglob("result.json"))
    assert journal_rows(service.journal.path)[job.id]["state"] == "cancelled"


def test_stop_without_waiting_cancels_the_running_job(service, clip):
    running = threading.Event()
    service.subscribe(lambda e: running.set() if e.event == "progress" else None)
    service.start()
    job = service.submit("score", {"video": str(clip), "stems": False})
    queued = service.submit("analyze", {"video": str(clip)})
    assert running.wait(60)
    service.stop(wait=False)
    assert service.wait(job.id, timeout=60).state == "cancelled"
    assert service.get(queued.id).state == "queued"  # left for the next start
    assert [r.id for r in service.start()] == [queued.id]
    assert service.wait(queued.id, timeout=60).state == "done"
    assert service.get(job.id).state == "cancelled"


BAD_REQUESTS = [
    ("score", {}, "needs either a video"),
    ("score", {"video": "/no/such/clip.mp4"}, "no such file"),
    ("score", {"video": "CLIP", "out_dir": "/tmp/elsewhere"}, "outside the output root"),
    ("score", {"video": "CLIP", "out_dir": "../escape"}, "outside the output root"),
    ("score", {"video": "CLIP", "variations": "two"}, "variations must be an integer"),
    ("score", {"video": "CLIP", "variations": 40}, "variations must be 1..16"),
    ("score", {"video": "CLIP", "tempo": float("nan")}, "tempo must be a number"),
    ("score", {"video": "CLIP", "stems": "yes"}, "stems must be true or false"),
    ("score", {"video": "CLIP", "schema_version": 9}, "schema_version 9"),
    ("score", ["CLIP"], "is a JSON object"),
    ("critique", {"music": "CLIP"}, "needs a video"),
    ("analyze", {"video": "CLIP", "start": "0"}, "start must be a number"),
    ("render", {"video": "CLIP"}, "unknown job kind"),
]


@pytest.mark.parametrize("kind, request_values, message", BAD_REQUESTS)
def test_a_bad_request_is_refused_and_nothing_is_journaled(service, clip, kind, request_values, message):
    service.start()
    fill = lambda v: str(clip) if v == "CLIP" else v  # noqa: E731
    values = [fill(v) for v in request_values] if isinstance(request_values, list) else \
        {k: fill(v) for k, v in request_values.items()}
    with pytest.raises(CuesmithError, match=message):
        service.submit(kind, values)
    assert journal_rows(service.journal.path) == {}
    assert not any(service.output_root.iterdir())


@pytest.mark.parametrize("priority", ["1", 1.5, True, 2**70])
def test_a_bad_priority_is_refused(service, clip, priority):
    with pytest.raises(CuesmithError, match="priority must be an integer"):
        service.submit("analyze", {"video": str(clip)}, priority=priority)
    assert journal_rows(service.journal.path) == {}


def test_a_failing_job_ends_failed_with_the_engines_message(service, engine, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all " * 100)
    with pytest.raises(CuesmithError) as direct:
        engine.analyze(broken)
    events = Events()
    service.subscribe(events)
    service.start()
    job = service.submit("score", {"video": str(broken), "stems": False})
    failed = service.wait(job.id, timeout=60)
    assert (failed.state, failed.error) == ("failed", str(direct.value))
    assert events.of(job.id)[-1].event == "failed" and events.of(job.id)[-1].message == str(direct.value)
    assert journal_rows(service.journal.path)[job.id]["error"] == str(direct.value)


RUNNER = """
import json, sys
from cuesmith.engine.service import JobService
journal, root, clip = sys.argv[1:4]
svc = JobService(journal, root)
svc.subscribe(lambda e: print(json.dumps(e.to_dict()), flush=True))
svc.submit("score", {"video": clip, "stems": False}, priority=1, reply_to="udp:127.0.0.1:9000")
svc.submit("analyze", {"video": clip})
svc.start()
svc.wait(svc.list()[0].id)
"""


def run_until_killed(journal: Path, root: Path, clip: Path) -> list[dict]:
    """Run a service in a real process and SIGKILL it once its first job reports progress."""
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    process = subprocess.Popen([sys.executable, "-c", RUNNER, str(journal), str(root), str(clip)],
                               stdout=subprocess.PIPE, text=True, env=env)
    seen = []
    try:
        for line in process.stdout:
            seen.append(json.loads(line))
            if seen[-1]["event"] == "progress":
                os.kill(process.pid, signal.SIGKILL)
                break
    finally:
        process.kill()
        process.wait(30)
    assert process.returncode == -signal.SIGKILL, f"the runner ended before it was killed: {seen}"
    return seen


def test_sigkill_mid_job_then_resume_or_fail(tmp_path, engine, clip):
    journal, root = tmp_path / "journal.sqlite", tmp_path / "root"
    seen = run_until_killed(journal, root, clip)
    accepted = [e["job_id"] for e in seen if e["event"] == "accepted"]
    assert len(accepted) == 2
    rows = journal_rows(journal)
    score_id, analyze_id = accepted
    assert (rows[score_id]["state"], rows[score_id]["attempts"]) == ("running", 1)  # the engine died under it
    assert rows[analyze_id]["state"] == "queued"

    copy = tmp_path / "copy.sqlite"  # the same journal, to try max_attempts=1 on
    with sqlite3.connect(journal) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    strict = JobService(copy, root, engine=engine, max_attempts=1)
    recovered = {r.id: r for r in strict.start()}
    strict.stop()
    assert recovered[score_id].state == "failed" and "engine stopped during this job" in recovered[score_id].error
    assert recovered[analyze_id].state == "queued"

    events = Events()
    resumed = JobService(journal, root, engine=engine)  # max_attempts=2: runs it again
    resumed.subscribe(events)
    assert {r.id for r in resumed.start()} == {score_id, analyze_id}
    try:
        score = resumed.wait(score_id, timeout=120)
        analysis = resumed.wait(analyze_id, timeout=60)
    finally:
        resumed.stop()
    assert (score.state, score.attempts) == ("done", 2) and Path(score.result).is_file()
    assert analysis.state == "done" and Path(analysis.result).is_file(), analysis.error
    assert events.of(score_id)[-1].reply_to == "udp:127.0.0.1:9000"  # still reaches the client that asked
    assert {r.id for r in resumed.list()} == {score_id, analyze_id}


def test_a_job_killed_max_attempts_times_is_failed_not_dropped(tmp_path, engine):
    journal = tmp_path / "journal.sqlite"
    svc = JobService(journal, tmp_path / "root", engine=engine)
    job = svc.submit("analyze", {"video": str(TESTS / "media.py")})
    svc.journal.update(job.id, state="running", attempts=2)  # as two killed engines leave it
    svc.journal.close()
    again = JobService(journal, tmp_path / "root", engine=engine)
    events = Events()
    again.subscribe(events)
    [found] = again.start()
    again.stop()
    assert found.state == "failed" and "2 time(s)" in found.error
    assert [e.event for e in events.of(job.id)] == ["failed"]
    assert journal_rows(journal)[job.id]["state"] == "failed"


def test_progress_is_throttled_but_keeps_the_first_and_the_last():
    throttle = ProgressThrottle(interval=0.1)
    sent = [i for i in range(1000) if throttle.offer("stage", i / 999)]
    assert sent == [0]
    assert throttle.flush() == ("stage", 1.0) and throttle.flush() is None
    time.sleep(0.11)
    assert throttle.offer("next", 0.0)


def test_a_file_that_is_not_a_journal_or_a_folder_is_refused(tmp_path):
    bad = tmp_path / "journal.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CuesmithError, match="cannot open the job journal"):
        JobService(bad, tmp_path / "root", engine=Engine())
    with pytest.raises(CuesmithError, match="cannot create the output root"):
        JobService(tmp_path / "fine.sqlite", bad / "root", engine=Engine())


def test_status_helpers(service):
    assert "CPUExecutionProvider" in service.providers()["available"]
    assert any(Path(m, "manifest.json").is_file() for m in service.models())
    assert service.counts() == {state: 0 for state in JOB_STATES}


def test_one_running_engine_per_journal(tmp_path, engine):
    first = JobService(tmp_path / "journal.sqlite", tmp_path / "root", engine=engine)
    second = JobService(tmp_path / "journal.sqlite", tmp_path / "root", engine=engine)
    first.start()
    try:
        with pytest.raises(CuesmithError, match="in use by another running engine"):
            second.start()
    finally:
        first.stop()
    second.start()  # free again once the first one stopped
    second.stop()
