"""The panel's link to the engine: `BridgeClient` calls off the GUI thread, events as a Qt signal,
and a `cuesmith serve` of its own when no engine answers."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

from PyQt6.QtCore import QObject, pyqtSignal

from cuesmith.engine.errors import CuesmithError

from .settings import PanelSettings

START_TIMEOUT = 30.0  # seconds for a started engine to answer


class EngineLink(QObject):
    event = pyqtSignal(dict)  # job events, on the GUI thread
    state = pyqtSignal(str, str)  # "connecting" | "starting" | "connected" | "down", and a sentence
    info = pyqtSignal(dict)  # the engine's status: version, providers, models, queued, running
    _reply = pyqtSignal(object, object)  # (callback, value): runs the callback on the GUI thread

    def __init__(self, settings: PanelSettings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.client = None
        self.process: Optional[subprocess.Popen] = None
        self.log_path: Optional[Path] = None
        self.connected = False
        self.closed = False
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuesmith-link")
        self._reply.connect(lambda callback, value: callback(value))

    # -- connecting --
    def connect_engine(self) -> None:
        """Ping the engine (start one when none answers and that is allowed); reports through `state`."""
        if self.closed:
            return
        self.connected = False
        self.state.emit("connecting", f"connecting to {self.where}…")
        self.pool.submit(self._connect)

    @property
    def where(self) -> str:
        s = self.settings
        return f"{s.transport} {s.host}:{s.port}"

    def _connect(self) -> None:
        try:
            self._open_client()
            try:
                self.client.ping()
                how = f"engine {self.client.version} at {self.where}"
            except CuesmithError as error:
                if not self.settings.start_engine:
                    raise
                self.state.emit("starting", f"no engine answered at {self.where} ({error}); starting one…")
                self._start_engine()
                how = f"started an engine (cuesmith serve, pid {self.process.pid}) at {self.where}"
            status = self.client.status()
        except CuesmithError as error:
            self.state.emit("down", f"engine down: {error}")
            return
        self.connected = True
        self.state.emit("connected", how)
        self.info.emit(status)

    def _open_client(self) -> None:
        from cuesmith.plugin_bridge.client import BridgeClient

        if self.client is not None:
            self.client.close()
        s = self.settings
        self.client = BridgeClient(host=s.host, port=s.port, transport=s.transport, token=s.token or None,
                                   timeout=3.0, on_event=self.forward)

    def forward(self, event: dict) -> None:
        """On the client's receiver thread: hand the event to the GUI thread (none once the link is closed)."""
        if not self.closed:
            self.event.emit(event)

    def serve_command(self) -> list[str]:
        s = self.settings
        ports = ["--port", "0", "--ws-port", str(s.port)] if s.transport == "ws" \
            else ["--port", str(s.port), "--ws-port", "0"]
        command = [sys.executable, "-m", "cuesmith.engine.cli", "serve", "--host", s.host, *ports]
        command += ["--token", s.token] if s.token else []
        command += ["--output-root", s.output_folder] if s.output_folder else []
        return command

    def _start_engine(self) -> None:
        env = dict(os.environ)
        if self.settings.llm_model:
            env["CUESMITH_LLM"] = self.settings.llm_model
        if self.settings.soundfont:
            env["CUESMITH_SOUNDFONT"] = self.settings.soundfont
        self.stop_engine()
        fd, log = tempfile.mkstemp(prefix="cuesmith-serve-", suffix=".log")
        self.log_path = Path(log)
        with os.fdopen(fd, "wb") as out:
            self.process = subprocess.Popen(self.serve_command(), stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CuesmithError(f"the engine did not start: {self.last_log_line()}", hint=f"log: {self.log_path}")
            try:
                self.client.ping()
                return
            except CuesmithError:
                time.sleep(0.3)
        raise CuesmithError(f"the started engine did not answer within {START_TIMEOUT:.0f} s",
                            hint=f"log: {self.log_path}")

    def last_log_line(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines() if self.log_path else []
        return lines[-1] if lines else "no output"

    def stop_engine(self) -> None:
        """Stop the engine this panel started (never one it found running)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    # -- requests --
    def call(self, method: str, *args, on_result: Callable = lambda value: None,
             on_error: Callable[[str], None] = lambda message: None) -> None:
        """client.<method>(*args) on the link's thread; the callback runs on the GUI thread."""
        if self.client is None or self.closed:
            on_error("not connected to an engine")
            return

        def run() -> None:
            try:
                value = getattr(self.client, method)(*args)
            except CuesmithError as error:
                self._reply.emit(on_error, str(error))
            except Exception as error:  # a bug or an OS error must not kill the link thread silently
                self._reply.emit(on_error, f"{type(error).__name__}: {error}")
            else:
                self._reply.emit(on_result, value)

        self.pool.submit(run)

    def refresh(self) -> None:
        """Ask the engine's status; an engine that stopped answering is reported down."""
        self.call("status", on_result=self.info.emit, on_error=self.lost)

    def lost(self, message: str) -> None:
        self.connected = False
        self.state.emit("down", f"engine down: {message}")

    def heartbeat(self) -> None:
        if self.connected:
            self.refresh()

    def close(self) -> None:
        self.closed = True
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.client is not None:
            self.client.close()
        self.stop_engine()
