"""Helpers of the panel tests: Qt offscreen, private settings, one real score result, screenshots."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt makes the QApplication
os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia*=false")

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "tests" / "output" / "screenshots"


@pytest.fixture
def settings_store(tmp_path):
    """A QSettings in a private INI file: the tests never read or write the user's settings."""
    from PyQt6.QtCore import QSettings

    return QSettings(str(tmp_path / "panel.ini"), QSettings.Format.IniFormat)


@pytest.fixture(scope="session")
def dark_app(qapp):
    from cuesmith.gui.theme import apply_dark_theme

    apply_dark_theme(qapp)
    return qapp


@pytest.fixture(scope="session")
def scored(tmp_path_factory):
    """A real score (2 variations, stems, critique) of a 6.6 s clip with cuts at 2.3 and 4.0 s, made once."""
    from cuesmith.engine import Engine
    from media import Shot, make_video
    from vmusprod_helpers import shipped_model

    shipped_model()
    folder = tmp_path_factory.mktemp("panel-score")
    shots = [Shot(2.3, "warm", 0.3), Shot(1.7, "cold", 0.8), Shot(2.6, "forest", 0.2)]
    truth = make_video(folder / "clip.mp4", shots, size=(320, 180))
    result = Engine(use_cache=False).score_and_save({"video": str(truth.path), "out_dir": str(folder / "out"),
                                            "seed": 3, "variations": 2, "stems": True})
    return truth, result


def image_is_blank(image) -> bool:
    """True when a QImage is (nearly) one colour: no text or drawing shows."""
    from PyQt6.QtGui import QImage

    image = image.convertToFormat(QImage.Format.Format_RGB32)
    pointer = image.constBits()
    pointer.setsize(image.sizeInBytes())
    pixels = np.frombuffer(pointer, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)[..., :3]
    colours = len(np.unique(pixels.reshape(-1, 3)[::7], axis=0))
    return colours < 8 or float(pixels.std()) < 4.0


def save_screenshot(widget, name: str) -> Path:
    """Grab `widget` to tests/output/screenshots/<name>.png and check it is not blank."""
    from PyQt6.QtWidgets import QApplication

    for _ in range(3):  # layouts settle in passes (a scroll bar appears, wrapped text grows)
        QApplication.processEvents()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image = widget.grab().toImage()
    path = SCREENSHOTS / f"{name}.png"
    assert image.save(str(path)), f"could not write {path}"
    assert not image_is_blank(image), f"screenshot {path} is blank"
    return path
