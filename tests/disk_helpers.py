"""Real full and read-only disks for tests: a tiny tmpfs mounted on a folder (needs root, as CI has)."""
from __future__ import annotations

import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@contextmanager
def tiny_filesystem(folder: Path, size: str, read_only: bool = False):
    """A real tmpfs of `size` mounted on `folder` (a full or read-only disk, not a simulation)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0777" + (",ro" if read_only else "")
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                              text=True)
    except FileNotFoundError:
        pytest.skip("no mount command here: cannot make a real full or read-only disk")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
