"""Fades over flat and textured pictures, to black and to white: no hard cuts, true spans (issue 14, case 9)."""
import pytest

from cuesmith.engine import Engine
from cuesmith.engine.video.settings import AnalysisSettings
from media import Shot, Transition, make_video

ENGINE = Engine(use_cache=False)
FPS = 30
SIZE = (192, 108)


def assert_spans(analysis, truth, kinds=True):
    """Every true gradual transition found once, start and end within two frames; no hard cut."""
    assert analysis.cuts == [], f"false cuts at {[round(c.time, 2) for c in analysis.cuts]}"
    found = [(round(t.start, 3), round(t.end, 3), t.kind) for t in analysis.transitions]
    expected = [(round(a, 3), round(b, 3), k) for a, b, k in truth.gradual]
    assert len(found) == len(expected), f"found {found}, expected {expected}"
    tolerance = 2.0 / FPS + 1e-3
    for (start, end, kind), (true_start, true_end, true_kind) in zip(found, expected):
        assert abs(start - true_start) <= tolerance and abs(end - true_end) <= tolerance, (found, expected)
        if kinds:
            assert kind == true_kind, (found, expected)


def test_flat_grey_black_to_white_to_black(tmp_path):
    """The scene-detector test clip: one flat frame, its level ramping 0 -> 255 -> 0 over 10 s."""
    truth = make_video(tmp_path / "ramp.mp4", [Shot(10.0, "flat-white", 0.0, shapes=0)], fps=FPS, size=SIZE,
                       opening=Transition("fade_in", 5.0), closing=Transition("fade_out", 5.0))
    analysis = ENGINE.analyze(truth.path)
    assert_spans(analysis, truth, kinds=False)
    assert all(t.kind != "dissolve" for t in analysis.transitions)


def test_textured_fades_to_white(tmp_path):
    shots = [Shot(2.0, "warm", 0.3), Shot(2.0, "cold", 0.3), Shot(2.0, "forest", 0.2)]
    transitions = [Transition("fade", 1.0, via="white"), Transition("cut")]
    truth = make_video(tmp_path / "white.mp4", shots, transitions, fps=FPS, size=SIZE,
                       closing=Transition("fade_out", 1.0, via="white"))
    analysis = ENGINE.analyze(truth.path)
    assert [round(c.time, 2) for c in analysis.cuts] == [4.0]
    analysis.cuts = []
    assert_spans(analysis, truth)
    assert [t.via for t in analysis.transitions] == ["white", "white"]


def test_dip_to_black_has_its_true_start(tmp_path):
    """A shot dips to black and comes back: one fade, where it is, not from the clip's start."""
    shots = [Shot(2.5, "forest", 0.2), Shot(2.0, "forest", 0.2)]
    truth = make_video(tmp_path / "dip.mp4", shots, [Transition("fade", 0.6)], fps=FPS, size=SIZE)
    analysis = ENGINE.analyze(truth.path)
    assert_spans(analysis, truth)
    assert analysis.transitions[0].via == "black"


@pytest.mark.parametrize("via", ["black", "white"])
def test_fades_over_flat_and_near_flat_pictures(tmp_path, via):
    shots = [Shot(2.0, "flat-grey", 0.0, shapes=0), Shot(2.0, "near-flat", 0.1, shapes=2),
             Shot(2.0, "flat-grey", 0.0, shapes=0)]
    transitions = [Transition("fade", 1.0, via=via), Transition("fade", 1.4, via=via)]
    truth = make_video(tmp_path / f"flat-{via}.mp4", shots, transitions, fps=FPS, size=SIZE,
                       opening=Transition("fade_in", 0.8, via=via), closing=Transition("fade_out", 0.8, via=via))
    assert_spans(ENGINE.analyze(truth.path), truth)


def test_cuts_between_fades_stay_exact(tmp_path):
    """Fades do not mask the hard cuts around them, nor do they hide a cut between two flat pictures."""
    shots = [Shot(1.5, "dusk", 0.6, shapes=4), Shot(1.2, "flat-grey", 0.0, shapes=0), Shot(1.2, "flat-white", 0.0,
                                                                                         shapes=0),
             Shot(1.5, "neon", 0.5), Shot(1.5, "cold", 0.2)]
    transitions = [Transition("cut"), Transition("cut"), Transition("cut"), Transition("fade", 1.0, via="white")]
    truth = make_video(tmp_path / "mixed.mp4", shots, transitions, fps=FPS, size=SIZE,
                       opening=Transition("fade_in", 1.0))
    analysis = ENGINE.analyze(truth.path)
    expected = truth.cut_frames()
    assert [c.frame for c in analysis.cuts] == pytest.approx(expected, abs=1)
    analysis.cuts = []
    assert_spans(analysis, truth)


def test_slow_fade_that_the_encoder_delivers_in_jumps(tmp_path):
    """A 3 s fade of a flat picture, strongly compressed: x264 holds it still for frames, then jumps a few
    levels at once. Those jumps are steps of the fade; the cut to the flat picture before it stays a cut."""
    shots = [Shot(1.5, "near-flat", 0.1, shapes=2), Shot(4.0, "flat-grey", 0.0, shapes=0)]
    truth = make_video(tmp_path / "slow.mp4", shots, fps=FPS, size=SIZE, crf=30,
                       closing=Transition("fade_out", 3.0))
    unguarded = ENGINE.analyze(truth.path, settings=AnalysisSettings(fade_step=-1.0))
    assert len(unguarded.cuts) > 2, "the encoder no longer delivers this fade in jumps: the test proves nothing"
    analysis = ENGINE.analyze(truth.path)
    assert [c.frame for c in analysis.cuts] == truth.cut_frames()
    analysis.cuts = []
    assert_spans(analysis, truth)
