"""The side panel without an engine process: the result view filled from a real score, the piano roll from
its real MIDI, drag handles, malformed results, engine down; screenshots under tests/output/screenshots."""
import json
from pathlib import Path

import pytest

from panel_helpers import dark_app, image_is_blank, save_screenshot, scored, settings_store  # noqa: F401

from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.music.midi_io import read_midi

FIXED_AUDIO = Path(__file__).resolve().parent / "families" / "fixed_audio.py"


@pytest.fixture
def view(qtbot, dark_app):  # noqa: F811
    from cuesmith.gui.result_view import ResultView

    widget = ResultView()
    qtbot.addWidget(widget)
    widget.resize(420, 1100)
    widget.show()
    yield widget
    widget.shutdown()


@pytest.fixture
def panel(qtbot, dark_app, settings_store):  # noqa: F811
    from cuesmith.gui.window import PanelWindow

    window = PanelWindow(settings_store, overrides={"start_engine": False, "port": free_port()}, connect=False)
    qtbot.addWidget(window)
    window.show()
    return window


def free_port() -> int:
    from bridge_helpers import free_udp_port

    return free_udp_port()


def test_result_view_shows_the_real_critique_and_music(view, scored, qtbot):  # noqa: F811
    from cuesmith.gui.result_data import load_result

    truth, result = scored
    with qtbot.waitSignal(view.thumbnails_shown, timeout=10000):
        view.show_result(load_result(result.result_json))
    critique = json.loads(open(result.critique["json"]).read())
    placement = json.loads(open(result.result_json).read())["placement"]
    shown = {card.dimension.name: card for card in view.critique.cards}
    assert set(shown) == {d["name"] for d in critique["dimensions"]} == {"rhythm", "emotion", "theme", "culture"}
    for d in critique["dimensions"]:
        card = shown[d["name"]]
        assert card.bar.value() == (0 if d["score"] is None else round(d["score"] * 10))
        assert card.prose.text() == critique["prose"][d["name"]]
    assert f"{critique['overall']:.1f} / 10" in view.critique.overall.text()
    graded = [m for m in placement["markers"] if m["grade"]]
    assert [(m.time, m.grade, m.colour, m.note) for m in view.strip.moments] == \
        [(m["time"], m["grade"], m["colour"], m["note"]) for m in graded]
    assert [(m.time, m.grade) for m in view.strip.moments] == \
        [(pytest.approx(m["time"], abs=1e-4), m["grade"]) for m in critique["key_moments"]]
    assert view.strip.result.sections == placement["sections"] and len(placement["sections"]) >= 2
    assert view.strip.result.placement.beats == placement["beats"]
    assert view.strip.result.cut_times == pytest.approx(truth.cuts)
    assert len(view.strip.thumbs) > 0
    song = read_midi(result.variations[0].midi)
    assert view.roll.note_count == sum(len(p.notes) for p in song.parts) > 0
    assert set(view.roll.music.parts) == {p.name for p in song.parts} == {"melody", "accompaniment", "chords"}
    assert [(c.start, c.end, c.label) for c in view.roll.music.chords] == \
        [(c["start"], c["end"], c["label"]) for c in placement["chords"]] != []
    stems = [view.preview.stem.itemText(i) for i in range(view.preview.stem.count())]
    assert stems[0] == "mix" and set(stems) == {"mix", *placement["audio"]["stems"]} and "chords" in stems
    assert view.preview.stem.currentText() == "mix"
    assert view.preview.player.source().toLocalFile() == placement["audio"]["mix"]
    qtbot.waitUntil(lambda: view.preview.player.duration() > 1000, timeout=10000)  # QtMultimedia decoded it
    save_screenshot(view, "result_view")


@pytest.fixture(scope="module")
def audio_scored(tmp_path_factory):
    """A score by the test-only audio family (tests/families/fixed_audio.py): no MIDI, stems and a critique."""
    from cuesmith.engine import Engine
    from media import Shot, make_video

    folder = tmp_path_factory.mktemp("panel-audio")
    truth = make_video(folder / "clip.mp4", [Shot(1.5, "warm", 0.3), Shot(1.5, "cold", 0.8)], size=(160, 90))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUESMITH_FAMILIES", f"fixed_audio={FIXED_AUDIO}")
        result = Engine(use_cache=False).score_and_save(video=str(truth.path), out_dir=str(folder / "out"),
                                                        family="fixed_audio", seed=1)
    return truth, result


