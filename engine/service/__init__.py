"""The engine's job service: score, critique and analyze jobs in a priority queue, journaled in SQLite.

    svc = JobService(journal="jobs.sqlite", output_root="jobs", max_running=1, max_attempts=2)
    svc.subscribe(print)                     # JobEvent: accepted, started, progress..., result | failed | cancelled
    svc.start()                              # resumes what the journal holds unfinished
    job = svc.submit("score", {"video": "/abs/clip.mp4"}, priority=0, reply_to="udp:127.0.0.1:9000")
    svc.wait(job.id).result                  # .../jobs/<job_id>/result.json

- Requests are checked before they are accepted (`requests.py`: the schema's own
  checks, JSON value types, input files exist, out_dir under the output root);
  a bad one raises CuesmithError and nothing is journaled.
- `submit` returns once the job's row is committed (WAL, synchronous=FULL):
  killing the engine loses no accepted job. On `start()` queued jobs are queued
  again; jobs left `running` by a dead engine run again while attempts <
  max_attempts, else end `failed` saying the engine stopped during the job.
- Higher priority first, FIFO within a priority; `max_running` worker threads
  share one `Engine` (models load once; ONNX Runtime releases the GIL).
- Cancelling a queued job is immediate; a running one stops at its next
  progress report (the callback raises) and ends `cancelled`.
- Progress events come from the pipelines' own `progress(stage, fraction)`
  calls, at most ~10 per second per job (the first and the last always sent).
- Every job writes only under `output_root`; existing files are never replaced.
- One started service per journal (a lock file beside it, held from start to stop).
"""
from .records import JOB_KINDS, JOB_STATES, JobEvent, JobRecord
from .requests import AnalyzeRequest
from .service import JobService

__all__ = ["JOB_KINDS", "JOB_STATES", "AnalyzeRequest", "JobEvent", "JobRecord", "JobService"]
