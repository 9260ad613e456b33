"""`JobService`: a priority queue of jobs run by worker threads on one shared `Engine`, journaled in SQLite."""
from __future__ import annotations

import heapq
import logging
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

from filelock import FileLock, Timeout

from ..errors import CuesmithError
from ..files import confine_writes
from .journal import Journal, JournalWriteError
from .kinds import RUNNERS
from .records import JOB_KINDS, JobEvent, JobRecord
from .requests import prepare_request

log = logging.getLogger(__name__)
PROGRESS_INTERVAL = 0.1  # seconds between two progress events of one job: at most ~10 per second
MAX_PRIORITY = 2**31 - 1  # a SQLite INTEGER holds far more; a bound keeps an absurd value a clear error


class _Cancelled(BaseException):
    """Raised from a cancelled job's progress callback. A BaseException, so that a pipeline's
    `except Exception` cannot turn a cancellation into a failure."""


class _JournalFailed(BaseException):
    """Raised from a job's progress callback when the journal cannot record its progress (disk full): the job
    stops and fails with this message. A BaseException for the same reason as `_Cancelled`."""


class ProgressThrottle:
    """Lets through the first report and then one per `interval`; keeps the latest one back for `flush`."""

    def __init__(self, interval: float = PROGRESS_INTERVAL):
        self.interval = interval
        self._last_sent: Optional[float] = None
        self.pending: Optional[tuple[str, float]] = None

    def offer(self, stage: str, fraction: float) -> bool:
        now = time.monotonic()
        if self._last_sent is not None and now - self._last_sent < self.interval:
            self.pending = (stage, fraction)
            return False
        self._last_sent, self.pending = now, None
        return True

    def flush(self) -> Optional[tuple[str, float]]:
        """The report held back last, if any: the job's last progress is always sent."""
        pending, self.pending = self.pending, None
        return pending


