"""The panel's main window: engine line, then tabs for jobs, the result, regenerate, critique-only, describe,
settings."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from PyQt6.QtCore import QSettings, Qt, QTimer
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import QHBoxLayout, QMainWindow, QPushButton, QTabWidget, QVBoxLayout, QWidget

from cuesmith.engine.errors import CuesmithError

from .critique_only import CritiqueOnlyView
from .critique_view import label
from .describe_view import DescribeView
from .engine_link import EngineLink
from .jobs import JobInfo, JobsView
from .regenerate import RegenerateView
from .result_data import ResultData, load_result
from .result_view import ResultView
from .settings import PanelSettings, SettingsView

PROVIDER_NAMES = {"CPUExecutionProvider": "CPU", "CUDAExecutionProvider": "CUDA",
                  "TensorrtExecutionProvider": "TensorRT", "CoreMLExecutionProvider": "CoreML",
                  "DmlExecutionProvider": "DirectML", "ROCMExecutionProvider": "ROCm"}
PANEL_SIZE = (420, 860)
HEARTBEAT_MS = 10_000  # how often a connected panel checks the engine still answers


def provider_names(providers) -> str:
    """'CPU, CUDA' from the engine's {"available": [...], "stages": {...}} (or a plain list/dict)."""
    if isinstance(providers, dict):
        providers = providers.get("available") or list(providers.get("stages", providers).values())
    names = [PROVIDER_NAMES.get(str(p), str(p).replace("ExecutionProvider", "")) for p in providers or []]
    return ", ".join(dict.fromkeys(names)) or "none"


def model_names(models) -> str:
    return ", ".join(Path(str(m)).name for m in (models or [])) or "none"


