"""Checking a job's request before it is accepted: schema, JSON value types, input files, out_dir.

A request that passes comes back as a plain dict with absolute input paths and
its out_dir resolved under the output root, ready to be journaled and run
after a restart from any working directory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CuesmithError
from ..schema import AnalyzeRequest, CritiqueRequest, DescribeRequest, ScoreRequest


REQUEST_TYPES = {"score": ScoreRequest, "critique": CritiqueRequest, "analyze": AnalyzeRequest,
                 "describe": DescribeRequest}


def prepare_request(kind: str, values: Any, job_id: str, output_root: Path) -> dict[str, Any]:
    """The request of a new job as it will be journaled; a CuesmithError if it cannot be run."""
    if kind not in REQUEST_TYPES:
        raise CuesmithError(f"unknown job kind {kind!r} (expected {', '.join(REQUEST_TYPES)})")
    if not isinstance(values, dict):
        raise CuesmithError(f"a {kind} request is a JSON object, got {type(values).__name__}")
    request_type = REQUEST_TYPES[kind]
    try:
        request = request_type.from_dict(values)
    except (TypeError, ValueError) as error:  # a value the schema's checks could not compare
        raise CuesmithError(f"bad {kind} request: {error}") from None
    checked = request.to_dict()
    absolute_inputs(checked)
    checked["out_dir"] = str(resolve_out_dir(checked.get("out_dir") or "", output_root, job_id))
    return checked


def absolute_inputs(request: dict[str, Any]) -> None:
    """Input files made absolute (the engine may restart elsewhere) and checked to exist."""
    for key in ("video", "music", "timeline", "lyrics"):
        if request.get(key):
            request[key] = existing_file(request[key])
    for clip in request.get("clips") or []:
        clip["video"] = existing_file(clip["video"])


def existing_file(path: str) -> str:
    absolute = Path(path).expanduser().absolute()
    if not absolute.is_file():
        reason = "is a folder, not a file" if absolute.is_dir() else "no such file"
        raise CuesmithError(reason, absolute)
    return str(absolute)


def resolve_out_dir(out_dir: str, output_root: Path, job_id: str) -> Path:
    """Empty: <root>/<job_id>; relative: under the root; absolute: must resolve inside the root."""
    root = output_root.resolve()
    if not out_dir:
        return root / job_id
    wanted = Path(out_dir).expanduser()
    resolved = (wanted if wanted.is_absolute() else root / wanted).resolve()
    if not resolved.is_relative_to(root):
        raise CuesmithError(f"out_dir is outside the output root {root}", out_dir,
                            hint="leave out_dir empty, give a folder relative to the root, or start the engine "
                                 "with another --output-root")
    if resolved.exists() and not resolved.is_dir():
        raise CuesmithError("out_dir exists and is not a folder", resolved)
    return resolved
