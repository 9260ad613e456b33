"""The panel against a real `cuesmith serve` (tests/bridge_helpers.py): submit a generated clip, watch the
progress reach the end, see the critique and the piano roll filled from the real result; a failing job,
a cancelled one, and an engine the panel starts itself."""
import json
from pathlib import Path

import pytest

from bridge_helpers import engine_process, free_udp_port, short_clip  # noqa: F401
from panel_helpers import dark_app, save_screenshot, scored, settings_store  # noqa: F401

from cuesmith.engine.music.midi_io import read_midi
from cuesmith.engine.pipelines import FAMILIES

JOB_TIMEOUT = 120_000  # ms: a score of a 3 s clip on two busy cores


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return short_clip(tmp_path_factory.mktemp("panel-clip") / "clip.mp4")


@pytest.fixture
def panel(qtbot, dark_app, settings_store, engine_process):  # noqa: F811
    from cuesmith.gui.window import PanelWindow

    window = PanelWindow(settings_store, overrides={"host": engine_process.host, "port": engine_process.port,
                                                    "start_engine": False})
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.link.connected, timeout=15000)
    yield window
    window.close()


def progress_recorder(panel):
    seen = []
    panel.link.event.connect(lambda e: seen.append(e) if e.get("event") == "progress" else None)
    return seen


def test_a_submitted_clip_fills_the_result_view(panel, clip, qtbot, engine_process):  # noqa: F811
    assert "engine" in panel.engine_label.text() and str(engine_process.port) in panel.engine_label.text()
    qtbot.waitUntil(lambda: "providers: CPU" in panel.engine_info.text(), timeout=15000)
    progress = progress_recorder(panel)
    with qtbot.waitSignal(panel.result_view.filled, timeout=JOB_TIMEOUT) as filled:
        panel.jobs.on_files([str(clip)])
    row = next(iter(panel.jobs.rows.values()))
    assert row.info.state == "done" and row.bar.value() == 1000
    assert progress and max(e["fraction"] for e in progress) > 0.5
    result_json = Path(filled.args[0])
    assert result_json.name == "result.json" and engine_process.output_root in result_json.parents
    result = json.loads(result_json.read_text())
    critique = json.loads(Path(result["critique"]["json"]).read_text())
    view = panel.result_view
    assert panel.tabs.currentWidget() is view
    assert {c.dimension.name: c.bar.value() for c in view.critique.cards} == \
        {d["name"]: 0 if d["score"] is None else round(10 * d["score"]) for d in critique["dimensions"]}
    assert [m.grade for m in view.strip.moments] == [m["grade"] for m in critique["key_moments"]]
    song = read_midi(result["variations"][0]["midi"])
    assert view.roll.note_count == sum(len(p.notes) for p in song.parts) > 0
    assert view.handle_widgets()[0].mime().urls()[0].toLocalFile() == result["variations"][0]["midi"]
    qtbot.waitUntil(lambda: len(view.strip.thumbs) > 0, timeout=10000)
    save_screenshot(panel, "live_result")
    panel.tabs.setCurrentWidget(panel.jobs)
    save_screenshot(panel, "live_jobs")


def test_a_failing_job_is_shown_in_plain_words_and_the_panel_goes_on(panel, clip, tmp_path, qtbot):
    broken = tmp_path / "broken.mp4"
    broken.write_text("this is not a video")
    panel.jobs.on_files([str(broken)])
    qtbot.waitUntil(lambda: any(r.info.state == "failed" for r in panel.jobs.rows.values()), timeout=JOB_TIMEOUT)
    row = next(r for r in panel.jobs.rows.values() if r.info.state == "failed")
    assert not row.message.isHidden() and "broken.mp4" in row.message.text()
    panel.tabs.setCurrentWidget(panel.jobs)
    assert "Traceback" not in row.message.text()
    save_screenshot(panel, "job_failed")
    with qtbot.waitSignal(panel.result_view.filled, timeout=JOB_TIMEOUT):
        panel.jobs.on_files([str(clip)])


