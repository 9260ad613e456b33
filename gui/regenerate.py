"""Regenerate: tempo range, mode, density, seed, variations, model family; the variations side by side
with their critique scores, so the user keeps the best.

Each variation is its own score job (seed + i, tempo spread over the range), so each comes back with its
own critique, stems and MIDI.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QHeaderView, QPushButton, QSpinBox,
                             QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from cuesmith.engine.pipelines import families
from cuesmith.engine.schema import DENSITIES, MODES

from .critique_view import label
from .result_data import ResultData

AUTO = "auto"
SOURCE_FIELDS = ("video", "clips", "timeline", "start", "end")
COLUMNS = ("#", "tempo", "key", "overall", "rhythm", "emotion", "")


@dataclass
class RegenerateParams:
    tempo_low: Optional[float] = None  # BPM; None: from the video
    tempo_high: Optional[float] = None
    mode: Optional[str] = None
    density: Optional[str] = None
    seed: int = 0
    variations: int = 2
    family: str = "vmusprod"

    def tempo(self, i: int) -> Optional[float]:
        low, high = self.tempo_low or self.tempo_high, self.tempo_high or self.tempo_low
        if low is None or self.variations == 1:
            return low
        return round(low + (high - low) * i / (self.variations - 1), 2)


def variation_requests(source: dict, params: RegenerateParams) -> list[dict]:
    """One score request per variation, for the clip (or timeline) `source` was made from."""
    base = {k: source[k] for k in SOURCE_FIELDS if source.get(k)}
    requests = []
    for i in range(params.variations):
        request = dict(base, seed=params.seed + i, variations=1, family=params.family, stems=True)
        for key, value in (("tempo", params.tempo(i)), ("mode", params.mode), ("density", params.density)):
            if value is not None:
                request[key] = value
        requests.append(request)
    return requests


def tempo_box(tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(29, 300)
    box.setSpecialValueText(AUTO)  # 29 is the "auto" value; real tempi are 30..300
    box.setSuffix(" BPM")
    box.setToolTip(tip)
    box.setAccessibleName(tip)
    return box


def choice_box(values: tuple[str, ...], with_auto: bool = True) -> QComboBox:
    box = QComboBox()
    box.addItems(((AUTO,) if with_auto else ()) + tuple(values))
    return box


class RegenerateView(QWidget):
    submit_requested = pyqtSignal(str, dict, str, str)  # kind, request, title, origin
    keep = pyqtSignal(str)  # result path of the variation to show
    message = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.source: Optional[ResultData] = None
        self.rows: dict[str, int] = {}  # job id -> table row
        self.scores: dict[int, Optional[float]] = {}
        self.tempo_low, self.tempo_high = tempo_box("lowest tempo"), tempo_box("highest tempo")
        self.mode, self.density = choice_box(MODES), choice_box(DENSITIES)
        self.family = choice_box(families(), False)  # the table and $CUESMITH_FAMILIES
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.variations = QSpinBox()
        self.variations.setRange(1, 8)
        self.variations.setValue(2)
        self.button = QPushButton("&Regenerate (Ctrl+R)")
        self.button.setEnabled(False)
        self.clip_label = label("Open a result first: regenerate scores the same clip again.", "dim")
        self.table = QTableWidget(0, len(COLUMNS))
        self.build()
        self.button.clicked.connect(self.submit)

    def build(self) -> None:
        tempo = QWidget()
        row = QHBoxLayout(tempo)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.tempo_low)
        row.addWidget(label("to", wrap=False))
        row.addWidget(self.tempo_high)
        tempo.setFocusProxy(self.tempo_low)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for text, field in (("&Tempo range", tempo), ("&Mode", self.mode), ("&Density", self.density),
                            ("S&eed", self.seed), ("&Variations", self.variations), ("Model &family", self.family)):
            form.addRow(text, field)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("key"), QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(24)
        layout = QVBoxLayout(self)
        layout.addWidget(self.clip_label)
        layout.addLayout(form)
        layout.addWidget(self.button)
        layout.addWidget(self.table, 1)

    def set_source(self, result: ResultData) -> None:
        self.source = result
        self.button.setEnabled(bool(result.video or result.request.get("clips") or result.request.get("timeline")))
        self.clip_label.setText(f"Regenerate for {label_of(result)}")
        self.seed.setValue(int(result.request.get("seed", 0)) + 1)  # a new seed: new music

    def params(self) -> RegenerateParams:
        def tempo(box: QSpinBox) -> Optional[float]:
            return None if box.value() == box.minimum() else float(box.value())

        def choice(box: QComboBox) -> Optional[str]:
            return None if box.currentText() == AUTO else box.currentText()

        return RegenerateParams(tempo(self.tempo_low), tempo(self.tempo_high), choice(self.mode),
                                choice(self.density), self.seed.value(), self.variations.value(),
                                self.family.currentText())

    def submit(self) -> None:
        if self.source is None:
            self.message.emit("open a result first")
            return
        params = self.params()
        if params.tempo_low and params.tempo_high and params.tempo_low > params.tempo_high:
            self.message.emit("the tempo range goes from low to high")
            return
        source = self.source.request or {"video": self.source.video}
        self.table.setRowCount(0)
        self.rows, self.scores = {}, {}
        for i, request in enumerate(variation_requests(source, params)):
            tempo = f" at {request['tempo']:.0f} BPM" if "tempo" in request else ""
            self.submit_requested.emit("score", request, f"variation {i + 1} (seed {request['seed']}){tempo}",
                                       "regenerate")

    # -- the table --
    def add_job(self, job_id: str, title: str) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.rows[job_id] = row
        self.set_cells(row, [str(row + 1), "…", "…", "queued", "", ""])
        self.table.item(row, 0).setToolTip(title)

    def set_cells(self, row: int, values: list[str]) -> None:
        for column, value in enumerate(values):
            item = QTableWidgetItem(value)
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            self.table.setItem(row, column, item)

    def on_progress(self, job_id: str, fraction: float) -> None:
        if job_id in self.rows:
            self.table.item(self.rows[job_id], 3).setText(f"{100 * fraction:.0f}%")

    def on_failed(self, job_id: str, message: str) -> None:
        if job_id in self.rows:
            row = self.rows[job_id]
            self.table.item(row, 3).setText("failed")
            self.table.item(row, 3).setToolTip(message)

    def on_result(self, job_id: str, result: ResultData) -> None:
        row = self.rows.get(job_id)
        if row is None:
            return
        scores = {d.name: d.score for d in result.critique.dimensions} if result.critique else {}
        overall = result.critique.overall if result.critique else None
        self.scores[row] = overall
        self.set_cells(row, [str(row + 1), f"{result.tempo:.0f}" if result.tempo else "—", result.key or "—",
                             score_text(overall), score_text(scores.get("rhythm")), score_text(scores.get("emotion"))])
        button = QPushButton("Keep")
        button.setToolTip(f"Show variation {row + 1} in the result view")
        button.clicked.connect(lambda: self.keep.emit(result.path))
        self.table.setCellWidget(row, len(COLUMNS) - 1, button)
        self.mark_best()

    def mark_best(self) -> None:
        best = self.best_row()
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 3)
            font = QFont(item.font())
            font.setBold(row == best)
            item.setFont(font)

    def best_row(self) -> Optional[int]:
        scored = {row: s for row, s in self.scores.items() if s is not None}
        return max(scored, key=scored.get) if scored else None


def score_text(score: Optional[float]) -> str:
    return "—" if score is None else f"{score:.1f}"


def label_of(result: ResultData) -> str:
    name = Path(result.video).name if result.video else "the timeline"
    if result.start or result.end:
        name += f" [{result.start or 0:.1f}–{result.end or result.duration:.1f} s]"
    return name
