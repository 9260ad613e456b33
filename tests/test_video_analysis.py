"""The analysis pass on generated videos whose cuts and fades are known."""
import json
import subprocess

import numpy as np
import pytest

from cuesmith.engine import Engine
from cuesmith.engine.video import settings as analysis_settings
from cuesmith.engine.video.settings import AnalysisSettings
from media import Shot, Transition, make_video

ENGINE = Engine(use_cache=False)


def assert_cuts_exact(analysis, truth):
    """Precision and recall 1.0 with a tolerance of one frame."""
    found = [c.frame for c in analysis.cuts]
    expected = truth.cut_frames()
    assert len(found) == len(expected), f"found cuts at frames {found}, expected {expected}"
    for f, e in zip(found, expected):
        assert abs(f - e) <= 1, f"cut at frame {f}, expected {e}"


CASES = {
    "mp4-h264": dict(suffix=".mp4"),
    "webm-vp9": dict(suffix=".webm"),
    "mov": dict(suffix=".mov", size=(352, 198)),
    "mkv-odd-size": dict(suffix=".mkv", size=(322, 242)),
    "portrait": dict(suffix=".mp4", size=(180, 320)),
    "vfr": dict(suffix=".mp4", vfr=True),
    "25fps-audio": dict(suffix=".mp4", fps=25, audio=True),
}


@pytest.mark.parametrize("name", CASES)
def test_hard_cuts_found_within_one_frame(tmp_path, name):
    opts = dict(CASES[name])
    suffix = opts.pop("suffix")
    shots = [Shot(1.3, "warm", 0.2), Shot(0.9, "cold", 0.6), Shot(1.1, "forest", 0.1),
             Shot(0.7, "dusk", 0.9, shapes=5), Shot(1.0, "neon", 0.3)]
    truth = make_video(tmp_path / f"clip{suffix}", shots, **opts)
    analysis = ENGINE.analyze(truth.path)
    assert_cuts_exact(analysis, truth)
    assert analysis.transitions == []


def test_similar_colours_and_fast_motion(tmp_path):
    """A cut between two shots of one mood is still a cut; fast shapes are not."""
    shots = [Shot(1.5, "grey", 1.5, shapes=6), Shot(1.5, "grey", 0.05, shapes=1), Shot(1.5, "warm", 2.0, shapes=6)]
    truth = make_video(tmp_path / "similar.mp4", shots)
    assert_cuts_exact(ENGINE.analyze(truth.path), truth)


def test_fades_and_dissolves_are_gradual_not_cuts(tmp_path):
    shots = [Shot(2.0, "warm"), Shot(2.0, "cold"), Shot(2.0, "forest"), Shot(2.0, "neon")]
    transitions = [Transition("fade", 1.0), Transition("cut"), Transition("dissolve", 1.0)]
    truth = make_video(tmp_path / "gradual.mp4", shots, transitions)
    analysis = ENGINE.analyze(truth.path)
    assert_cuts_exact(analysis, truth)
    assert [t.kind for t in analysis.transitions] == ["fade", "dissolve"]
    for found, (start, end, _) in zip(analysis.transitions, truth.gradual):
        assert abs(found.start - start) < 0.15 and abs(found.end - end) < 0.15


def test_motion_tempo_and_colour_follow_the_picture(tmp_path):
    calm = ENGINE.analyze(make_video(tmp_path / "calm.mp4", [Shot(2.0, "cold", 0.02, shapes=1)]).path)
    busy = ENGINE.analyze(make_video(tmp_path / "busy.mp4", [Shot(2.0, "warm", 2.0, shapes=6)]).path)
    assert busy.motion.mean > 3 * calm.motion.mean
    assert busy.tempo.bpm > calm.tempo.bpm
    assert 90 <= calm.tempo.low <= calm.tempo.bpm <= calm.tempo.high <= 130
    assert busy.colour.mean_warmth > 0.2 > -0.2 > calm.colour.mean_warmth
    hist = np.asarray(busy.colour.log_chroma[0]).reshape(3, 16, 16)
    assert hist.sum() == pytest.approx(1.0, abs=1e-3)
    assert len(busy.motion.smooth) == busy.frame_count


def test_stream_facts(tmp_path):
    truth = make_video(tmp_path / "facts.mkv", [Shot(1.0)], fps=25, size=(200, 120), audio=True)
    a = ENGINE.analyze(truth.path)
    assert (a.info.width, a.info.height) == (200, 120)
    assert a.fps == pytest.approx(25, abs=0.1)
    assert a.duration == pytest.approx(1.0, abs=0.05)
    assert a.info.audio is not None and a.info.audio.sample_rate == 48000
    assert not a.variable_frame_rate


def test_variable_frame_rate_uses_timestamps(tmp_path):
    truth = make_video(tmp_path / "vfr.mp4", [Shot(2.0), Shot(2.0, "cold")], vfr=True)
    a = ENGINE.analyze(truth.path)
    assert a.variable_frame_rate
    assert a.cuts[0].time == pytest.approx(2.0, abs=0.05)
    assert a.motion.times == pytest.approx(truth.frame_times, abs=2e-3)