def test_a_queued_job_can_be_cancelled(panel, clip, qtbot):
    panel.jobs.on_files([str(clip), str(clip)])
    qtbot.waitUntil(lambda: len(panel.jobs.rows) == 2, timeout=15000)
    second = list(panel.jobs.rows.values())[-1]
    second.cancel.click()
    qtbot.waitUntil(lambda: second.info.state in ("cancelled", "done"), timeout=JOB_TIMEOUT)
    assert second.info.state == "cancelled" and second.bar.format() == "cancelled"


def test_the_panel_starts_an_engine_when_none_answers(qtbot, dark_app, settings_store, tmp_path,  # noqa: F811
                                                      monkeypatch):
    from cuesmith.gui.window import PanelWindow

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the started engine's journal stays private
    monkeypatch.setenv("CUESMITH_CACHE_DIR", str(tmp_path / "cache"))
    window = PanelWindow(settings_store, overrides={"port": free_udp_port(), "start_engine": True,
                                                    "output_folder": str(tmp_path / "jobs")})
    qtbot.addWidget(window)
    window.show()
    # the link's worker thread sets `connected` before its signal reaches the label: wait for what the user sees
    qtbot.waitUntil(lambda: any(w in window.engine_label.text() for w in ("started an engine", "down")), timeout=60000)
    assert window.link.connected, window.engine_label.text()
    assert "started an engine" in window.engine_label.text()
    process = window.link.process
    assert process.poll() is None
    save_screenshot(window, "engine_started")
    window.close()
    assert process.poll() is not None, "the panel stops the engine it started"


def test_critique_only_judges_the_users_audio(panel, clip, tmp_path, qtbot):
    from media import write_audio_only

    music = write_audio_only(tmp_path / "cue.m4a", duration=3.0)
    panel.tabs.setCurrentWidget(panel.critique_only)
    panel.critique_only.set_video(str(clip))
    panel.critique_only.set_music(str(music))
    with qtbot.waitSignal(panel.result_view.filled, timeout=JOB_TIMEOUT) as filled:
        panel.critique_only.button.click()
    assert Path(filled.args[0]).name == "critique.json"
    view = panel.result_view
    assert view.result.kind == "critique" and view.result.music_file == str(music)
    assert view.roll.music is None and "audio" in view.roll.empty_text
    assert [view.preview.stem.itemText(i) for i in range(view.preview.stem.count())] == ["music"]
    critique = json.loads(Path(filled.args[0]).read_text())
    assert len(view.critique.cards) == len(critique["dimensions"]) == 4
    qtbot.waitUntil(lambda: len(view.strip.thumbs) > 0, timeout=10000)
    save_screenshot(panel, "live_critique_only")


def test_an_engine_that_goes_away_is_reported_and_the_panel_goes_on(qtbot, dark_app, settings_store,  # noqa: F811
                                                                    tmp_path, scored):  # noqa: F811
    from bridge_helpers import running_engine
    from cuesmith.gui.window import PanelWindow

    with running_engine(tmp_path / "engine") as engine:
        window = PanelWindow(settings_store, overrides={"host": engine.host, "port": engine.port,
                                                        "start_engine": False})
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.link.connected, timeout=15000)
        engine.kill()
        window.link.heartbeat()
        qtbot.waitUntil(lambda: "engine down" in window.engine_label.text(), timeout=15000)
    assert not window.link.connected
    window.open_result(scored[1].result_json)
    assert window.result_view.result is not None and window.tabs.currentWidget() is window.result_view
    window.close()