class JobService:
    """Jobs in, events and result files out; see the package docstring."""

    def __init__(self, journal: str | Path, output_root: str | Path, engine=None, max_running: int = 1,
                 max_attempts: int = 2):
        if max_running < 1 or max_attempts < 1:
            raise CuesmithError(f"max_running and max_attempts must be at least 1, got {max_running}, {max_attempts}")
        if engine is None:
            from ..api import Engine

            engine = Engine()
        self.engine = engine
        self.output_root = Path(output_root).expanduser().resolve()
        try:
            self.output_root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CuesmithError(f"cannot create the output root ({error.strerror or error})", self.output_root,
                                hint="give another --output-root") from None
        confine_writes(self.output_root)  # a folder swapped for a symlink after submit cannot lead outside
        self.journal = Journal(journal)
        # held while started: a second engine on this journal would run the first one's jobs again
        self._owner = FileLock(f"{self.journal.path}.lock", timeout=0, thread_local=False)
        self.max_running, self.max_attempts = max_running, max_attempts
        self._lock = threading.Condition()  # queue, running jobs, state changes; taken before the journal's lock
        self._queue: list[tuple[int, int, str]] = []  # (-priority, seq, job_id): a heap
        self._running: dict[str, threading.Event] = {}  # job_id -> its cancel flag
        self._settling: set[str] = set()  # finished in the journal, final event not yet sent
        self._unjournaled: dict[str, JobRecord] = {}  # finished, but the journal refused the write (disk full)
        self._subscribers: list[Callable[[JobEvent], None]] = []
        self._workers: list[threading.Thread] = []
        self._generation = 0  # bumped by start and stop: a worker of an older generation takes no more jobs

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> list[JobRecord]:
        """Queue again the jobs the journal holds unfinished, start the workers; the jobs found."""
        with self._lock:
            if self._workers:
                return []
            try:
                self._owner.acquire()
            except Timeout:
                raise CuesmithError("the job journal is in use by another running engine", self.journal.path,
                                    hint="stop that engine first, or give this one another journal") from None
            self._generation += 1
            import_job_modules()
            recovered, failed = self._recover()
            self._workers = [threading.Thread(target=self._work, args=(self._generation,), name=f"cuesmith-job-{i}",
                                              daemon=True) for i in range(self.max_running)]
        for record in failed:
            self._announce(record)
        for worker in self._workers:
            worker.start()
        return recovered

    def stop(self, wait: bool = True) -> None:
        """Stop the workers. wait=True: after their current jobs; wait=False: now, cancelling the running jobs.
        Queued jobs stay queued in the journal for the next start; the journal is free for another engine."""
        with self._lock:
            self._generation += 1
            if not wait:
                for flag in self._running.values():
                    flag.set()
            self._lock.notify_all()
            workers, self._workers = self._workers, []
        if wait:
            for worker in workers:
                worker.join()
        with self._lock:
            self._write_unjournaled()
        if self._owner.is_locked:
            self._owner.release()

    def _recover(self) -> tuple[list[JobRecord], list[JobRecord]]:
        recovered, failed = [], []
        self._queue.clear()  # the journal is the truth; jobs submitted before start are in it
        for seq, record in self.journal.in_states(("queued", "running")):
            if record.id in self._running:
                continue  # still ending in a worker of this process after stop(wait=False)
            if record.state == "running" and record.attempts >= self.max_attempts:
                record = self._finish(record.id, "failed", error=(
                    f"the engine stopped during this job {record.attempts} time(s) (killed or crashed); "
                    f"not run again (max_attempts {self.max_attempts})"))
                failed.append(record)
            else:
                if record.state == "running":
                    self.journal.update(record.id, state="queued", stage="", fraction=0.0, updated=time.time())
                    record = self.journal.get(record.id)
                heapq.heappush(self._queue, (-record.priority, seq, record.id))
            recovered.append(record)
        return recovered, failed

    # -- requests ---------------------------------------------------------------------------------------------

    def submit(self, kind: str, request: dict, priority: int = 0, reply_to: str = "") -> JobRecord:
        """Check `request`, journal the job (committed before this returns) and queue it."""
        if kind not in JOB_KINDS:
            raise CuesmithError(f"unknown job kind {kind!r} (expected {', '.join(JOB_KINDS)})")
        if not isinstance(priority, int) or isinstance(priority, bool) or abs(priority) > MAX_PRIORITY:
            raise CuesmithError(f"priority must be an integer from -{MAX_PRIORITY} to {MAX_PRIORITY}, got {priority!r}")
        job_id = uuid.uuid4().hex[:12]
        now = time.time()
        record = JobRecord(id=job_id, kind=kind, state="queued", priority=priority,
                           request=prepare_request(kind, request, job_id, self.output_root),
                           reply_to=str(reply_to or ""), created=now, updated=now)
        seq = self.journal.insert(record)
        self._emit(JobEvent(job_id, "accepted", kind, reply_to=record.reply_to))
        with self._lock:  # queued after "accepted" went out, so "started" never comes first
            heapq.heappush(self._queue, (-priority, seq, job_id))
            self._lock.notify()
        return record

    def cancel(self, job_id: str) -> JobRecord:
        """Queued: cancelled now. Running: cancelled at its next progress report. Finished: unchanged."""
        with self._lock:
            record = self._known(job_id)
            if record.finished:
                return record
            if job_id in self._running:
                self._running[job_id].set()
                return record
            record = self._finish(job_id, "cancelled")  # queued, or left "running" by a dead engine
        self._announce(record)
        return record

    def get(self, job_id: str) -> Optional[JobRecord]:
        return self._unjournaled.get(job_id) or self.journal.get(job_id)

    def list(self, limit: int = 20) -> list[JobRecord]:
        """The newest `limit` jobs, newest first."""
        return [self._unjournaled.get(record.id, record) for record in self.journal.newest(limit)]

    def counts(self) -> dict[str, int]:
        return self.journal.counts()

    def wait(self, job_id: str, timeout: Optional[float] = None) -> JobRecord:
        """The job once it is done, failed or cancelled; after `timeout` seconds, as it is then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                record = self._known(job_id)
                left = None if deadline is None else deadline - time.monotonic()
                if (record.finished and job_id not in self._settling) or (left is not None and left <= 0):
                    return record
                self._lock.wait(left)

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Call `callback(event)` for every job event (from worker threads); returns the unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
        return unsubscribe

    def providers(self) -> dict:
        """{"available": ONNX Runtime providers, best first; "stages": stage -> provider of the loaded models}."""
        from ..runtime.sessions import available_providers

        stages = {}
        for model in getattr(self.engine, "_models", {}).values():
            stages.update(getattr(model, "providers", {}))  # a family model's {stage: provider}
        return {"available": list(available_providers()), "stages": stages}

    def models(self) -> list[str]:
        """The model folders the engine would load from (those with a manifest), in search order."""
        from ..runtime.store import search_path
        from ..schema import FAMILIES

        if getattr(self.engine, "model_dir", None):
            candidates = [Path(self.engine.model_dir)]
        else:
            candidates = [folder for family in FAMILIES for folder in search_path(family)]
        return [str(folder) for folder in candidates if (folder / "manifest.json").is_file()]

    # -- workers ----------------------------------------------------------------------------------------------

    def _work(self, generation: int) -> None:
        while True:
            try:
                claimed = self._claim(generation)
                if claimed is None:
                    return
                record, cancel_flag = claimed
                if cancel_flag is None:  # the journal refused to mark it running: it failed
                    self._announce(record)
                    continue
                self._emit(JobEvent(record.id, "started", record.kind, reply_to=record.reply_to))
                self._run(record, cancel_flag)
            except Exception:  # a bug; the worker must live on for the next jobs
                log.exception("job worker: unexpected error; carrying on")
                time.sleep(1.0)

    def _claim(self, generation: int) -> Optional[tuple[JobRecord, Optional[threading.Event]]]:
        """The next queued job, marked running (with its cancel flag), or failed (flag None) if the journal
        cannot say it runs; None once the service stopped."""
        with self._lock:
            while True:
                while not self._queue and generation == self._generation:
                    self._lock.wait()
                if generation != self._generation:
                    return None
                _, _, job_id = heapq.heappop(self._queue)
                self._write_unjournaled()
                record = self.journal.get(job_id)
                if record is None or record.state != "queued":
                    continue  # cancelled while queued
                try:
                    self.journal.update(job_id, state="running", attempts=record.attempts + 1, stage="",
                                        fraction=0.0, updated=time.time())
                except JournalWriteError as error:
                    return self._finish(job_id, "failed", error=f"not started: {error}"), None
                flag = self._running[job_id] = threading.Event()
                return self.journal.get(job_id), flag

    def _run(self, record: JobRecord, cancel_flag: threading.Event) -> None:
        throttle = ProgressThrottle()

        def progress(stage: str, fraction: float) -> None:
            if cancel_flag.is_set():
                raise _Cancelled()
            if throttle.offer(stage, fraction):
                self._progress(record, stage, fraction)

        try:
            result = RUNNERS[record.kind](self.engine, record.request, progress)
            last = throttle.flush()
            if last is not None:
                self._progress(record, *last)
        except _Cancelled:
            self._end(record, "cancelled")
        except _JournalFailed as failure:
            self._end(record, "failed", error=f"stopped: {failure}")
        except CuesmithError as error:
            self._end(record, "failed", error=str(error))
        except Exception as error:  # a bug, not the user's input: keep the traceback in the log
            log.exception("job %s (%s) crashed", record.id, record.kind)
            self._end(record, "failed", error=f"internal error: {type(error).__name__}: {error}")
        else:
            self._end(record, "done", result=result)

    def _progress(self, record: JobRecord, stage: str, fraction: float) -> None:
        try:
            self.journal.update(record.id, stage=stage, fraction=float(fraction), updated=time.time())
        except JournalWriteError as error:
            raise _JournalFailed(str(error)) from None
        self._emit(JobEvent(record.id, "progress", record.kind, stage=stage, fraction=float(fraction),
                            reply_to=record.reply_to))

    def _end(self, record: JobRecord, state: str, result: str = "", error: str = "") -> None:
        """Journal the outcome, send its event, then wake `wait` (so a waiter has seen every event)."""
        with self._lock:
            self._running.pop(record.id, None)
            ended = self._finish(record.id, state, result=result, error=error)
        self._announce(ended)

    def _announce(self, record: JobRecord) -> None:
        """Send a finished job's last event, then let `wait` return it."""
        event = {"done": "result", "failed": "failed", "cancelled": "cancelled"}[record.state]
        self._emit(JobEvent(record.id, event, record.kind, result=record.result, message=record.error,
                            reply_to=record.reply_to))
        with self._lock:
            self._settling.discard(record.id)
            self._lock.notify_all()

    def _finish(self, job_id: str, state: str, result: str = "", error: str = "") -> JobRecord:
        """Journal the final state; the caller holds the lock, then calls `_announce`. If the journal refuses
        the write, the job is failed in memory (its final event still goes out) and written when it can be."""
        self._settling.add(job_id)
        fields = {"state": state, "result": result, "error": error, "updated": time.time()}
        if state == "done":
            fields["fraction"] = 1.0
        try:
            self.journal.update(job_id, **fields)
        except JournalWriteError as refused:
            log.error("job %s: %s", job_id, refused)
            if state != "failed":
                fields.update(state="failed", error=f"{refused} (the job ended {state} but cannot be recorded)")
            self._unjournaled[job_id] = replace(self.journal.get(job_id), **fields)
            return self._unjournaled[job_id]
        return self.journal.get(job_id)

    def _write_unjournaled(self) -> None:
        """Journal the outcomes the journal refused before (the caller holds the lock); those it still
        refuses stay in memory, and a restart runs their jobs again."""
        for job_id, record in list(self._unjournaled.items()):
            try:
                self.journal.update(job_id, state=record.state, result=record.result, error=record.error,
                                    fraction=record.fraction, updated=record.updated)
            except JournalWriteError:
                return
            del self._unjournaled[job_id]

    def _known(self, job_id: str) -> JobRecord:
        record = self.get(job_id)
        if record is None:
            raise CuesmithError(f"no job {job_id!r}")
        return record

    def _emit(self, event: JobEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # one broken subscriber must not stop the job or the others
                log.exception("job event subscriber failed on %s", event)


def import_job_modules() -> None:
    """Import what jobs run on (numpy, ONNX Runtime, the pipelines) in this thread before any worker starts.
    A worker importing numpy while another thread imports onnxruntime (which imports numpy) can be handed a
    half-initialised module: a resumed job failed with numpy's "partially initialized module" ImportError."""
    import numpy  # noqa: F401

    from .. import critique  # noqa: F401
    from ..music import audio, render  # noqa: F401
    from ..pipelines import job  # noqa: F401
    from ..runtime import sessions  # noqa: F401
    from ..video import analysis  # noqa: F401
