"""The one error type users see: a short sentence naming the file and the problem."""
from __future__ import annotations

from pathlib import Path


class CuesmithError(Exception):
    """A problem with the user's input or setup; the CLI prints it on one line and exits 2."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None, hint: str | None = None):
        self.path = None if path is None else Path(path)
        self.hint = hint
        text = f"{self.path}: {message}" if self.path is not None else message
        if hint:
            text = f"{text} ({hint})"
        super().__init__(text)