def test_rotation_metadata(tmp_path):
    truth = make_video(tmp_path / "rotated.mp4", [Shot(1.0)], size=(320, 180), rotation=90)
    a = ENGINE.analyze(truth.path)
    assert a.info.rotation in (90, 270)
    assert (a.info.width, a.info.height) == (180, 320)


def test_clip_range_is_relative(tmp_path):
    shots = [Shot(1.0, "warm"), Shot(1.0, "cold"), Shot(1.0, "forest"), Shot(1.0, "dusk")]
    truth = make_video(tmp_path / "range.mp4", shots)
    a = ENGINE.analyze(truth.path, start=1.5, end=3.5)
    assert [round(c.time, 2) for c in a.cuts] == [0.5, 1.5]
    assert a.duration == pytest.approx(2.0, abs=0.05)
    assert a.motion.times[0] == pytest.approx(0.0, abs=0.04)


def test_cache_makes_the_second_run_reuse_the_first(tmp_path):
    truth = make_video(tmp_path / "cached.mp4", [Shot(1.0), Shot(1.0, "cold")])
    engine = Engine(cache_dir=tmp_path / "cache")
    first = engine.analyze(truth.path)
    entries = list((tmp_path / "cache" / "analysis").glob("*.json"))
    assert len(entries) == 1
    second = engine.analyze(truth.path, progress=lambda *_: pytest.fail("decoded again"))
    assert second.to_dict() == first.to_dict()
    truth.path.write_bytes(truth.path.read_bytes() + b"\0")  # new content: a new entry
    engine.analyze(truth.path)
    assert len(list((tmp_path / "cache" / "analysis").glob("*.json"))) == 2


def test_a_new_setting_or_new_analysis_code_is_a_new_cache_entry(tmp_path, monkeypatch):
    truth = make_video(tmp_path / "keyed.mp4", [Shot(1.0), Shot(1.0, "cold")])
    engine = Engine(cache_dir=tmp_path / "cache")
    entries = lambda: list((tmp_path / "cache" / "analysis").glob("*.json"))  # noqa: E731
    decoded = []
    engine.analyze(truth.path)
    engine.analyze(truth.path, settings=AnalysisSettings(cut_ratio=2.5), progress=lambda *_: decoded.append(1))
    assert decoded and len(entries()) == 2

    edited = tmp_path / "edited"  # the analysis sources, one of them changed by a single character
    edited.mkdir()
    for source in analysis_settings.analysis_sources():
        text = source.read_text()
        (edited / source.name).write_text(text.replace("0.5 * np.abs", "0.50 * np.abs") if source.name == "cuts.py"
                                          else text)
    original = next(p for p in analysis_settings.analysis_sources() if p.name == "cuts.py")
    assert (edited / "cuts.py").read_text() != original.read_text()
    monkeypatch.setattr(analysis_settings, "analysis_sources", lambda: sorted(edited.glob("*.py")))
    analysis_settings.code_hash.cache_clear()
    try:
        decoded.clear()
        engine.analyze(truth.path, progress=lambda *_: decoded.append(1))
        assert decoded and len(entries()) == 3
    finally:
        monkeypatch.undo()
        analysis_settings.code_hash.cache_clear()
    engine.analyze(truth.path, progress=lambda *_: pytest.fail("the first entry was not reused"))


def test_log_chroma_only_on_request(tmp_path):
    truth = make_video(tmp_path / "chroma.mp4", [Shot(1.2, "warm")])
    engine = Engine(cache_dir=tmp_path / "cache")
    analysis = engine.analyze(truth.path)
    assert "log_chroma" not in analysis.to_dict()["colour"]
    assert len(analysis.to_dict(with_chroma=True)["colour"]["log_chroma"]) == len(analysis.colour.times) == 3
    assert analysis.including_chroma().to_dict() == analysis.to_dict(with_chroma=True)
    cached = engine.analyze(truth.path, progress=lambda *_: pytest.fail("decoded again"))
    assert cached.colour.log_chroma == analysis.colour.log_chroma  # the cache keeps them


def test_cli_writes_json_and_summary(tmp_path, cli):
    truth = make_video(tmp_path / "cli.mp4", [Shot(1.0), Shot(1.0, "cold")])
    out = tmp_path / "out" / "analysis.json"
    run = subprocess.run([cli, "analyze", str(truth.path), "--json", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "cuts (1): 1.00" in run.stdout
    data = json.loads(out.read_text())
    assert data["cuts"][0]["frame"] == 30 and data["version"] >= 1
    assert "log_chroma" not in data["colour"] and len(data["colour"]["brightness"]) == 4
    with_chroma = tmp_path / "out" / "with-chroma.json"
    run = subprocess.run([cli, "analyze", str(truth.path), "--json", str(with_chroma), "--with-chroma"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert len(json.loads(with_chroma.read_text())["colour"]["log_chroma"][0]) == 3 * 16 * 16