class PanelWindow(QMainWindow):
    def __init__(self, store: QSettings, overrides: Optional[dict] = None, connect: bool = True):
        super().__init__()
        self.store = store
        self.settings = PanelSettings.load(store)
        for key, value in (overrides or {}).items():
            setattr(self.settings, key, value)
        self.link = EngineLink(self.settings, self)
        self.jobs_info: dict[str, JobInfo] = {}
        self.engine_label = label("engine: not connected", wrap=True)
        self.engine_info = label("", "dim")
        self.reconnect = QPushButton("Re&connect")
        self.reconnect.setToolTip("Connect to the engine again (F5)")
        self.tabs = QTabWidget()
        self.jobs = JobsView()
        self.result_view = ResultView()
        self.regenerate = RegenerateView()
        self.critique_only = CritiqueOnlyView()
        self.describe_view = DescribeView()
        self.settings_view = SettingsView(self.settings)
        self.build()
        self.wire()
        self.shortcuts()
        self.setWindowTitle("cuesmith")
        self.resize(*PANEL_SIZE)
        self.setMinimumWidth(320)
        self.heartbeat = QTimer(self)
        self.heartbeat.timeout.connect(self.link.heartbeat)
        self.heartbeat.start(HEARTBEAT_MS)
        if connect:
            self.link.connect_engine()

    def build(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.engine_label, 1)
        top.addWidget(self.reconnect)
        for view, name in ((self.jobs, "&Jobs"), (self.result_view, "Re&sult"), (self.regenerate, "Re&generate"),
                           (self.critique_only, "Cr&itique"), (self.describe_view, "Descri&be"),
                           (self.settings_view, "Se&ttings")):
            self.tabs.addTab(view, name)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addLayout(top)
        layout.addWidget(self.engine_info)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(body)

    def wire(self) -> None:
        self.link.state.connect(self.on_state)
        self.link.info.connect(self.on_info)
        self.link.event.connect(self.on_event)
        self.reconnect.clicked.connect(self.link.connect_engine)
        for view in (self.jobs, self.regenerate, self.critique_only, self.describe_view):
            view.submit_requested.connect(self.submit)
            view.message.connect(self.say)
        self.jobs.cancel_requested.connect(self.cancel)
        self.jobs.result_ready.connect(self.on_job_result)
        self.jobs.open_result.connect(self.open_result)
        self.regenerate.keep.connect(self.open_result)
        self.result_view.error.connect(self.say)
        self.settings_view.applied.connect(self.apply_settings)

    def shortcuts(self) -> None:
        bindings = {
            "Ctrl+O": self.jobs.drop.pick, "F5": self.link.connect_engine, "Ctrl+R": self.regenerate.submit,
            "Space": self.result_view.preview.toggle, "Ctrl+.": self.cancel_latest, "Ctrl+Q": self.close,
        }
        for index in range(self.tabs.count()):
            bindings[f"Ctrl+{index + 1}"] = lambda i=index: self.tabs.setCurrentIndex(i)
        for keys, action in bindings.items():
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(action)

    # -- engine --
    def on_state(self, state: str, message: str) -> None:
        self.engine_label.setText(message)
        self.engine_label.setObjectName("error" if state == "down" else "")
        self.engine_label.style().unpolish(self.engine_label)  # the style sheet picks the new name up
        self.engine_label.style().polish(self.engine_label)
        if state == "down":
            self.engine_info.setText("Start one with `cuesmith serve`, or check the address in Settings, then F5.")

    def on_info(self, status: dict) -> None:
        self.engine_info.setText(f"providers: {provider_names(status.get('providers'))} · models: "
                                 f"{model_names(status.get('models'))} · queued {status.get('queued', 0)}, "
                                 f"running {status.get('running', 0)}")

    def apply_settings(self, settings: PanelSettings) -> None:
        self.settings = settings
        settings.save(self.store)
        self.link.settings = settings
        self.link.connect_engine()
        self.say("settings saved")

    def say(self, message: str) -> None:
        self.statusBar().showMessage(message, 15000)

    # -- jobs --
    def submit(self, kind: str, request: dict, title: str, origin: str) -> None:
        def accepted(job_id: str) -> None:
            info = JobInfo(job_id=job_id, kind=kind, title=title, origin=origin)
            self.jobs_info[job_id] = info
            if origin == "regenerate":
                self.regenerate.add_job(job_id, title)
            self.jobs.add_job(info)
            self.say(f"submitted {title} (job {job_id})")

        def refused(message: str) -> None:
            self.jobs.add_failed_submit(title, message)
            self.say(f"{title}: not submitted: {message}")

        self.link.call("submit", kind, request, on_result=accepted, on_error=refused)
        self.say(f"submitting {title}…")

    def cancel(self, job_id: str) -> None:
        self.link.call("cancel", job_id, on_error=lambda message: self.say(f"cancel: {message}"))

    def cancel_latest(self) -> None:
        running = self.jobs.running_jobs()
        if running:
            self.cancel(running[-1])

    def on_event(self, event: dict) -> None:
        self.jobs.on_event(event)
        if event.get("event") in ("result", "failed", "cancelled"):
            self.link.refresh()  # the queued/running counts
        job_id = str(event.get("job_id", ""))
        info = self.jobs_info.get(job_id)
        if info is None or info.origin != "regenerate":
            return
        if event.get("event") == "progress":
            self.regenerate.on_progress(job_id, float(event.get("fraction") or 0.0))
        elif event.get("event") in ("failed", "cancelled"):
            self.regenerate.on_failed(job_id, event.get("message") or event["event"])

    def on_job_result(self, info: JobInfo) -> None:
        if info.kind == "analyze":
            return
        if info.kind == "describe":
            self.describe_view.show_result(info.result)
            self.tabs.setCurrentWidget(self.describe_view)
            return
        result = self.load(info.result, info.job_id)
        if result is None:
            return
        if info.origin == "regenerate":
            self.regenerate.on_result(info.job_id, result)
        else:
            self.show_result(result)

    def load(self, path: str, job_id: str = "") -> Optional[ResultData]:
        try:
            return load_result(path)
        except CuesmithError as error:
            message = f"cannot show the result: {error}"
            row = self.jobs.rows.get(job_id)
            if row is not None:
                row.show_message(message)
            if job_id in self.regenerate.rows:
                self.regenerate.on_failed(job_id, message)
            self.say(message)
            return None

    def open_result(self, path: str) -> None:
        result = self.load(path)
        if result is not None:
            self.show_result(result)

    def show_result(self, result: ResultData) -> None:
        self.result_view.show_result(result)
        self.regenerate.set_source(result)
        self.tabs.setCurrentWidget(self.result_view)

    def closeEvent(self, event) -> None:
        self.heartbeat.stop()
        self.result_view.shutdown()
        self.link.close()
        super().closeEvent(event)
