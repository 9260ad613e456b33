"""The job journal: one SQLite table, one row per accepted job, committed before `submit` returns.

WAL mode with synchronous=FULL: a commit is on disk when `execute` returns,
so a job survives the engine being killed (or the machine losing power) right
after it was accepted. One connection shared by the service's threads,
guarded by a lock.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Optional

from ..errors import CuesmithError
from .records import JOB_STATES, JobRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- submission order: FIFO within a priority, newest first in lists
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL,
    request TEXT NOT NULL,
    reply_to TEXT NOT NULL,
    stage TEXT NOT NULL,
    fraction REAL NOT NULL,
    result TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
"""
COLUMNS = ("id", "kind", "state", "priority", "request", "reply_to", "stage", "fraction", "result", "error",
           "attempts", "created", "updated")


class JournalWriteError(CuesmithError):
    """The journal refused a write (disk full, read-only, I/O error): the service fails the job it was for."""


class Journal:
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise CuesmithError("is a folder; the journal is a file", self.path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as error:
            raise CuesmithError(f"cannot open the job journal ({error})", self.path,
                                hint="give another --journal path or move this file away") from None

    def insert(self, record: JobRecord) -> int:
        """Commit a new job; its sequence number (submission order)."""
        row = self._row(record)
        try:
            with self._lock:
                cursor = self._db.execute(
                    f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", row)
                return cursor.lastrowid
        except sqlite3.Error as error:  # disk full, read-only, locked too long: the job is not accepted
            raise self._write_error(error) from None

    def update(self, job_id: str, **values) -> None:
        unknown = set(values) - set(COLUMNS)
        assert not unknown, f"not journal columns: {unknown}"
        if "state" in values:
            assert values["state"] in JOB_STATES, values["state"]
        assignments = ", ".join(f"{name} = ?" for name in values)
        try:
            with self._lock:
                self._db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id))
        except sqlite3.Error as error:
            raise self._write_error(error) from None

    def _write_error(self, error: sqlite3.Error) -> JournalWriteError:
        return JournalWriteError(f"cannot write the job journal ({error})", self.path,
                                 hint="free space on its disk; the engine keeps running")

    def get(self, job_id: str) -> Optional[JobRecord]:
        rows = self._select("WHERE id = ?", (job_id,))
        return rows[0][1] if rows else None

    def newest(self, limit: int) -> list[JobRecord]:
        return [record for _, record in self._select("ORDER BY seq DESC LIMIT ?", (max(0, limit),))]

    def in_states(self, states: Iterable[str]) -> list[tuple[int, JobRecord]]:
        """(seq, record) of the jobs in `states`, oldest first."""
        states = tuple(states)
        return self._select(f"WHERE state IN ({', '.join('?' * len(states))}) ORDER BY seq", states)

    def counts(self) -> dict[str, int]:
        with self._lock:
            found = dict(self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        return {state: found.get(state, 0) for state in JOB_STATES}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _select(self, where: str, parameters: tuple) -> list[tuple[int, JobRecord]]:
        with self._lock:
            rows = self._db.execute(f"SELECT seq, {', '.join(COLUMNS)} FROM jobs {where}", parameters).fetchall()
        return [(row[0], self._record(row[1:])) for row in rows]

    @staticmethod
    def _row(record: JobRecord) -> tuple:
        values = record.to_dict()
        values["request"] = json.dumps(values["request"], ensure_ascii=False, allow_nan=False)
        return tuple(values[name] for name in COLUMNS)

    @staticmethod
    def _record(row: tuple) -> JobRecord:
        values = dict(zip(COLUMNS, row))
        values["request"] = json.loads(values["request"])
        return JobRecord(**values)
