"""`cuesmith panel`: the side panel next to an editor or a DAW (PyQt6).

It talks to the engine over OSC like any other client (`BridgeClient`), starting `cuesmith serve`
when none answers, and shows what the score and critique jobs produce.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="engine address (default: the saved setting, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="engine port (default: the saved setting, else 9470)")
    parser.add_argument("--transport", choices=("udp", "tcp", "ws"), help="how to reach the engine")
    parser.add_argument("--token", help="the engine's shared token")
    parser.add_argument("--no-start-engine", action="store_true", help="do not start an engine when none answers")
    parser.add_argument("--open", type=Path, metavar="RESULT", help="show this result.json or critique.json")


def main(args: argparse.Namespace) -> int:
    from .qt import require_qt

    require_qt()
    from PyQt6.QtWidgets import QApplication

    from .settings import settings_store
    from .theme import apply_dark_theme
    from .window import PanelWindow

    app = QApplication.instance() or QApplication(["cuesmith panel"])
    app.setOrganizationName("cuesmith")
    app.setApplicationName("cuesmith panel")
    apply_dark_theme(app)
    window = PanelWindow(settings_store(), overrides=overrides_from(args))
    window.show()
    if args.open:
        window.open_result(str(args.open))
    return app.exec()


def overrides_from(args: argparse.Namespace) -> dict:
    values = {"host": args.host, "port": args.port, "transport": args.transport, "token": args.token}
    values = {k: v for k, v in values.items() if v is not None}
    if args.no_start_engine:
        values["start_engine"] = False
    return values
