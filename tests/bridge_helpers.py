"""A real `cuesmith serve` for tests: a subprocess on free ports with its own journal, output root and cache.

    from bridge_helpers import running_engine, short_clip, UdpInbox

    with running_engine(tmp_path) as engine:           # or the `engine_process` fixture
        client = BridgeClient(port=engine.port)         # udp/tcp; ws: port=engine.ws_port
        ...
    engine.lines                                        # what it printed (stdout and stderr)
"""
from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / ".venv" / "bin" / "cuesmith"
LISTENING = re.compile(r"listening udp\+tcp (\S+):(\d+), ws ws://\S+:(\d+)/")


@dataclass
class EngineProcess:
    """A running `cuesmith serve` subprocess and what it printed."""
    proc: subprocess.Popen
    folder: Path
    journal: Path
    output_root: Path
    cache: Path
    token: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 0
    ws_port: int = 0
    lines: list[str] = field(default_factory=list)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        """The first printed line matching `pattern` (waits for it)."""
        return wait_for_line(self.lines, pattern, timeout, self.proc, "cuesmith serve")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)

    def token_option(self) -> str:
        """`token=...`: the engine's --token, else the one it stored in the (test session's) user config."""
        from cuesmith.engine.config import user_token

        return f"token={self.token or user_token()}"

    def client(self, transport: str = "udp", **kwargs):
        from cuesmith.plugin_bridge.client import BridgeClient

        port = self.ws_port if transport == "ws" else self.port
        return BridgeClient(self.host, port, transport=transport, token=self.token, **kwargs)


def wait_for_line(lines: list[str], pattern: str, timeout: float, proc: subprocess.Popen, name: str) -> re.Match:
    """The first of a process's printed `lines` matching `pattern`, waiting up to `timeout` s for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lines):
            found = re.search(pattern, line)
            if found:
                return found
        if proc.poll() is not None and not any(re.search(pattern, line) for line in lines):
            raise AssertionError(f"{name} exited {proc.returncode}:\n" + "\n".join(lines))
        time.sleep(0.05)
    raise AssertionError(f"{name} printed no line matching {pattern!r} within {timeout} s:\n" + "\n".join(lines))


def start_engine(folder: Path, token: Optional[str] = None, journal: Optional[Path] = None,
                 extra: tuple[str, ...] = (), timeout: float = 90.0, max_files: Optional[int] = None) -> EngineProcess:
    """Start `cuesmith serve --port 0 --ws-port 0` on a private journal, output root and cache
    (`max_files`: its hard limit on open files)."""
    folder.mkdir(parents=True, exist_ok=True)
    journal = journal or folder / "journal.sqlite"
    output_root, cache = folder / "jobs", folder / "cache"
    command = [str(CLI) if CLI.exists() else "cuesmith", "serve", "--port", "0", "--ws-port", "0",
               "--journal", str(journal), "--output-root", str(output_root), *extra]
    if token:
        command += ["--token", token]
    env = {**os.environ, "CUESMITH_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=folder, preexec_fn=None if max_files is None else lambda: file_limit(max_files))
    engine = EngineProcess(proc, folder, journal, output_root, cache, token)
    threading.Thread(target=_collect, args=(proc, engine.lines), daemon=True).start()
    found = engine.wait_for(LISTENING.pattern, timeout)
    engine.host, engine.port, engine.ws_port = found.group(1), int(found.group(2)), int(found.group(3))
    return engine


def file_limit(count: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))


def _collect(proc: subprocess.Popen, lines: list[str]) -> None:
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))


@contextmanager
def running_engine(folder: Path, **kwargs) -> Iterator[EngineProcess]:
    engine = start_engine(folder, **kwargs)
    try:
        yield engine
    finally:
        if engine.proc.poll() is None:
            engine.proc.kill()
            engine.proc.wait(30)


@pytest.fixture(scope="module")
def engine_process(tmp_path_factory) -> Iterator[EngineProcess]:
    """One `cuesmith serve` for a test module (import this fixture into the module)."""
    with running_engine(tmp_path_factory.mktemp("engine")) as engine:
        yield engine


def short_clip(path: Path, seconds: float = 3.0) -> Path:
    """A generated clip with two hard cuts (tests/media.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from media import Shot, make_video

    if not path.exists():
        third = seconds / 3
        make_video(path, [Shot(third, "warm", 0.3), Shot(third, "cold", 0.8), Shot(third, "forest", 0.2)],
                   size=(160, 90))
    return path


class UdpInbox:
    """A UDP port that collects the OSC messages sent to it (a stand-in for a host's listener)."""

    def __init__(self):
        from cuesmith.plugin_bridge.protocol import decode_packet

        self.decode = decode_packet
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.messages: queue.Queue = queue.Queue()
        self.seen: list = []
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(70000)
            except OSError:
                return
            for message in self.decode(data):
                self.messages.put(message)

    def until(self, address: str, timeout: float = 60.0):
        """The first message at `address` (those before it are kept in `seen`)."""
        return self.until_any((address,), timeout)

    def until_any(self, addresses: tuple[str, ...], timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"none of {addresses} within {timeout} s; "
                                     f"got {[m.address for m in self.seen]}") from None
            self.seen.append(message)
            if message.address in addresses:
                return message

    def close(self) -> None:
        self.sock.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
