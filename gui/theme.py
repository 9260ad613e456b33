"""The dark theme: Fusion with a palette close to an editor's, and the colours the views draw with."""
from __future__ import annotations

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication

BACKGROUND = QColor(30, 31, 34)
PANEL = QColor(43, 45, 48)
BASE = QColor(24, 25, 27)
TEXT = QColor(223, 225, 229)
DIM_TEXT = QColor(140, 144, 150)
ACCENT = QColor(86, 156, 214)
ERROR = QColor(240, 100, 90)
MARKER_COLOURS = {"green": QColor(90, 200, 120), "yellow": QColor(240, 190, 70), "red": QColor(235, 90, 80),
                  "blue": ACCENT}  # the placement's marker colours (engine/schema.py GRADE_COLOURS, SECTION_COLOUR)
PART_COLOURS = [QColor(110, 180, 255), QColor(250, 160, 90), QColor(170, 130, 240), QColor(120, 210, 190)]
CUT = QColor(245, 245, 245)
BEAT = QColor(95, 98, 104)
DOWNBEAT = QColor(150, 154, 160)
SECTION = ACCENT
PLAYHEAD = QColor(255, 80, 80)

STYLE = """
QWidget { font-size: 10pt; }
QToolTip { color: #dfe1e5; background: #2b2d30; border: 1px solid #555; }
QProgressBar { border: 1px solid #555; border-radius: 3px; text-align: center; height: 14px; }
QProgressBar::chunk { background: #569cd6; }
QLabel#error { color: #f0645a; }
QLabel#heading { font-weight: bold; font-size: 11pt; }
QLabel#dim { color: #8c9096; }
QFrame#card { background: #2b2d30; border-radius: 4px; }
QLabel#handle { border: 1px dashed #7a7e85; border-radius: 3px; padding: 3px 6px; }
QLabel#handle:focus { border: 1px solid #569cd6; }
QLabel#drop { border: 2px dashed #5a5e65; border-radius: 6px; padding: 10px; color: #8c9096; }
*:focus { outline: 1px solid #569cd6; }
"""


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND, QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE, QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.Text: TEXT, QPalette.ColorRole.Button: PANEL, QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.Highlight: ACCENT, QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.ToolTipBase: PANEL, QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: DIM_TEXT, QPalette.ColorRole.Link: ACCENT,
    }
    for role, colour in roles.items():
        palette.setColor(role, colour)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, DIM_TEXT)
    app.setPalette(palette)
    app.setStyleSheet(STYLE)
