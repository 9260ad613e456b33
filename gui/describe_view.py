"""Describe: drop a piece of music (and its lyrics) to get a music-video description and cuts on its beats."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QLineEdit, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from .critique_only import MUSIC_PATTERN
from .drop_zone import DropZone

LYRICS_PATTERN = "Lyrics (*.lrc *.txt);;All files (*)"


class DescribeView(QWidget):
    submit_requested = pyqtSignal(str, dict, str, str)  # kind, request, title, origin
    message = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.music, self.lyrics = "", ""
        self.music_drop = DropZone("Drop the music here (audio or MIDI)", MUSIC_PATTERN)
        self.lyrics_drop = DropZone("Drop the lyrics here (optional: .lrc with times, or plain text)", LYRICS_PATTERN)
        self.tags = QLineEdit()
        self.tags.setPlaceholderText("tags (optional): genre, MV type, e.g. ballad, story narrative")
        self.button = QPushButton("&Describe")
        self.button.setEnabled(False)
        self.view = QTextBrowser()
        self.view.setOpenExternalLinks(False)
        layout = QVBoxLayout(self)
        for widget in (self.music_drop, self.lyrics_drop, self.tags, self.button):
            layout.addWidget(widget)
        layout.addWidget(self.view, 1)
        self.music_drop.dropped.connect(lambda paths: self.set_music(paths[0]))
        self.lyrics_drop.dropped.connect(lambda paths: self.set_lyrics(paths[0]))
        self.button.clicked.connect(self.submit)

    def set_music(self, path: str) -> None:
        self.music = str(Path(path).resolve())
        self.music_drop.show_file(self.music)
        self.button.setEnabled(True)

    def set_lyrics(self, path: str) -> None:
        self.lyrics = str(Path(path).resolve())
        self.lyrics_drop.show_file(self.lyrics)

    def request(self) -> dict:
        request = {"music": self.music}
        if self.lyrics:
            request["lyrics"] = self.lyrics
        if self.tags.text().strip():
            request["tags"] = self.tags.text().strip()
        return request

    def submit(self) -> None:
        if not self.music:
            self.message.emit("drop the music first")
            return
        self.submit_requested.emit("describe", self.request(), f"describe {Path(self.music).name}", "describe")

    def show_result(self, json_path: str) -> None:
        """Show the description.md written beside `json_path` (the job's result)."""
        markdown = Path(json_path).with_suffix(".md")
        try:
            self.view.setMarkdown(markdown.read_text(encoding="utf-8"))
        except OSError as error:
            self.message.emit(f"cannot show the description: {markdown}: {error.strerror or error}")
