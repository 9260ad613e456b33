"""Settings: engine address and token, output folder, SoundFont, GGUF model; kept with QSettings."""
from __future__ import annotations

from dataclasses import dataclass, fields

from PyQt6.QtCore import QSettings, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QPushButton,
                             QSpinBox, QVBoxLayout, QWidget)

ORGANISATION, APPLICATION = "cuesmith", "panel"
TRANSPORTS = ("udp", "tcp", "ws")
DEFAULT_PORT = 9470


@dataclass
class PanelSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    transport: str = "udp"
    token: str = ""
    start_engine: bool = True  # start `cuesmith serve` when no engine answers
    output_folder: str = ""  # out_dir of submitted jobs (under the engine's output root); "": the engine's choice
    soundfont: str = ""
    llm_model: str = ""  # GGUF for the critique prose

    @classmethod
    def load(cls, store: QSettings) -> "PanelSettings":
        values = {}
        for f in fields(cls):
            default = getattr(cls(), f.name)
            raw = store.value(f.name, default)
            values[f.name] = coerce(raw, type(default), default)
        if values["transport"] not in TRANSPORTS:
            values["transport"] = "udp"
        return cls(**values)

    def save(self, store: QSettings) -> None:
        for f in fields(self):
            store.setValue(f.name, getattr(self, f.name))
        store.sync()


def coerce(raw, kind, default):
    """QSettings gives strings back from INI files: turn them into the field's type."""
    try:
        if kind is bool:
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
        return kind(raw)
    except (TypeError, ValueError):
        return default


def settings_store() -> QSettings:
    return QSettings(ORGANISATION, APPLICATION)


class PathField(QWidget):
    def __init__(self, caption: str, pattern: str = "", folder: bool = False, parent=None):
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setAccessibleName(caption)
        pick = QPushButton("…")
        pick.setToolTip(f"Pick {caption.lower()}")
        pick.setFixedWidth(28)
        pick.clicked.connect(lambda: self.pick(caption, pattern, folder))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(pick)
        self.setFocusProxy(self.edit)  # the form label's mnemonic lands in the text field

    def pick(self, caption: str, pattern: str, folder: bool) -> None:
        path = QFileDialog.getExistingDirectory(self, caption) if folder \
            else QFileDialog.getOpenFileName(self, caption, "", pattern)[0]
        if path:
            self.edit.setText(path)


class SettingsView(QWidget):
    applied = pyqtSignal(object)  # PanelSettings

    def __init__(self, settings: PanelSettings, parent=None):
        super().__init__(parent)
        self.host = QLineEdit()
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.transport = QComboBox()
        self.transport.addItems(TRANSPORTS)
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.start_engine = QCheckBox("Start an engine when none answers")
        self.output_folder = PathField("Output folder", folder=True)
        self.soundfont = PathField("SoundFont", "SoundFonts (*.sf2 *.sf3)")
        self.llm_model = PathField("GGUF model", "GGUF models (*.gguf)")
        self.output_folder.setToolTip("Output root of an engine this panel starts (jobs go to <folder>/<job id>)")
        self.soundfont.setToolTip("Passed to an engine this panel starts as $CUESMITH_SOUNDFONT")
        self.llm_model.setToolTip("Passed to an engine this panel starts as $CUESMITH_LLM: the critique prose")
        apply = QPushButton("&Apply and reconnect")
        apply.clicked.connect(self.apply)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        for text, widget in (("Engine &host", self.host), ("&Port", self.port), ("&Transport", self.transport),
                             ("To&ken", self.token), ("", self.start_engine), ("&Output folder", self.output_folder),
                             ("&SoundFont", self.soundfont), ("&GGUF model (prose)", self.llm_model)):
            form.addRow(text, widget)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(apply)
        layout.addStretch(1)
        self.show_settings(settings)

    def show_settings(self, s: PanelSettings) -> None:
        self.host.setText(s.host)
        self.port.setValue(s.port)
        self.transport.setCurrentText(s.transport)
        self.token.setText(s.token)
        self.start_engine.setChecked(s.start_engine)
        self.output_folder.edit.setText(s.output_folder)
        self.soundfont.edit.setText(s.soundfont)
        self.llm_model.edit.setText(s.llm_model)

    def current(self) -> PanelSettings:
        return PanelSettings(host=self.host.text().strip() or "127.0.0.1", port=self.port.value(),
                             transport=self.transport.currentText(), token=self.token.text(),
                             start_engine=self.start_engine.isChecked(),
                             output_folder=self.output_folder.edit.text().strip(),
                             soundfont=self.soundfont.edit.text().strip(), llm_model=self.llm_model.edit.text().strip())

    def apply(self) -> None:
        self.applied.emit(self.current())
