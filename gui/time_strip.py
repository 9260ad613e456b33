"""The clip's time strip: thumbnails, the music's beats and section starts, the cuts and the A/B/C key moments,
all read from the result's placement (engine/schema.py `Placement`).

Click (or Left/Right then Enter) to jump: a click near a key moment jumps to the moment.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QFont, QImage, QPainter, QPen, QPixmap
from PyQt6.QtWidgets import QSizePolicy, QWidget

from . import theme
from .result_data import ResultData

THUMB_HEIGHT = 44
MOMENT_RADIUS = 8
HELP = ("White lines: cuts. Ticks: the music's beats (tall: downbeats). Flags: section starts. Key moments: "
        "A on a change within a frame, B within 0.5 s, C none. Click to jump; Left/Right pick a moment, Enter jumps.")


def image_from_rgb(frame: np.ndarray) -> QImage:
    frame = np.ascontiguousarray(frame)
    height, width, _ = frame.shape
    return QImage(frame.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class TimeStrip(QWidget):
    seek = pyqtSignal(float)  # seconds of the clip
    hover = pyqtSignal(float)  # seconds of the clip under the mouse

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumHeight(THUMB_HEIGHT + 46)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(HELP)
        self.result: Optional[ResultData] = None
        self.span = 1.0
        self.thumbs: list[QPixmap] = []
        self.position = 0.0
        self.selected = -1

    def show_result(self, result: ResultData, span: float) -> None:
        """Cuts, beats, sections and key moments of `result`; thumbnails follow through set_thumbnails."""
        self.result, self.span = result, max(span, 1e-3)
        self.thumbs = []
        self.selected = -1
        self.update()

    def set_thumbnails(self, thumbs: list[np.ndarray]) -> None:
        self.thumbs = [QPixmap.fromImage(image_from_rgb(t)) for t in thumbs]
        self.update()

    def clear(self) -> None:
        self.result, self.thumbs = None, []
        self.update()

    def set_position(self, seconds: float) -> None:
        self.position = seconds
        self.update()

    # -- geometry --
    def x_of(self, seconds: float) -> float:
        return 4 + (self.width() - 8) * seconds / self.span

    def time_of(self, x: float) -> float:
        return min(self.span, max(0.0, (x - 4) * self.span / max(1, self.width() - 8)))

    @property
    def moments(self):
        """The placement's graded markers (time, grade, colour, note)."""
        return self.result.moments if self.result else []

    # -- painting --
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), theme.BASE)
        if self.result is None:
            painter.setPen(theme.DIM_TEXT)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no result yet")
            return
        self.paint_thumbnails(painter)
        self.paint_beats(painter)
        self.paint_sections(painter)
        self.paint_cuts_and_moments(painter)
        painter.setPen(QPen(theme.PLAYHEAD, 2))
        x = self.x_of(self.position)
        painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))

    def paint_thumbnails(self, painter: QPainter) -> None:
        if not self.thumbs:
            return
        left, right = self.x_of(0), self.x_of(self.result.duration)
        step = (right - left) / len(self.thumbs)
        for i, thumb in enumerate(self.thumbs):
            target = QRectF(left + i * step, 2, step, THUMB_HEIGHT)
            painter.drawPixmap(target, thumb, QRectF(thumb.rect()))

    def paint_beats(self, painter: QPainter) -> None:
        placement = self.result.placement
        downbeats = set(round(d, 3) for d in placement.downbeats)
        top = THUMB_HEIGHT + 6
        for beat in placement.beats:
            if beat > self.span:
                break
            strong = round(beat, 3) in downbeats
            painter.setPen(QPen(theme.DOWNBEAT if strong else theme.BEAT, 1))
            x = self.x_of(beat)
            painter.drawLine(QPointF(x, top + (0 if strong else 6)), QPointF(x, top + 14))

    def paint_sections(self, painter: QPainter) -> None:
        top = THUMB_HEIGHT + 20
        for section in self.result.sections:
            x = self.x_of(section["time"])
            painter.setPen(QPen(theme.SECTION, 1))
            painter.drawLine(QPointF(x, top), QPointF(x, top + 10))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(theme.SECTION)
            painter.drawPolygon([QPointF(x, top), QPointF(x + 6, top + 2.5), QPointF(x, top + 5)])

    def paint_cuts_and_moments(self, painter: QPainter) -> None:
        painter.setPen(QPen(theme.CUT, 2))
        for cut in self.result.cut_times:
            x = self.x_of(cut)
            painter.drawLine(QPointF(x, 0), QPointF(x, THUMB_HEIGHT + 30))
        font = QFont(self.font())
        font.setBold(True)
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        y = self.height() - MOMENT_RADIUS - 2
        for i, moment in enumerate(self.moments):
            centre = QPointF(self.x_of(moment.time), y)
            painter.setPen(QPen(theme.TEXT, 2) if i == self.selected else Qt.PenStyle.NoPen)
            painter.setBrush(theme.MARKER_COLOURS.get(moment.colour, theme.DIM_TEXT))
            painter.drawEllipse(centre, MOMENT_RADIUS, MOMENT_RADIUS)
            painter.setPen(theme.BACKGROUND)
            box = QRectF(centre.x() - MOMENT_RADIUS, centre.y() - MOMENT_RADIUS, 2 * MOMENT_RADIUS, 2 * MOMENT_RADIUS)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, moment.grade)

    # -- input --
    def moment_near(self, x: float) -> int:
        distances = [abs(self.x_of(m.time) - x) for m in self.moments]
        if distances and min(distances) <= MOMENT_RADIUS + 2:
            return int(np.argmin(distances))
        return -1

    def mousePressEvent(self, event) -> None:
        if self.result is None or event.button() != Qt.MouseButton.LeftButton:
            return
        x = event.position().x()
        self.selected = self.moment_near(x)
        self.seek.emit(self.moments[self.selected].time if self.selected >= 0 else self.time_of(x))
        self.update()

    def mouseMoveEvent(self, event) -> None:
        if self.result is not None:
            x = event.position().x()
            near = self.moment_near(x)
            self.setToolTip(f"{self.moments[near].name}: {self.moments[near].note}" if near >= 0 else HELP)
            self.hover.emit(self.time_of(x))

    def keyPressEvent(self, event) -> None:
        key, count = event.key(), len(self.moments)
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right) and count:
            step = 1 if key == Qt.Key.Key_Right else -1
            self.selected = (self.selected + step) % count if self.selected >= 0 else (0 if step > 0 else count - 1)
            self.update()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.selected >= 0:
            self.seek.emit(self.moments[self.selected].time)
        else:
            super().keyPressEvent(event)
