"""Reading and writing files safely: never half a file, never over a user's file by accident, never
outside a confined root (the engine service's output root) even if a folder is swapped for a symlink."""
from __future__ import annotations

import errno
import json
import os
import re
import secrets
import stat
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from .errors import CuesmithError

PART_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.part$")  # our temporaries: .<name>.<8 random>.part
STARTED = time.time()  # a temporary older than this process and still there belongs to a killed one
_ROOTS: list[Path] = []  # confined roots, see `confine_writes`
_SWEPT: set[str] = set()
_UNDO: list["WrittenFiles"] = []  # open `undone_on_failure` blocks
_LOCK = threading.Lock()


def file_mode() -> int:
    """The mode open() would give a new file: mkstemp's 0600 would hide outputs from other users' tools."""
    try:  # Linux shows the umask without changing it (os.umask would, for every thread, for a moment)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def regular_file(path: str | Path, kind: str = "file") -> Path:
    """`path` if it names a regular file (through symlinks); else a CuesmithError saying what it is.
    A FIFO would block the reader and /dev/zero never ends: neither is a media file."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CuesmithError("no such file", path, "check the path") from None
    except OSError as error:
        raise CuesmithError(f"cannot read ({error.strerror or error})", path) from None
    if stat.S_ISREG(mode):
        return path
    what = ("a folder (directory)" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    a_kind = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    raise CuesmithError(f"is {what}, not {a_kind}", path, f"give {a_kind} on disk")


class WrittenFiles:
    """What `atomic_path` made while an `undone_on_failure` block ran: files, and folders it created."""

    def __init__(self):
        self.files: list[Path] = []
        self.folders: list[Path] = []

    def undo(self) -> None:
        for path in reversed(self.files):
            try:
                if path.is_file() and not path.is_symlink():
                    path.unlink()
            except OSError:
                pass
        for folder in reversed(self.folders):
            try:
                folder.rmdir()  # only if empty: a folder someone else wrote into stays
            except OSError:
                pass


@contextmanager
def undone_on_failure() -> Iterator[WrittenFiles]:
    """Files and folders written (by any thread) inside the block are removed again if the block fails,
    so a failed command leaves no partial outputs; those that were there before are never touched."""
    written = WrittenFiles()
    with _LOCK:
        _UNDO.append(written)
    try:
        yield written
    except BaseException:
        written.undo()
        raise
    finally:
        with _LOCK:
            _UNDO.remove(written)


def _note(kind: str, path: Path) -> None:
    with _LOCK:
        for written in _UNDO:
            getattr(written, kind).append(Path(os.path.abspath(path)))


def confine_writes(root: str | Path) -> Path:
    """From now on, a file this process writes (`atomic_path`) at a path under `root` must really land under
    it: each folder below the root is opened without following symlinks, and checked again just before
    the rename. The engine service confines its output root; the cache and the CLI's --out are not."""
    root = Path(root).resolve()
    with _LOCK:
        if root not in _ROOTS:
            _ROOTS.append(root)
    return root


def confining_root(path: Path) -> Optional[Path]:
    absolute = Path(os.path.abspath(path))
    with _LOCK:
        return next((root for root in _ROOTS if absolute.is_relative_to(root)), None)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.
    A write the disk or the folder refuses (full, read-only, ...) is a CuesmithError naming `path`."""
    target = Path(path)
    try:
        with _temporary(target) as (folder_fd, tmp_name, tmp_path):
            try:
                yield tmp_path
            except OSError as error:
                raise _write_error(target, error) from None
            _check_still_confined(target, folder_fd)
            os.replace(tmp_name, target.name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
            _note("files", target)
    except OSError as error:
        raise _write_error(target, error) from None


def _write_error(target: Path, error: OSError) -> CuesmithError:
    return CuesmithError(f"cannot write ({error.strerror or error})", target,
                         "free some space or choose a folder you can write to")


@contextmanager
def _temporary(target: Path) -> Iterator[tuple[int, str, Path]]:
    """(folder fd, temporary's name in it, a path to the temporary that does not go through the folder's
    name again); the temporary is removed unless renamed."""
    root = confining_root(target)
    folder_fd = _open_confined(root, target.parent) if root is not None else _open_folder(target.parent)
    try:
        _sweep_stale_parts(folder_fd, target.parent)
        name = f".{target.name}.{secrets.token_hex(4)}.part"
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, file_mode(),
                     dir_fd=folder_fd)
        os.close(fd)
        try:
            yield folder_fd, name, _through_fd(folder_fd, target.parent) / name
        finally:
            try:
                os.unlink(name, dir_fd=folder_fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(folder_fd)


def make_folders(folder: str | Path) -> Path:
    """`folder` and its missing parents, made the way `atomic_path` makes them: a failed
    `undone_on_failure` block removes them again if they are still empty."""
    folder = Path(folder)
    missing = [f for f in (folder, *folder.parents) if not f.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for made in reversed(missing):
        _note("folders", made)
    return folder


def _open_folder(folder: Path) -> int:
    make_folders(folder)
    return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _open_confined(root: Path, folder: Path) -> int:
    """An fd of `folder`, reached from `root` one component at a time without following a symlink
    (missing folders are made on the way); a CuesmithError if a component is a symlink or not a folder."""
    parts = Path(os.path.abspath(folder)).relative_to(root).parts
    fd, here = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), root
    try:
        for part in parts:
            here = here / part
            try:
                os.mkdir(part, dir_fd=fd)
                _note("folders", here)
            except FileExistsError:
                pass
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise CuesmithError(f"is not a folder inside the output root {root} (a symlink or a file); "
                                        "nothing written", folder) from None
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _through_fd(folder_fd: int, folder: Path) -> Path:
    """A path to the open folder itself: /proc/self/fd/N resolves to the folder the fd holds, so a writer
    that opens the temporary by name cannot be sent elsewhere by a symlink swapped in meanwhile."""
    through = Path(f"/proc/self/fd/{folder_fd}")
    return through if through.is_dir() else folder


def _check_still_confined(target: Path, folder_fd: int) -> None:
    root = confining_root(target)
    if root is None:
        return
    where = Path(os.readlink(f"/proc/self/fd/{folder_fd}")) if Path("/proc/self/fd").is_dir() \
        else target.parent.resolve()
    if not where.is_relative_to(root):
        raise CuesmithError(f"was moved outside the output root {root}; nothing written", target.parent)


def _sweep_stale_parts(folder_fd: int, folder: Path) -> None:
    """Remove our own temporaries that a killed process left in `folder` (once per folder and process):
    only names of our pattern, last written before this process started."""
    key = os.path.abspath(folder)
    with _LOCK:
        if key in _SWEPT:
            return
        _SWEPT.add(key)
    try:
        names = os.listdir(folder_fd)
    except OSError:
        return
    for name in names:
        if not PART_NAME.match(name):
            continue
        try:
            info = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < STARTED:
                os.unlink(name, dir_fd=folder_fd)
        except OSError:
            pass


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json_atomic(path: str | Path, obj: Any, indent: Optional[int] = 2) -> Path:
    """`indent=None`: one line, written by json's C encoder (indented JSON takes its Python one, ~5x slower)."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))


def unused_path(path: str | Path) -> Path:
    """`path` if free, else `name-2.ext`, `name-3.ext`, ...: outputs never replace a user's file."""
    candidate = Path(path)
    n = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = candidate.with_name(f"{Path(path).stem}-{n}{Path(path).suffix}")
        n += 1
    return candidate
