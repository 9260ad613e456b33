"""Audio preview of the mix and each stem (QtMultimedia), with the video's time under the cursor."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, QUrl, pyqtSignal
from PyQt6.QtMultimedia import QAudioOutput, QMediaPlayer
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget


def clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


class AudioPreview(QWidget):
    position_changed = pyqtSignal(float)  # seconds of the clip
    error = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.player = QMediaPlayer(self)
        self.output = QAudioOutput(self)
        self.player.setAudioOutput(self.output)
        self.stem = QComboBox()
        self.stem.setAccessibleName("stem to preview")
        self.stem.setPlaceholderText("no audio to preview")
        self.play_button = QPushButton("Play")
        self.play_button.setToolTip("Play or pause (Space)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setAccessibleName("preview position")
        self.time_label = QLabel("video 00:00.0")
        self.time_label.setObjectName("dim")
        self.build()
        self.player.positionChanged.connect(self.on_position)
        self.player.durationChanged.connect(lambda ms: self.slider.setRange(0, ms))
        self.player.errorOccurred.connect(lambda _e, text: self.error.emit(f"audio preview: {text}"))
        self.player.playbackStateChanged.connect(self.on_state)
        self.slider.sliderMoved.connect(self.player.setPosition)
        self.stem.currentIndexChanged.connect(self.on_stem)
        self.play_button.clicked.connect(self.toggle)
        self.set_stems({})

    def build(self) -> None:
        row = QHBoxLayout()
        row.addWidget(self.stem, 1)
        row.addWidget(self.play_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        bottom = QHBoxLayout()
        bottom.addWidget(self.slider, 1)
        bottom.addWidget(self.time_label)
        layout.addLayout(bottom)

    def set_stems(self, stems: dict[str, str]) -> None:
        self.player.stop()
        self.stem.blockSignals(True)
        self.stem.clear()
        for name, path in stems.items():
            self.stem.addItem(name, path)
        self.stem.setCurrentIndex(0 if stems else -1)  # with a placeholder text Qt selects none by itself
        self.stem.blockSignals(False)
        self.setEnabled(bool(stems))
        self.player.setSource(QUrl())
        if stems:
            self.on_stem(0)

    def on_stem(self, index: int) -> None:
        path = self.stem.itemData(index)
        if not path:
            return
        if not Path(path).is_file():
            self.error.emit(f"audio preview: {path} is missing")
            return
        position = self.player.position()
        self.player.setSource(QUrl.fromLocalFile(path))
        self.player.setPosition(position)

    def release(self) -> None:
        self.player.stop()
        self.player.setSource(QUrl())

    def toggle(self) -> None:
        if not self.isEnabled():
            return
        if self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            self.player.pause()
        else:
            self.player.play()

    def seek(self, seconds: float) -> None:
        self.player.setPosition(int(seconds * 1000))
        self.on_position(int(seconds * 1000))

    def on_position(self, ms: int) -> None:
        if not self.slider.isSliderDown():
            self.slider.setValue(ms)
        self.time_label.setText(f"video {clock(ms / 1000)}")
        self.position_changed.emit(ms / 1000)

    def on_state(self, state) -> None:
        self.play_button.setText("Pause" if state == QMediaPlayer.PlaybackState.PlayingState else "Play")
