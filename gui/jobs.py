"""Jobs: submit a video, a clip range or a timeline file; live progress, cancel, errors in plain words."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                             QScrollArea, QVBoxLayout, QWidget)

from .critique_view import label
from .drop_zone import DropZone

TIMELINE_SUFFIXES = (".edl", ".xml", ".fcpxml", ".otio")
VIDEO_PATTERN = "Video or timeline (*.mp4 *.mov *.mkv *.webm *.avi *.m4v *.mxf *.edl *.xml *.fcpxml *.otio);;" \
                "Result (*.json);;All files (*)"
FINISHED = ("done", "failed", "cancelled")


def score_request(path: str, start: Optional[float] = None, end: Optional[float] = None) -> dict:
    """A score request for a dropped file: a timeline file alone, or a video with an optional clip range."""
    path = str(Path(path).resolve())
    if path.lower().endswith(TIMELINE_SUFFIXES):
        return {"timeline": path}
    request = {"video": path, "stems": True}
    if start:
        request["start"] = start
    if end:
        request["end"] = end
    return request


@dataclass
class JobInfo:
    job_id: str
    kind: str
    title: str
    state: str = "queued"
    result: str = ""
    message: str = ""
    origin: str = "jobs"  # which view asked for it: "jobs" | "critique" | "regenerate"


class JobRow(QWidget):
    cancel_requested = pyqtSignal(str)
    open_requested = pyqtSignal(str)  # result path

    def __init__(self, info: JobInfo, parent=None):
        super().__init__(parent)
        self.info = info
        self.title = label(f"{info.kind}: {info.title}", wrap=False)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setFormat("queued")
        self.bar.setAccessibleName(f"progress of {info.title}")
        self.message = label("", "error")
        self.message.hide()
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Cancel this job")
        self.open = QPushButton("Open")
        self.open.hide()
        self.cancel.clicked.connect(lambda: self.cancel_requested.emit(self.info.job_id))
        self.open.clicked.connect(lambda: self.open_requested.emit(self.info.result))
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel)
        row.addWidget(self.open)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 4)
        layout.addWidget(self.title)
        layout.addLayout(row)
        layout.addWidget(self.message)

    def apply(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "progress":
            self.info.state = "running"
            self.bar.setValue(round(1000 * min(1.0, max(0.0, float(event.get("fraction") or 0.0)))))
            self.bar.setFormat(f"{event.get('stage') or 'running'} %p%")
        elif kind == "result":
            self.finish("done", "done")
            self.bar.setValue(1000)
            self.info.result = str(event.get("result") or "")
            self.open.show()
        elif kind == "failed":
            self.show_error(event.get("message") or "the job failed")
        elif kind == "cancelled":
            self.finish("cancelled", "cancelled")

    def finish(self, state: str, text: str) -> None:
        self.info.state = state
        self.bar.setFormat(text)
        self.cancel.setEnabled(False)

    def show_error(self, message: str) -> None:
        self.finish("failed", "failed")
        self.show_message(message)

    def show_message(self, message: str) -> None:
        self.info.message = message
        self.message.setText(message)
        self.message.show()


class JobsView(QWidget):
    submit_requested = pyqtSignal(str, dict, str, str)  # kind, request, title, origin
    cancel_requested = pyqtSignal(str)
    result_ready = pyqtSignal(object)  # JobInfo of a job that finished with a result
    open_result = pyqtSignal(str)  # a result file to show
    message = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: dict[str, JobRow] = {}
        self.early: dict[str, list[dict]] = {}  # events that came before the job's id did
        self.drop = DropZone("Drop a video, a timeline (EDL, XML, FCPXML, OTIO) or a result.json here",
                             VIDEO_PATTERN)
        self.start = self.seconds_box("clip start (s); 0: from the beginning")
        self.end = self.seconds_box("clip end (s); 0: to the end")
        self.list = QVBoxLayout()
        self.list.addStretch(1)
        self.empty = label("No jobs yet.", "dim")
        self.build()
        self.drop.dropped.connect(self.on_files)

    @staticmethod
    def seconds_box(tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(0.0, 86400.0)
        box.setDecimals(2)
        box.setSuffix(" s")
        box.setSpecialValueText("—")
        box.setToolTip(tip)
        box.setAccessibleName(tip)
        return box

    def build(self) -> None:
        form = QFormLayout()
        form.addRow("Clip &start", self.start)
        form.addRow("Clip &end", self.end)
        pick = QPushButton("&Pick a video or timeline… (Ctrl+O)")
        pick.clicked.connect(self.drop.pick)
        holder = QWidget()
        holder.setLayout(self.list)
        self.list.insertWidget(0, self.empty)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(holder)
        layout = QVBoxLayout(self)
        layout.addWidget(self.drop)
        layout.addWidget(pick)
        layout.addLayout(form)
        layout.addWidget(QLabel("Jobs"))
        layout.addWidget(scroll, 1)

    def on_files(self, paths: list[str]) -> None:
        for path in paths:
            if path.lower().endswith(".json"):
                self.open_result.emit(path)
                continue
            request = score_request(path, self.start.value() or None, self.end.value() or None)
            if self.end.value() and self.start.value() >= self.end.value():
                self.message.emit("the clip end must come after its start")
                return
            self.submit_requested.emit("score", request, self.title_of(path), "jobs")

    def title_of(self, path: str) -> str:
        start, end = self.start.value(), self.end.value()
        if path.lower().endswith(TIMELINE_SUFFIXES) or not (start or end):
            return Path(path).name
        return f"{Path(path).name} [{start:.1f}–{end:.1f} s]" if end else f"{Path(path).name} [from {start:.1f} s]"

    def add_job(self, info: JobInfo) -> JobRow:
        row = JobRow(info)
        row.cancel_requested.connect(self.cancel_requested)
        row.open_requested.connect(self.open_result)
        self.rows[info.job_id] = row
        self.empty.hide()
        self.list.insertWidget(0, row)
        for event in self.early.pop(info.job_id, []):
            self.on_event(event)
        return row

    def add_failed_submit(self, title: str, message: str) -> None:
        """A job the engine refused: shown as a failed row so the user sees why."""
        row = JobRow(JobInfo(job_id="", kind="score", title=title))
        row.show_error(f"not submitted: {message}")
        self.empty.hide()
        self.list.insertWidget(0, row)

    def on_event(self, event: dict) -> None:
        job_id = str(event.get("job_id", ""))
        row = self.rows.get(job_id)
        if row is None:
            self.early.setdefault(job_id, []).append(event)
            return
        row.apply(event)
        if event.get("event") == "result":
            self.result_ready.emit(row.info)

    def running_jobs(self) -> list[str]:
        return [job_id for job_id, row in self.rows.items() if row.info.state not in FINISHED]
