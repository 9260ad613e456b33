"""What the service says about a job: its journal row (`JobRecord`) and its events (`JobEvent`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

JOB_KINDS = ("score", "critique", "analyze", "describe")
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
EVENTS = ("accepted", "started", "progress", "result", "failed", "cancelled")


@dataclass
class JobRecord:
    id: str  # 12 hex characters
    kind: str  # one of JOB_KINDS
    state: str  # one of JOB_STATES
    priority: int
    request: dict[str, Any]  # the validated request, out_dir resolved under the output root
    reply_to: str = ""  # opaque to the service: where the bridge sends this job's events
    stage: str = ""
    fraction: float = 0.0
    result: str = ""  # the result file: result.json, critique.json or analysis.json
    error: str = ""
    attempts: int = 0  # how many times a worker started it
    created: float = 0.0  # Unix time
    updated: float = 0.0

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobEvent:
    job_id: str
    event: str  # one of EVENTS
    kind: str  # the job's kind
    stage: str = ""
    fraction: float = 0.0
    result: str = ""
    message: str = ""
    reply_to: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