def test_an_audio_only_result_shows_its_critique_strip_and_audio(view, audio_scored, qtbot):
    from cuesmith.gui.result_data import load_result

    truth, result = audio_scored
    placement = json.loads(open(result.result_json).read())["placement"]
    assert placement["midi"] is None and placement["chords"] == []
    with qtbot.waitSignal(view.filled, timeout=10000):
        view.show_result(load_result(result.result_json))
    assert view.result.midi == "" and view.roll.music is None and "audio" in view.roll.empty_text
    assert len(view.critique.cards) == 4 and "overall" in view.critique.overall.text()
    assert [(m.time, m.grade) for m in view.strip.moments] == \
        [(m["time"], m["grade"]) for m in placement["markers"] if m["grade"]] != []
    assert view.strip.result.placement.beats == placement["beats"] != []
    assert view.strip.result.cut_times == pytest.approx(truth.cuts)
    stems = [view.preview.stem.itemText(i) for i in range(view.preview.stem.count())]
    assert stems == ["mix", "clicks", "pad"]
    assert view.preview.player.source().toLocalFile() == placement["audio"]["mix"]
    handles = [h.text().split(" ", 1)[1] for h in view.handle_widgets()]
    assert handles == ["mix wav", "clicks wav", "pad wav"]  # no MIDI to drag
    save_screenshot(view, "audio_only_result")


def test_a_version_1_result_still_shows(view, scored, tmp_path):  # noqa: F811
    from cuesmith.gui.result_data import load_result

    values = json.loads(open(scored[1].result_json).read())
    values["schema_version"] = 1
    placement = values.pop("placement")
    (tmp_path / "result.json").write_text(json.dumps(values))
    view.show_result(load_result(tmp_path / "result.json"))
    assert [(m.time, m.grade) for m in view.strip.moments] == \
        [(m["time"], m["grade"]) for m in placement["markers"] if m["grade"]]
    assert view.result.stems["mix"] == placement["audio"]["mix"] and view.roll.note_count > 0


def test_a_click_on_a_key_moment_jumps_there(view, scored, qtbot):  # noqa: F811
    from PyQt6.QtCore import QPoint, Qt

    from cuesmith.gui.result_data import load_result

    view.show_result(load_result(scored[1].result_json))
    moment = view.strip.moments[-1]
    y = view.strip.height() - 10
    qtbot.mouseClick(view.strip, Qt.MouseButton.LeftButton, pos=QPoint(round(view.strip.x_of(moment.time)) + 3, y))
    assert view.strip.position == pytest.approx(moment.time, abs=0.002)
    assert view.roll.position == pytest.approx(moment.time, abs=0.002)
    assert view.preview.time_label.text() == f"video 00:{moment.time:04.1f}"
    view.strip.setFocus()
    qtbot.keyClick(view.strip, Qt.Key.Key_Left)
    qtbot.keyClick(view.strip, Qt.Key.Key_Return)
    assert view.strip.position == pytest.approx(view.strip.moments[-2].time, abs=0.002)


def test_the_video_time_under_the_cursor_is_shown(view, scored):  # noqa: F811
    from PyQt6.QtCore import QPointF, Qt
    from PyQt6.QtGui import QMouseEvent
    from PyQt6.QtWidgets import QApplication

    from cuesmith.gui.result_data import load_result

    view.show_result(load_result(scored[1].result_json))
    where = QPointF(view.strip.x_of(4.0), 20)
    move = QMouseEvent(QMouseEvent.Type.MouseMove, where, view.strip.mapToGlobal(where), Qt.MouseButton.NoButton,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.strip, move)
    assert view.cursor_label.text() == "cursor: video 00:04.0"


