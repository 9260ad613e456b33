"""The critique (the engine's `Critique`): overall score, then the four dimensions with their 1-10 score,
labels and prose."""
from __future__ import annotations

from typing import Optional

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QFrame, QLabel, QProgressBar, QSizePolicy, QVBoxLayout, QWidget

from cuesmith.engine.critique import Critique, Dimension
from cuesmith.engine.critique.prose import TITLES


def label(text: str, name: str = "", wrap: bool = True) -> QLabel:
    widget = QLabel(text)
    widget.setWordWrap(wrap)
    widget.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        widget.setObjectName(name)
    if wrap:  # never squeezed below the height its wrapped text needs
        widget.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    return widget


class DimensionCard(QFrame):
    def __init__(self, dimension: Dimension, prose: str, parent=None):
        super().__init__(parent)
        self.setObjectName("card")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.dimension = dimension
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(3)
        title = TITLES.get(dimension.name, dimension.name.title())
        layout.addWidget(label(title, "heading"))
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.bar.setValue(0 if dimension.score is None else round(dimension.score * 10))
        self.bar.setFormat("not assessed" if dimension.score is None else f"{dimension.score:.1f} / 10")
        self.bar.setAccessibleName(f"{title} score")
        layout.addWidget(self.bar)
        labels = "; ".join(f"{k}: {v}" for k, v in dimension.labels.items())
        layout.addWidget(label(labels, "dim"))
        self.prose = label(prose)
        layout.addWidget(self.prose)

    def resizeEvent(self, event) -> None:
        # Word-wrapped labels in a scroll area get the height of a wider line; ask for what this width needs.
        super().resizeEvent(event)
        needed = self.layout().heightForWidth(self.width())
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)


class CritiqueView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.overall = label("No critique yet.", "heading")
        self.layout_.addWidget(self.overall)
        self.cards: list[DimensionCard] = []

    def show_critique(self, critique: Optional[Critique]) -> None:
        for card in self.cards:
            card.setParent(None)
            card.deleteLater()
        self.cards = []
        if critique is None:
            self.overall.setText("No critique in this result.")
            return
        overall = "not scored" if critique.overall is None else f"{critique.overall:.1f} / 10"
        moments = ", ".join(f"{m.time:.1f} s {m.grade}" for m in critique.key_moments) or "none"
        self.overall.setText(f"Critique: {overall} overall — key moments {moments}")
        for dimension in critique.dimensions:
            card = DimensionCard(dimension, critique.prose.get(dimension.name, ""))
            self.cards.append(card)
            self.layout_.addWidget(card)
