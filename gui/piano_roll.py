"""A piano roll of the score: chords along the top, each part's notes in its own colour, the cuts behind."""
from __future__ import annotations

from typing import Optional

from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from . import theme
from .result_data import Music

CHORD_ROW = 18
LEGEND_ROW = 14


class PianoRoll(QWidget):
    seek = pyqtSignal(float)
    hover = pyqtSignal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setMouseTracking(True)
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.music: Optional[Music] = None
        self.cuts: list[float] = []
        self.span = 1.0
        self.position = 0.0
        self.empty_text = "no MIDI to show"

    def show_music(self, music: Optional[Music], span: float, cuts: list[float], empty_text: str = "") -> None:
        self.music, self.span, self.cuts = music, max(span, 1e-3), cuts
        self.empty_text = empty_text or "no MIDI to show"
        self.update()

    def set_position(self, seconds: float) -> None:
        self.position = seconds
        self.update()

    @property
    def note_count(self) -> int:
        return sum(len(notes) for notes in self.music.parts.values()) if self.music else 0

    def pitch_range(self) -> tuple[int, int]:
        pitches = [n.pitch for notes in self.music.parts.values() for n in notes]
        return (min(pitches) - 2, max(pitches) + 2) if pitches else (48, 72)

    def x_of(self, seconds: float) -> float:
        return 4 + (self.width() - 8) * seconds / self.span

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), theme.BASE)
        if not self.note_count and not (self.music and self.music.chords):
            painter.setPen(theme.DIM_TEXT)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.empty_text)
            return
        roll = QRectF(0, CHORD_ROW + LEGEND_ROW, self.width(), self.height() - CHORD_ROW - LEGEND_ROW)
        self.paint_legend(painter)
        self.paint_chords(painter)
        self.paint_grid(painter, roll)
        self.paint_notes(painter, roll)
        painter.setPen(QPen(theme.PLAYHEAD, 2))
        x = self.x_of(self.position)
        painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))

    def paint_legend(self, painter: QPainter) -> None:
        x = 4.0
        for i, name in enumerate(self.music.parts):
            painter.fillRect(QRectF(x, 3, 8, 8), theme.PART_COLOURS[i % len(theme.PART_COLOURS)])
            painter.setPen(theme.TEXT)
            label = f"{name} ({len(self.music.parts[name])})"
            painter.drawText(QPointF(x + 11, 11), label)
            x += 18 + painter.fontMetrics().horizontalAdvance(label)
        painter.setPen(theme.DIM_TEXT)
        painter.drawText(QRectF(0, 0, self.width() - 4, LEGEND_ROW), Qt.AlignmentFlag.AlignRight, "chords")

    def paint_chords(self, painter: QPainter) -> None:
        top = LEGEND_ROW
        for i, chord in enumerate(self.music.chords):
            box = QRectF(self.x_of(chord.start), top, self.x_of(chord.end) - self.x_of(chord.start), CHORD_ROW - 2)
            painter.fillRect(box, theme.PANEL if i % 2 else QColor(52, 55, 60))
            painter.setPen(theme.TEXT)
            painter.drawText(box.adjusted(3, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, chord.label)

    def paint_grid(self, painter: QPainter, roll: QRectF) -> None:
        low, high = self.pitch_range()
        row = roll.height() / (high - low + 1)
        for pitch in range(low, high + 1):
            if pitch % 12 in (1, 3, 6, 8, 10):  # black keys: a darker row
                y = roll.bottom() - (pitch - low + 1) * row
                painter.fillRect(QRectF(0, y, self.width(), row), QColor(30, 31, 34))
        painter.setPen(QPen(theme.DIM_TEXT, 1, Qt.PenStyle.DashLine))
        for cut in self.cuts:
            painter.drawLine(QPointF(self.x_of(cut), roll.top()), QPointF(self.x_of(cut), roll.bottom()))

    def paint_notes(self, painter: QPainter, roll: QRectF) -> None:
        low, high = self.pitch_range()
        row = roll.height() / (high - low + 1)
        for i, notes in enumerate(self.music.parts.values()):
            colour = theme.PART_COLOURS[i % len(theme.PART_COLOURS)]
            for note in notes:
                y = roll.bottom() - (note.pitch - low + 1) * row
                left = self.x_of(note.start)
                box = QRectF(left, y, max(2.0, self.x_of(note.end) - left), max(2.0, row - 1))
                shade = QColor(colour)
                shade.setAlphaF(0.45 + 0.55 * note.velocity / 127)
                painter.fillRect(box, shade)

    def time_of(self, x: float) -> float:
        return min(self.span, max(0.0, (x - 4) * self.span / max(1, self.width() - 8)))

    def mousePressEvent(self, event) -> None:
        if self.music is not None and event.button() == Qt.MouseButton.LeftButton:
            self.seek.emit(self.time_of(event.position().x()))

    def mouseMoveEvent(self, event) -> None:
        if self.music is not None:
            self.hover.emit(self.time_of(event.position().x()))
