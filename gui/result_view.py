"""The result view: what a score or critique job produced, filled from its result file."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QGridLayout, QScrollArea, QVBoxLayout, QWidget

from .audio_preview import AudioPreview, clock
from .critique_view import CritiqueView, label
from .drag_handle import DragHandle, part_midi
from .piano_roll import PianoRoll
from .result_data import ResultData
from .thumbnails import thumbnail_frames
from .time_strip import THUMB_HEIGHT, TimeStrip

THUMBNAILS = 6
HANDLES_PER_ROW = 2


def timeline_span(result: ResultData) -> float:
    """Seconds both the strip and the roll show: the clip (music past its end is cut off), else the music."""
    if result.duration > 0:
        return result.duration
    return result.music.duration if result.music else 1.0


def thumbnail_times(result: ResultData, count: int = THUMBNAILS) -> list[float]:
    """File times of `count` frames spread over the clip (centre of each tile)."""
    start = result.start or 0.0
    return [start + (i + 0.5) * result.duration / count for i in range(count)]


class ResultView(QWidget):
    error = pyqtSignal(str)
    filled = pyqtSignal(str)  # the result file, once the critique, strip, roll, preview and handles show it
    thumbnails_shown = pyqtSignal(str)  # the result file, once its thumbnails are on the strip
    _thumbnails = pyqtSignal(str, list)  # from the decoding thread

    def __init__(self, parent=None):
        super().__init__(parent)
        self.result: Optional[ResultData] = None
        self.header = label("Submit a job or open a result to see its critique and music.", "heading")
        self.cursor_label = label("", "dim", wrap=False)
        self.strip = TimeStrip()
        self.roll = PianoRoll()
        self.preview = AudioPreview()
        self.handles = QGridLayout()
        self.critique = CritiqueView()
        self.build()
        self.strip.seek.connect(self.preview.seek)
        self.roll.seek.connect(self.preview.seek)
        self.strip.hover.connect(self.show_cursor)
        self.roll.hover.connect(self.show_cursor)
        self.preview.position_changed.connect(self.strip.set_position)
        self.preview.position_changed.connect(self.roll.set_position)
        self.preview.error.connect(self.error)
        self.decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuesmith-thumbnails")
        self.decoder_stopped = False
        self._thumbnails.connect(self.show_thumbnails)

    def build(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self.header)
        layout.addWidget(self.strip)
        layout.addWidget(self.cursor_label)
        layout.addWidget(self.roll)
        layout.addWidget(self.preview)
        handles = QWidget()
        handles.setLayout(self.handles)
        self.handles.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(handles)
        layout.addWidget(self.critique)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def show_result(self, result: ResultData) -> None:
        self.result = result
        span = timeline_span(result)
        self.header.setText(self.header_text(result))
        self.strip.show_result(result, span)
        if result.video and not result.request.get("clips") and not self.decoder_stopped:  # decoded off the GUI thread; shown when ready
            self.decoder.submit(self.decode_thumbnails, result.path, result.video, thumbnail_times(result))
        empty = "the music is audio: no notes to show" if result.music is None and result.stems else ""
        self.roll.show_music(result.music, span, result.cut_times, empty)
        self.preview.set_stems(result.stems)
        self.fill_handles(result)
        self.critique.show_critique(result.critique)
        self.filled.emit(result.path)

    def decode_thumbnails(self, path: str, video: str, times: list[float]) -> None:
        frames = thumbnail_frames(video, times, THUMB_HEIGHT)
        if not self.decoder_stopped:
            self._thumbnails.emit(path, frames)

    def shutdown(self) -> None:
        """Before the view goes away: no thumbnail thread, no player loading a file."""
        self.decoder_stopped = True
        self.decoder.shutdown(wait=True, cancel_futures=True)
        self.preview.release()

    def show_thumbnails(self, path: str, frames: list) -> None:
        if self.result is not None and self.result.path == path:  # not a result shown before this one
            self.strip.set_thumbnails(frames)
            self.thumbnails_shown.emit(path)

    def header_text(self, result: ResultData) -> str:
        what = Path(result.request.get("timeline") or result.video).name or "timeline"
        music = f", {result.tempo:.0f} BPM" if result.tempo else ""
        music += f", {result.key}" if result.key else ""
        if result.music and result.music.duration > result.duration + 0.5:
            music += f" (music runs to {result.music.duration:.1f} s)"
        kind = "score" if result.kind == "score" else f"critique of {Path(result.music_file).name or 'its own audio'}"
        return f"{what}: {result.duration:.1f} s, {len(result.cut_times)} cuts{music} — {kind}"

    def fill_handles(self, result: ResultData) -> None:
        while self.handles.count():
            widget = self.handles.takeAt(0).widget()
            widget.setParent(None)
            widget.deleteLater()
        handles = []
        midi = result.midi
        if midi:
            handles.append(DragHandle("MIDI", lambda: Path(midi), self.error.emit))
            for part in (result.music.parts if result.music else {}):
                handles.append(DragHandle(f"{part} MIDI", lambda p=part: part_midi(midi, p), self.error.emit))
        for name, wav in result.stems.items():
            kind = Path(wav).suffix.lstrip(".") or "audio"
            handles.append(DragHandle(f"{name} {kind}", lambda w=wav: Path(w), self.error.emit))
        for i, handle in enumerate(handles):
            self.handles.addWidget(handle, i // HANDLES_PER_ROW, i % HANDLES_PER_ROW)

    def handle_widgets(self) -> list[DragHandle]:
        return [self.handles.itemAt(i).widget() for i in range(self.handles.count())]

    def show_cursor(self, seconds: float) -> None:
        offset = (self.result.start or 0.0) if self.result else 0.0
        file_time = f" (file {clock(seconds + offset)})" if offset else ""
        self.cursor_label.setText(f"cursor: video {clock(seconds)}{file_time}")
