"""Critique-only: drop a video and a music file (audio or MIDI) to critique music the user already has."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QFormLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from .drop_zone import DropZone
from .jobs import JobsView

MUSIC_PATTERN = "Music (*.mid *.midi *.wav *.mp3 *.m4a *.flac *.ogg *.aif *.aiff);;All files (*)"
VIDEO_PATTERN = "Video (*.mp4 *.mov *.mkv *.webm *.avi *.m4v *.mxf);;All files (*)"


class CritiqueOnlyView(QWidget):
    submit_requested = pyqtSignal(str, dict, str, str)  # kind, request, title, origin
    message = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.video, self.music = "", ""
        self.video_drop = DropZone("Drop the video here", VIDEO_PATTERN)
        self.music_drop = DropZone("Drop the music here (audio or MIDI; none: the clip's own sound)", MUSIC_PATTERN)
        self.notes = QLineEdit()
        self.notes.setPlaceholderText("what the clip is about (optional)")
        self.start = JobsView.seconds_box("clip start (s); 0: from the beginning")
        self.end = JobsView.seconds_box("clip end (s); 0: to the end")
        self.button = QPushButton("&Critique")
        self.button.setEnabled(False)
        form = QFormLayout()
        form.addRow("&Notes", self.notes)
        form.addRow("Clip &start", self.start)
        form.addRow("Clip &end", self.end)
        layout = QVBoxLayout(self)
        layout.addWidget(self.video_drop)
        layout.addWidget(self.music_drop)
        layout.addLayout(form)
        layout.addWidget(self.button)
        layout.addStretch(1)
        self.video_drop.dropped.connect(lambda paths: self.set_video(paths[0]))
        self.music_drop.dropped.connect(lambda paths: self.set_music(paths[0]))
        self.button.clicked.connect(self.submit)

    def set_video(self, path: str) -> None:
        self.video = str(Path(path).resolve())
        self.video_drop.show_file(self.video)
        self.button.setEnabled(True)

    def set_music(self, path: str) -> None:
        self.music = str(Path(path).resolve())
        self.music_drop.show_file(self.music)

    def request(self) -> dict:
        request = {"video": self.video}
        if self.music:
            request["music"] = self.music
        if self.notes.text().strip():
            request["notes"] = self.notes.text().strip()
        if self.start.value():
            request["start"] = self.start.value()
        if self.end.value():
            request["end"] = self.end.value()
        return request

    def submit(self) -> None:
        if not self.video:
            self.message.emit("drop a video first")
            return
        if self.end.value() and self.start.value() >= self.end.value():
            self.message.emit("the clip end must come after its start")
            return
        title = f"{Path(self.video).name} with {Path(self.music).name if self.music else 'its own sound'}"
        self.submit_requested.emit("critique", self.request(), title, "critique")
