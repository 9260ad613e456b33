"""Drag handles: drag a MIDI file, one part's MIDI or a stem into a DAW or an editor as a file URL.

Keyboard: focus a handle and press Ctrl+C to copy the same file URL.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from PyQt6.QtCore import QMimeData, Qt, QUrl
from PyQt6.QtGui import QDrag, QGuiApplication
from PyQt6.QtWidgets import QApplication, QLabel, QSizePolicy

from cuesmith.engine.errors import CuesmithError


def file_mime(path: str | Path) -> QMimeData:
    """`text/uri-list` with the file's URL (and the path as text, for editors that read only text)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(Path(path).resolve()))])
    mime.setText(str(Path(path).resolve()))
    return mime


def part_midi(midi: str | Path, part: str) -> Path:
    """`<midi>-<part>.mid` next to `midi`, written once; a different file of that name is never replaced."""
    from cuesmith.engine.files import unused_path, write_bytes_atomic
    from cuesmith.engine.music.midi_io import write_midi

    from .result_data import part_song

    midi = Path(midi)
    target = midi.with_name(f"{midi.stem}-{part}.mid")
    with tempfile.TemporaryDirectory() as scratch:
        fresh = write_midi(part_song(midi, part), Path(scratch) / target.name).read_bytes()
    if target.exists() and target.read_bytes() == fresh:
        return target
    return write_bytes_atomic(unused_path(target), fresh)


class DragHandle(QLabel):
    """A label that drags the file `source()` returns (a callable, so a part's MIDI is written only when used)."""

    def __init__(self, text: str, source: Callable[[], Path], on_error: Callable[[str], None], parent=None):
        super().__init__(f"⇕ {text}", parent)
        self.setObjectName("handle")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setToolTip(f"Drag {text} into a DAW or editor (Ctrl+C copies its file URL)")
        self.setAccessibleName(f"drag {text}")
        self.source, self.on_error = source, on_error
        self.press = None

    def mime(self) -> QMimeData | None:
        try:
            return file_mime(self.source())
        except CuesmithError as error:
            self.on_error(str(error))
            return None

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.press = event.position().toPoint()

    def mouseMoveEvent(self, event) -> None:
        if self.press is None or (event.position().toPoint() - self.press).manhattanLength() \
                < QApplication.startDragDistance():
            return
        self.press = None
        mime = self.mime()
        if mime is not None:
            drag = QDrag(self)
            drag.setMimeData(mime)
            drag.exec(Qt.DropAction.CopyAction)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_C and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            mime = self.mime()
            if mime is not None:
                QGuiApplication.clipboard().setMimeData(mime)
        else:
            super().keyPressEvent(event)
