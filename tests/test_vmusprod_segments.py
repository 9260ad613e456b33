"""Segment-wise decoding (issue 19): a long cue decoded with a bounded cache and memory is, in structure,
what one pass gives: no gap, no doubled notes, one key and tempo map across the segment boundaries."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from cuesmith.engine.cli import build_parser
from cuesmith.engine.music.tokens import METER, N_FIELDS, PITCH, POSITION, QUALITY, ROOT, TEMPO, TYPE, TokenType
from cuesmith.engine.pipelines.vmusprod import VMusProd, bar_plan
from cuesmith.engine.pipelines.vmusprod import pipeline, segments
from cuesmith.engine.pipelines.vmusprod.segments import SegmentConfig
from cuesmith.engine.runtime.context import CONTEXT_FIELDS

from vmusprod_helpers import make_plan, shipped_model

ONE_PASS = SegmentConfig(slots=10 ** 6, memory_bars=10 ** 6)
TINY = SegmentConfig(slots=40, overlap_bars=1, memory_bars=3)  # a 24-bar cue crosses several boundaries


@pytest.fixture(scope="module")
def model():
    return VMusProd(shipped_model())


def generate(model, plan, config, seed=3, variations=3):
    model.segments = config
    try:
        return model.generate_stages(plan, variations=variations, seed=seed)
    finally:
        model.segments = SegmentConfig()


@pytest.mark.slow
def test_cutting_the_memory_to_the_bar_window_changes_no_token(model):
    """The memory a row is not allowed to see added exactly 0: the cut changes logits only by rounding."""
    plan = make_plan(n_bars=16, sections=(0, 8))
    whole = generate(model, plan, ONE_PASS)
    cut = generate(model, plan, SegmentConfig(slots=10 ** 6, memory_bars=2))
    for stage in ("melody", "accompaniment"):
        for a, b in zip(whole.tokens[stage], cut.tokens[stage]):
            assert np.array_equal(a, b), stage


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["major", "minor"])
def test_segment_wise_music_is_one_pass_music_in_structure(model, monkeypatch, mode):
    plan = make_plan(n_bars=24, mode=mode, sections=(0, 8, 16))
    bars = bar_plan(plan)
    restarts = Counter()
    restart = segments.Segments._restart

    def counted(self, rows):
        restarts[self.runner.stage] += 1
        return restart(self, rows)

    monkeypatch.setattr(segments.Segments, "_restart", counted)
    one = generate(model, plan, ONE_PASS)
    assert not restarts
    split = generate(model, plan, TINY)
    assert all(restarts[stage] >= 2 for stage in ("chord", "melody", "accompaniment")), restarts
    for stage in ("chord", "melody", "accompaniment"):
        for whole, parts in zip(one.tokens[stage], split.tokens[stage]):
            # one tempo map: the same BAR tokens (metre, tempo), one BOS, one EOS at the end
            assert np.array_equal(bar_rows(parts), bar_rows(whole)), stage
            assert len(bar_rows(parts)) == plan.n_bars
            assert (parts[:, TYPE] == TokenType.BOS).sum() == 1 and parts[0, TYPE] == TokenType.BOS
            assert (parts[:, TYPE] == TokenType.EOS).sum() == 1 and parts[-1, TYPE] == TokenType.EOS
            assert_nothing_written_twice(parts)
    for tokens in split.tokens["chord"]:  # one key, and the cadence closes it
        chords = tokens[tokens[:, TYPE] == TokenType.CHORD]
        assert bars.key_chords[chords[:, ROOT], chords[:, QUALITY]].all()
        assert (chords[-1, ROOT], chords[-1, QUALITY]) == bars.cadence[-1]
    for stage in ("melody", "accompaniment"):
        for tokens in split.tokens[stage]:
            notes = tokens[tokens[:, TYPE] == TokenType.NOTE]
            assert bars.key_pitches[notes[:, PITCH]].all(), stage
    for song in split.songs:  # no gap: every bar sounds a new note of the melody or the accompaniment
        onsets = {n.start // 1920 for p in song.parts if p.name != "chords" for n in p.notes}
        assert onsets == set(range(plan.n_bars))
    density = [notes_per_bar(g.songs, plan.n_bars) for g in (one, split)]
    assert 0.6 <= density[1] / density[0] <= 1.6, density


@pytest.mark.slow
def test_the_in_place_cache_writes_what_the_concatenating_graph_writes(model, monkeypatch):
    """The in-place decoder graphs (one preallocated cache per segment, runtime/kv_cache.py) and the portable
    ones that concatenate their caches compute the same logits: the same seed gives the same tokens, across
    segment restarts and memory cuts."""
    assert all(runner.in_place for runner in model.runners.values())
    fp32 = VMusProd(shipped_model(), int8=False)
    assert all(runner.in_place for runner in fp32.runners.values())
    monkeypatch.setattr(pipeline, "decoder_role", lambda folder, stage, int8: "decoder")
    portable = VMusProd(shipped_model(), int8=False)
    assert not any(runner.in_place for runner in portable.runners.values())
    plan = make_plan(n_bars=24, sections=(0, 8, 16))
    in_place, concatenated = generate(fp32, plan, TINY), generate(portable, plan, TINY)
    for stage in ("chord", "melody", "accompaniment"):
        for a, b in zip(in_place.tokens[stage], concatenated.tokens[stage]):
            assert np.array_equal(a, b), stage


def test_the_folder_chooses_int8_unless_asked_and_the_cli_can_ask_either_way(model):
    """The shipped manifest's "default_int8" (validation NLL of the int8 graphs within 0.02% of fp32's)."""
    assert shipped_model().joinpath("manifest.json").read_text().count('"default_int8": true') == 1
    assert model.graphs["accompaniment"][1] == "accompaniment.decoder.inplace.int8.onnx"
    assert VMusProd(shipped_model(), int8=False).graphs["accompaniment"][1] == "accompaniment.decoder.inplace.onnx"
    parser = build_parser()
    chosen = [parser.parse_args(["score", "v.mp4", "--out", "o", *flag]).int8 for flag in ([], ["--int8"], ["--fp32"])]
    assert chosen == [None, True, False]
    with pytest.raises(SystemExit):
        parser.parse_args(["score", "v.mp4", "--out", "o", "--int8", "--fp32"])


def test_an_in_place_cache_refuses_a_step_past_its_capacity(model):
    runner = model.runners["chord"]
    cache = runner.empty_cache(1, capacity=2)
    cross, memory_bar = runner.memory(1, None, None)
    token = np.zeros((1, N_FIELDS), dtype=np.int64)
    context = np.zeros((1, len(CONTEXT_FIELDS)), dtype=np.int64)
    for _ in range(2):
        runner.step(token, context, cache, cross, memory_bar)
    assert cache.length == 2
    with pytest.raises(ValueError, match="full"):
        runner.step(token, context, cache, cross, memory_bar)


def bar_rows(tokens: np.ndarray) -> np.ndarray:
    return tokens[tokens[:, TYPE] == TokenType.BAR][:, [METER, TEMPO]]


def assert_nothing_written_twice(tokens: np.ndarray) -> None:
    """Positions rise within each bar and no pitch sounds twice at one onset: a primer replayed into the
    output would repeat a bar's positions or notes."""
    seen, last = set(), 0
    bar = -1
    for row in tokens:
        if row[TYPE] == TokenType.BAR:
            bar, last = bar + 1, 0
        elif row[TYPE] == TokenType.POSITION:
            assert row[POSITION] > last
            last = row[POSITION]
        elif row[TYPE] == TokenType.NOTE:
            key = (bar, last, row[PITCH])
            assert key not in seen
            seen.add(key)


def notes_per_bar(songs, n_bars):
    return np.mean([sum(len(p.notes) for p in s.parts if p.name != "chords") / n_bars for s in songs])


class FakeRunner:
    bar_window = 1


def test_each_row_keeps_the_memory_of_its_bar_window_and_the_first_token():
    bars = np.array([[0, 0, 1, 1, 2, 3, 4, 5, 5, 6], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
    cross = {"cross_k_0": np.arange(2 * 3 * 10 * 2, dtype=np.float32).reshape(2, 3, 10, 2)}
    segment = segments.Segments(FakeRunner(), None, cross, bars, SegmentConfig(memory_bars=2))
    segment._cut_memory(np.array([4, 1]), np.array([4, 1]))  # row 0 serves queries of bars 4-5, row 1 of 1-2
    kept = [[0, 5, 6, 7, 8, 9], [0, 1, 2, 3]]  # bars 3..6 (and token 0); bars 0..3
    assert segment.memory_bar.tolist() == [[0, 3, 4, 5, 5, 6], [0, 1, 2, 3, -1, -1]]
    for row, index in enumerate(kept):
        assert np.array_equal(segment.cross["cross_k_0"][row, :, :len(index)], cross["cross_k_0"][row][:, index])