def test_regenerated_variations_come_back_side_by_side(panel, clip, qtbot):
    with qtbot.waitSignal(panel.result_view.filled, timeout=JOB_TIMEOUT):
        panel.jobs.on_files([str(clip)])
    regenerate = panel.regenerate
    panel.tabs.setCurrentWidget(regenerate)
    regenerate.tempo_low.setValue(90)
    regenerate.tempo_high.setValue(120)
    regenerate.variations.setValue(2)
    regenerate.mode.setCurrentText("minor")
    regenerate.button.click()
    table = regenerate.table
    qtbot.waitUntil(lambda: table.rowCount() == 2 and all(table.cellWidget(r, 6) for r in range(2)),
                    timeout=2 * JOB_TIMEOUT)
    overall = [float(table.item(r, 3).text()) for r in range(2)]
    assert all(1.0 <= score <= 10.0 for score in overall)
    best = regenerate.best_row()
    assert overall[best] == max(overall) and table.item(best, 3).font().bold()
    save_screenshot(panel, "live_regenerate")
    table.cellWidget(best, 6).click()
    kept = json.loads(Path(panel.result_view.result.path).read_text())
    assert kept["request"]["tempo"] in (90.0, 120.0) and kept["request"]["mode"] == "minor"
    assert kept["critique"]["overall"] == overall[best]
    assert panel.tabs.currentWidget() is panel.result_view


def test_a_dropped_timeline_is_scored_as_one_piece(panel, clip, qtbot):
    edl = clip.parent / "panel-edit.edl"
    edl.write_text("TITLE: panel\nFCM: NON-DROP FRAME\n\n"
                   "001  A        V     C        00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00\n"
                   f"* FROM CLIP NAME:  {clip.name}\n"
                   "002  A        V     C        00:00:01:15 00:00:02:15 01:00:01:00 01:00:02:00\n"
                   f"* FROM CLIP NAME:  {clip.name}\n")
    with qtbot.waitSignal(panel.result_view.filled, timeout=JOB_TIMEOUT):
        panel.jobs.on_files([str(edl)])
    shown = panel.result_view.result
    assert shown.request["timeline"] == str(edl) and len(shown.request["clips"]) == 2
    assert shown.duration == pytest.approx(2.0, abs=0.1)
    assert any(abs(t - 1.0) < 0.05 for t in shown.cut_times), "the edit point is a cut"
    assert panel.result_view.roll.note_count > 0


def test_the_test_only_audio_family_flows_through_the_panel(qtbot, dark_app, settings_store,  # noqa: F811
                                                            clip, tmp_path, monkeypatch):
    """tests/families/fixed_audio.py, registered only through $CUESMITH_FAMILIES: picked in the panel, scored
    by a real `cuesmith serve`, shown with its critique, time strip and audio (no MIDI)."""
    from bridge_helpers import running_engine
    from cuesmith.gui.window import PanelWindow

    monkeypatch.setenv("CUESMITH_FAMILIES", f"fixed_audio={Path(__file__).parent / 'families' / 'fixed_audio.py'}")
    with running_engine(tmp_path / "engine") as engine:
        window = PanelWindow(settings_store, overrides={"host": engine.host, "port": engine.port,
                                                        "start_engine": False})
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.link.connected, timeout=15000)
        families = [window.regenerate.family.itemText(i) for i in range(window.regenerate.family.count())]
        assert families == [*FAMILIES, "fixed_audio"]
        with qtbot.waitSignal(window.result_view.filled, timeout=JOB_TIMEOUT) as filled:
            window.submit("score", {"video": str(clip), "family": "fixed_audio", "stems": True}, clip.name, "jobs")
        result = json.loads(Path(filled.args[0]).read_text())
        assert result["model"]["family"] == "fixed_audio" and result["placement"]["midi"] is None
        view = window.result_view
        assert view.roll.music is None and len(view.critique.cards) == 4
        assert [(m.time, m.grade) for m in view.strip.moments] == \
            [(m["time"], m["grade"]) for m in result["placement"]["markers"] if m["grade"]] != []
        assert view.preview.player.source().toLocalFile() == result["placement"]["audio"]["mix"]
        assert [h.text().split(" ", 1)[1] for h in view.handle_widgets()] == ["mix wav", "clicks wav", "pad wav"]
        save_screenshot(window, "live_audio_only_result")
        window.close()