def drag(handle, qtbot, monkeypatch):
    """Press and move on `handle` as a user would; return the mime data of the drag it starts.

    The OS drag loop (QDrag.exec) is the one thing replaced: offscreen there is no DAW to drop on."""
    from PyQt6.QtCore import QPoint, QPointF, Qt
    from PyQt6.QtGui import QMouseEvent
    from PyQt6.QtWidgets import QApplication

    from cuesmith.gui import drag_handle

    started = []

    class RecordingDrag(drag_handle.QDrag):
        def exec(self, *actions):
            started.append(self.mimeData())
            return Qt.DropAction.CopyAction

    monkeypatch.setattr(drag_handle, "QDrag", RecordingDrag)
    qtbot.mousePress(handle, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    far = QPointF(5 + 3 * QApplication.startDragDistance(), 5)
    move = QMouseEvent(QMouseEvent.Type.MouseMove, far, handle.mapToGlobal(far), Qt.MouseButton.NoButton,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(handle, move)
    assert len(started) == 1, "no drag started"
    return started[0]


def test_the_midi_handle_drags_a_file_url(view, scored, qtbot, monkeypatch):  # noqa: F811
    from cuesmith.gui.result_data import load_result

    result = scored[1]
    view.show_result(load_result(result.result_json))
    handles = {h.text().split(" ", 1)[1]: h for h in view.handle_widgets()}
    assert {"MIDI", "melody MIDI", "accompaniment MIDI", "mix wav"} <= set(handles)
    mime = drag(handles["MIDI"], qtbot, monkeypatch)
    assert "text/uri-list" in mime.formats()
    assert bytes(mime.data("text/uri-list")).decode().strip() == f"file://{result.variations[0].midi}"
    assert [u.toLocalFile() for u in mime.urls()] == [result.variations[0].midi]


def test_a_part_handle_drags_that_part_alone(view, scored, qtbot, monkeypatch):  # noqa: F811
    from cuesmith.gui.result_data import load_result

    result = scored[1]
    view.show_result(load_result(result.result_json))
    handle = next(h for h in view.handle_widgets() if h.text().endswith("melody MIDI"))
    path = drag(handle, qtbot, monkeypatch).urls()[0].toLocalFile()
    song, full = read_midi(path), read_midi(result.variations[0].midi)
    assert [p.name for p in song.parts] == ["melody"]
    assert [(n.start, n.pitch) for n in song.parts[0].notes] == [(n.start, n.pitch) for n in full.part("melody").notes]
    again = drag(handle, qtbot, monkeypatch).urls()[0].toLocalFile()
    assert again == path, "a second drag reuses the same part file"
    stem = next(h for h in view.handle_widgets() if h.text().endswith("mix wav"))
    assert drag(stem, qtbot, monkeypatch).urls()[0].toLocalFile() == result.variations[0].stems["mix"]


def test_ctrl_c_on_a_handle_copies_the_file_url(view, scored, qtbot):  # noqa: F811
    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QApplication

    from cuesmith.gui.result_data import load_result

    view.show_result(load_result(scored[1].result_json))
    handle = view.handle_widgets()[0]
    handle.setFocus()
    qtbot.keyClick(handle, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert [u.toLocalFile() for u in QApplication.clipboard().mimeData().urls()] == [scored[1].variations[0].midi]


MALFORMED = {
    "not_json.json": "{ this is not json",
    "a_list.json": "[1, 2, 3]",
    "no_variations.json": json.dumps({"schema_version": 1, "request": {"video": "/a.mp4"}, "variations": [{}]}),
    "other.json": json.dumps({"hello": "world"}),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_result_is_refused_in_one_line(tmp_path, name):
    from cuesmith.gui.result_data import load_result

    path = tmp_path / name
    path.write_text(MALFORMED[name])
    with pytest.raises(CuesmithError) as caught:
        load_result(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_critique_with_a_bad_grade_or_missing_file_is_refused(tmp_path, scored):  # noqa: F811
    from cuesmith.gui.result_data import load_result

    values = json.loads(open(scored[1].result_json).read())
    critique = json.loads(open(values["critique"]["json"]).read())
    critique["key_moments"][0]["grade"] = "Z"
    (tmp_path / "critique.json").write_text(json.dumps(critique))
    values["critique"]["json"] = str(tmp_path / "critique.json")
    (tmp_path / "result.json").write_text(json.dumps(values))
    with pytest.raises(CuesmithError, match="not A, B or C"):
        load_result(tmp_path / "result.json")
    values["critique"]["json"] = str(tmp_path / "gone.json")
    (tmp_path / "result.json").write_text(json.dumps(values))
    with pytest.raises(CuesmithError, match="not found"):
        load_result(tmp_path / "result.json")


def test_the_panel_says_a_result_is_malformed_and_keeps_working(panel, scored, tmp_path):  # noqa: F811
    panel.open_result(scored[1].result_json)
    before = panel.result_view.result
    broken = tmp_path / "result.json"
    broken.write_text('{"variations": [], "request": {}}')
    panel.open_result(str(broken))
    assert "cannot show the result" in panel.statusBar().currentMessage()
    assert str(broken) in panel.statusBar().currentMessage()
    assert panel.result_view.result is before, "the last good result stays on screen"
    save_screenshot(panel, "malformed_result")
    panel.open_result(scored[1].result_json)
    assert panel.result_view.result is not before


def test_the_panel_says_when_the_engine_is_down(panel, qtbot):
    panel.link.connect_engine()
    qtbot.waitUntil(lambda: "engine down" in panel.engine_label.text(), timeout=15000)
    assert panel.engine_label.objectName() == "error"
    assert "cuesmith serve" in panel.engine_info.text()
    panel.jobs.on_files(["/nowhere/clip.mp4"])
    qtbot.waitUntil(lambda: "not submitted" in panel.statusBar().currentMessage(), timeout=15000)
    panel.tabs.setCurrentWidget(panel.jobs)
    save_screenshot(panel, "engine_down")
    panel.tabs.setCurrentWidget(panel.settings_view)
    save_screenshot(panel, "settings")


def test_job_rows_follow_events_even_those_before_the_job_id(panel):
    from cuesmith.gui.jobs import JobInfo

    events = []
    panel.jobs.result_ready.connect(events.append)
    panel.jobs.on_event({"event": "progress", "job_id": "j1", "stage": "analyze", "fraction": 0.25})
    row = panel.jobs.add_job(JobInfo("j1", "score", "clip.mp4"))
    assert row.bar.value() == 250 and "analyze" in row.bar.format()
    panel.jobs.on_event({"event": "failed", "job_id": "j1", "message": "the clip has no video frames"})
    assert row.info.state == "failed" and row.message.text() == "the clip has no video frames"
    assert not row.cancel.isEnabled()
    done = panel.jobs.add_job(JobInfo("j2", "score", "other.mp4"))
    panel.jobs.on_event({"event": "result", "job_id": "j2", "result": "/x/result.json"})
    assert done.bar.value() == 1000 and [e.result for e in events] == ["/x/result.json"]


def test_dropped_files_become_score_requests(panel, tmp_path):
    asked = []
    panel.jobs.submit_requested.disconnect()
    panel.jobs.submit_requested.connect(lambda *args: asked.append(args))
    panel.jobs.start.setValue(1.5)
    panel.jobs.end.setValue(4.0)
    panel.jobs.on_files([str(tmp_path / "clip.mp4"), str(tmp_path / "reel.edl")])
    assert asked[0][:2] == ("score", {"video": str(tmp_path / "clip.mp4"), "stems": True, "start": 1.5, "end": 4.0})
    assert asked[1][:2] == ("score", {"timeline": str(tmp_path / "reel.edl")})
    assert "[1.5–4.0 s]" in asked[0][2]


def test_files_dropped_on_the_panel_are_submitted(panel, tmp_path):
    from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDragEnterEvent, QDropEvent
    from PyQt6.QtWidgets import QApplication

    asked = []
    panel.jobs.submit_requested.disconnect()
    panel.jobs.submit_requested.connect(lambda *args: asked.append(args))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "clip.mov"))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel.jobs.drop, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel.jobs.drop, drop)
    assert asked and asked[0][1] == {"video": str(tmp_path / "clip.mov"), "stems": True}


def test_keyboard_shortcuts_reach_every_tab(panel, qtbot):
    from PyQt6.QtCore import Qt

    for index in range(panel.tabs.count()):
        qtbot.keyClick(panel, Qt.Key(Qt.Key.Key_1.value + index), Qt.KeyboardModifier.ControlModifier)
        assert panel.tabs.currentIndex() == index
    assert all(view.focusPolicy() != Qt.FocusPolicy.NoFocus for view in
               (panel.jobs.drop, panel.result_view.strip, panel.regenerate.button, panel.critique_only.button))


def test_critique_only_asks_for_a_critique_of_the_users_music(panel, tmp_path):
    asked = []
    panel.critique_only.submit_requested.disconnect()
    panel.critique_only.submit_requested.connect(lambda *args: asked.append(args))
    panel.critique_only.set_video(str(tmp_path / "clip.mp4"))
    panel.critique_only.set_music(str(tmp_path / "cue.wav"))
    panel.critique_only.notes.setText("a wedding")
    panel.critique_only.button.click()
    assert asked == [("critique", {"video": str(tmp_path / "clip.mp4"), "music": str(tmp_path / "cue.wav"),
                                   "notes": "a wedding"}, "clip.mp4 with cue.wav", "critique")]


def test_a_critique_result_of_midi_shows_its_notes(view, scored, tmp_path, qtbot):  # noqa: F811
    from cuesmith.engine import Engine
    from cuesmith.gui.result_data import load_result

    truth, result = scored
    Engine().critique(truth.path, music=result.variations[1].midi, out_dir=tmp_path)
    with qtbot.waitSignal(view.thumbnails_shown, timeout=10000):
        view.show_result(load_result(tmp_path / "critique.json"))
    assert view.result.kind == "critique" and view.result.midi == result.variations[1].midi
    assert view.roll.note_count == sum(len(p.notes) for p in read_midi(result.variations[1].midi).parts)
    assert len(view.critique.cards) == 4
    save_screenshot(view, "critique_only_result")


def test_regenerate_spreads_the_tempo_range_over_the_variations():
    from cuesmith.gui.regenerate import RegenerateParams, variation_requests

    source = {"video": "/c.mp4", "start": 2.0, "end": None, "seed": 3, "clips": [], "out_dir": "/old"}
    requests = variation_requests(source, RegenerateParams(90, 120, "minor", "high", seed=7, variations=3))
    assert [r["tempo"] for r in requests] == [90, 105, 120]
    assert [r["seed"] for r in requests] == [7, 8, 9]
    assert all(r["video"] == "/c.mp4" and r["start"] == 2.0 and "end" not in r and "out_dir" not in r
               and r["mode"] == "minor" and r["density"] == "high" and r["variations"] == 1 for r in requests)
    auto = variation_requests(source, RegenerateParams(seed=1, variations=2))
    assert all("tempo" not in r and "mode" not in r for r in auto)


def test_variations_sit_side_by_side_with_their_scores(panel, scored):  # noqa: F811
    from cuesmith.gui.result_data import load_result

    result = load_result(scored[1].result_json)
    panel.show_result(result)
    worse = load_result(scored[1].result_json)
    worse.critique.overall = result.critique.overall - 1
    for job_id, shown in (("a", worse), ("b", result)):
        panel.regenerate.add_job(job_id, job_id)
        panel.regenerate.on_result(job_id, shown)
    table = panel.regenerate.table
    assert [table.item(r, 3).text() for r in range(2)] == [f"{worse.critique.overall:.1f}",
                                                             f"{result.critique.overall:.1f}"]
    assert panel.regenerate.best_row() == 1 and table.item(1, 3).font().bold()
    panel.tabs.setCurrentWidget(panel.regenerate)
    save_screenshot(panel, "regenerate")


def test_settings_persist_in_the_private_store(panel, settings_store):  # noqa: F811
    from cuesmith.gui.settings import PanelSettings

    panel.settings_view.host.setText("127.0.0.2")
    panel.settings_view.port.setValue(9555)
    panel.settings_view.token.setText("s3cret")
    panel.settings_view.start_engine.setChecked(False)
    panel.settings_view.apply()
    loaded = PanelSettings.load(settings_store)
    assert (loaded.host, loaded.port, loaded.token, loaded.start_engine) == ("127.0.0.2", 9555, "s3cret", False)


def test_a_blank_screenshot_is_caught(dark_app):  # noqa: F811
    from PyQt6.QtGui import QColor, QImage

    image = QImage(200, 100, QImage.Format.Format_RGB32)
    image.fill(QColor(30, 31, 34))
    assert image_is_blank(image)
