"""PyQt6 is optional (the `gui` extra): say so in one line when it is missing."""
from __future__ import annotations

from cuesmith.engine.errors import CuesmithError


def require_qt() -> None:
    try:
        import PyQt6.QtWidgets  # noqa: F401
    except ImportError as error:
        raise CuesmithError(f"the panel needs PyQt6, which is not installed ({error})",
                            hint="pip install 'cuesmith[gui]'") from None
