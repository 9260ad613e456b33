"""A place to drop files on (or press Enter / click to pick one)."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QFileDialog, QLabel


def local_paths(mime) -> list[str]:
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


class DropZone(QLabel):
    dropped = pyqtSignal(list)  # local file paths

    def __init__(self, prompt: str, pattern: str = "", parent=None):
        super().__init__(prompt, parent)
        self.prompt, self.pattern = prompt, pattern
        self.setObjectName("drop")
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName(prompt)
        self.setToolTip(f"{prompt} (or press Enter to pick a file)")

    def dragEnterEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.dropped.emit(paths)

    def pick(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.prompt, "", self.pattern)
        if path:
            self.dropped.emit([path])

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.pick()

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.pick()
        else:
            super().keyPressEvent(event)

    def show_file(self, path: str) -> None:
        self.setText(f"{Path(path).name}\n{self.prompt}" if path else self.prompt)
