"""The side panel: time from a job's result event to a filled result view, and the panel's memory.

A real score (tests/media.py clip of 6.6 s with 2 cuts, the shipped model, 2 variations, stems, critique) is
made once; then the panel (offscreen Qt, no engine) is sent that job's `result` event from another thread,
as BridgeClient's receiver thread sends it, and the clock stops when the result view says it is filled
(critique cards, time strip, piano roll, stems, drag handles); the strip's thumbnails are decoded on a
worker thread and timed to when they are on screen. Baseline: only parsing the
result's JSON (result.json + critique.json) in the same run. Memory: the process RSS (psutil) before Qt
starts (engine modules imported), with the panel shown, and after filling the view REPEATS times.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

TITLE = "Panel: result event to filled result view, panel memory"
REPEATS = 9


def make_result(folder: Path) -> Path:
    from cuesmith.engine import Engine
    from media import Shot, make_video

    shots = [Shot(2.3, "warm", 0.3), Shot(1.7, "cold", 0.8), Shot(2.6, "forest", 0.2)]
    truth = make_video(folder / "clip.mp4", shots, size=(320, 180))
    result = Engine(use_cache=False).score_and_save({"video": str(truth.path), "out_dir": str(folder / "out"),
                                            "seed": 3, "variations": 2, "stems": True})
    return Path(result.result_json)


def parse_only(result_json: Path) -> float:
    started = time.perf_counter()
    values = json.loads(result_json.read_text())
    json.loads(Path(values["critique"]["json"]).read_text())
    return time.perf_counter() - started


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def event_to_view(app, window, result_json: Path, job_id: str) -> float:
    from PyQt6.QtCore import QEventLoop, QTimer

    from cuesmith.gui.jobs import JobInfo

    window.jobs_info[job_id] = info = JobInfo(job_id=job_id, kind="score", title="bench")
    window.jobs.add_job(info)
    loop, times = QEventLoop(), {}
    view = window.result_view
    view.filled.connect(lambda path: times.setdefault("filled", time.perf_counter()))
    view.thumbnails_shown.connect(loop.quit)
    QTimer.singleShot(30_000, loop.quit)
    event = {"event": "result", "job_id": job_id, "kind": "score", "result": str(result_json)}

    def send() -> None:
        times["sent"] = time.perf_counter()
        window.link.event.emit(event)

    threading.Thread(target=send).start()
    loop.exec()
    thumbs = time.perf_counter() - times["sent"]
    view.filled.disconnect()
    view.thumbnails_shown.disconnect(loop.quit)
    if "filled" not in times or view.result is None or view.result.path != str(result_json) or not view.strip.thumbs:
        raise RuntimeError("the result view was not filled")
    return times["filled"] - times["sent"], thumbs


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2 ** 20


def run() -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia*=false")
    with tempfile.TemporaryDirectory() as scratch:
        result_json = make_result(Path(scratch))
        import cuesmith.gui.result_data  # noqa: F401  (the engine modules the view uses: not counted as panel)

        rss_before = rss_mib()
        from PyQt6.QtCore import QSettings
        from PyQt6.QtWidgets import QApplication

        from cuesmith.gui.theme import apply_dark_theme
        from cuesmith.gui.window import PanelWindow

        app = QApplication.instance() or QApplication(["bench"])
        apply_dark_theme(app)
        window = PanelWindow(QSettings(str(Path(scratch) / "panel.ini"), QSettings.Format.IniFormat),
                             overrides={"start_engine": False}, connect=False)
        window.show()
        app.processEvents()
        rss_shown = rss_mib()
        from cuesmith.gui.result_data import load_result
        from cuesmith.gui.result_view import thumbnail_times
        from cuesmith.gui.thumbnails import thumbnail_frames

        parse = [parse_only(result_json) for _ in range(REPEATS)]
        loaded = load_result(result_json)
        load = [timed(lambda: load_result(result_json)) for _ in range(REPEATS)]
        thumbs = [timed(lambda: thumbnail_frames(loaded.video, thumbnail_times(loaded), 44)) for _ in range(REPEATS)]
        fill, thumbs_shown = zip(*[event_to_view(app, window, result_json, f"job{i}") for i in range(REPEATS)])
        rss_filled = rss_mib()
        first, files = fill[0], len(loaded.stems)
        window.close()
    parse_ms, fill_ms = statistics.median(parse) * 1e3, statistics.median(fill[1:]) * 1e3
    load_ms, thumbs_ms = statistics.median(load) * 1e3, statistics.median(thumbs) * 1e3
    shown_ms = statistics.median(thumbs_shown[1:]) * 1e3
    return "\n".join([
        f"Clip 6.6 s, 2 cuts; score with 2 variations, {files} audio files (mix and stems), critique; median of "
        f"{REPEATS - 1} after a first "
        f"fill of {first * 1e3:.0f} ms; machine load shows in these figures.", "",
        "| step | median ms | ratio to baseline |", "| --- | ---: | ---: |",
        f"| baseline: parse result.json + critique.json | {parse_ms:.2f} | 1.0 |",
        f"| load_result alone (JSON, critique, placement, MIDI notes to draw) | {load_ms:.1f} | "
        f"{load_ms / parse_ms:.0f}x |",
        f"| 6 thumbnails alone (PyAV, one pass; decoded off the GUI thread) | {thumbs_ms:.1f} | "
        f"{thumbs_ms / parse_ms:.0f}x |",
        f"| result event (other thread) to filled result view | {fill_ms:.1f} | {fill_ms / parse_ms:.0f}x |",
        f"| result event to thumbnails on the strip | {shown_ms:.1f} | {shown_ms / parse_ms:.0f}x |",
        "", "| memory | RSS MiB |", "| --- | ---: |",
        f"| before Qt (engine modules imported): baseline | {rss_before:.0f} |",
        f"| panel shown | {rss_shown:.0f} (+{rss_shown - rss_before:.0f}) |",
        f"| after {REPEATS} filled result views | {rss_filled:.0f} (+{rss_filled - rss_before:.0f}) |",
    ])


if __name__ == "__main__":
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "tests")]
    print(run())
