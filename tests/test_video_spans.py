"""A long clip analysed in spans (cut at keyframes, decoded in parallel) measures what one pass measures."""
import threading

import pytest

from cuesmith.engine.video import analysis
from cuesmith.engine.video.decode import open_container, probe
from media import Shot, Transition, make_video

SHOTS = [Shot(5.0, "warm", 0.3), Shot(7.0, "cold", 0.8, shapes=4), Shot(5.0, "forest", 0.2),
         Shot(4.5, "dusk", 1.2, shapes=5), Shot(6.0, "neon", 0.3), Shot(4.5, "grey", 0.6)]
TRANSITIONS = [Transition("cut"), Transition("cut"), Transition("dissolve", 1.0), Transition("cut"),
               Transition("fade", 1.0)]
ENCODINGS = {
    "keyframe every 3 s": {"g": "45"},
    "B-frames": {"preset": "faster", "g": "45", "bf": "3"},
    "B-frames, open GOP": {"preset": "faster", "g": "60", "bf": "3", "x264-params": "open-gop=1"},
}


def analysed(path, spans: int, monkeypatch, start=None, end=None):
    monkeypatch.setattr(analysis, "ANALYSIS_SPANS", spans)
    return analysis.analyze(path, start, end).to_dict(with_chroma=True)


def bounds_of(path, start=0.0, end=None) -> list:
    container = open_container(path)
    try:
        return analysis.span_bounds(container, probe(container, path), start, end)
    finally:
        container.close()


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("clip_range", [(None, None), (2.5, 31.0)])
def test_spans_measure_what_one_pass_measures(tmp_path, monkeypatch, encoding, clip_range):
    truth = make_video(tmp_path / "long.mp4", SHOTS, TRANSITIONS, fps=15, encoder_options=ENCODINGS[encoding])
    monkeypatch.setattr(analysis, "ANALYSIS_SPANS", 3)
    assert len(bounds_of(truth.path, clip_range[0] or 0.0, clip_range[1])) >= 3  # spans, or the test is moot
    one_pass = analysed(truth.path, 1, monkeypatch, *clip_range)
    spans = analysed(truth.path, 3, monkeypatch, *clip_range)
    assert spans == one_pass
    assert len(one_pass["cuts"]) >= 3 and one_pass["frame_count"] > 400


def test_a_stream_without_an_index_is_one_span(tmp_path, monkeypatch):
    truth = make_video(tmp_path / "long.ts", SHOTS[:5], TRANSITIONS[:4], fps=10, encoder_options={"g": "30"})
    monkeypatch.setattr(analysis, "ANALYSIS_SPANS", 3)
    assert bounds_of(truth.path) == []
    result = analysis.analyze(truth.path)
    assert [c.time for c in result.cuts] == pytest.approx([5.0, 12.0, 21.5], abs=0.11)


def test_short_clips_are_one_span(tmp_path, monkeypatch):
    truth = make_video(tmp_path / "short.mp4", SHOTS[:3], TRANSITIONS[:2], fps=10, encoder_options={"g": "10"})
    monkeypatch.setattr(analysis, "ANALYSIS_SPANS", 4)
    assert bounds_of(truth.path) == []  # 17 s: under two spans of MIN_SPAN_S


def test_a_progress_callback_that_raises_stops_every_span(tmp_path, monkeypatch):
    """A cancelled job (its progress callback raises) ends the analysis with that error, spans and all."""
    truth = make_video(tmp_path / "long.mp4", SHOTS, TRANSITIONS, fps=15, encoder_options={"g": "45"})
    monkeypatch.setattr(analysis, "ANALYSIS_SPANS", 3)
    monkeypatch.setattr(analysis, "PROGRESS_EVERY_S", 0.001)
    calls = []

    def cancel(stage, fraction):
        calls.append(fraction)
        raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt, match="cancelled"):
        analysis.analyze(truth.path, progress=cancel)
    assert len(calls) == 1 and calls[0] < 1.0  # raised while the spans were decoding
    assert not [t for t in threading.enumerate() if t.name.startswith(("analysis-span", "frame-stats"))]
