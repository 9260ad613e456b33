"""The cut-locked planner on generated clips: cuts on beats of the written MIDI, tempo in range."""
import numpy as np
import pytest

from cuesmith.engine import Engine
from cuesmith.engine.music.midi_io import read_midi, write_midi
from cuesmith.engine.music.score import Key, Note, Part
from cuesmith.engine.planning import PlanOptions, first_plan, plan
from cuesmith.engine.planning.cutlock import MAX_STEP_BPM
from cuesmith.engine.music.render import tick_seconds
from media import MOODS, Shot, Transition, demo_shots, make_video

ENGINE = Engine(use_cache=False)


def random_shots(seed: int, n: int = 5, shortest: float = 1.6, longest: float = 4.5) -> list[Shot]:
    rng = np.random.default_rng(seed)
    moods = list(MOODS)
    return [Shot(float(rng.uniform(shortest, longest)), moods[(seed + i) % len(moods)],
                 float(rng.uniform(0.05, 0.9))) for i in range(n)]


def beat_part(plan_) -> Part:
    """One note on every beat of the plan, accented on downbeats: a part placed from the plan's beats."""
    beats = plan_.beat_ticks()
    notes = [Note(tick, tick + 240, 72 if down else 64, 110 if down else 70) for tick, down in beats]
    return Part("click", notes, program=0)


def written_beats(plan_, tmp_path) -> tuple[np.ndarray, np.ndarray, object]:
    song = plan_.empty_song()
    song.parts = [beat_part(plan_)]
    path = write_midi(song, tmp_path / "plan.mid")
    back = read_midi(path)
    ticks = [t for t, _ in back.beats(back.end_tick)]
    downs = [t for t, down in back.beats(back.end_tick) if down]
    return tick_seconds(back, np.array(ticks)), tick_seconds(back, np.array(downs)), back


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_cut_within_one_frame_of_a_beat_of_the_written_midi(tmp_path, seed):
    truth = make_video(tmp_path / "clip.mp4", random_shots(seed), size=(160, 96), fps=30)
    analysis = ENGINE.analyze(truth.path)
    assert len(analysis.cuts) == 4
    p = plan(analysis)
    assert p.planner == "cut-locked" and not [w for w in p.warnings if "not locked" in w]
    beats, downbeats, song = written_beats(p, tmp_path)
    frame = 1.0 / analysis.fps
    for cut in analysis.cuts:
        assert np.min(np.abs(beats - cut.time)) <= frame, f"cut {cut.time} is off the beat grid"
        # the metre is free, so each cut starts a bar
        assert np.min(np.abs(downbeats - cut.time)) <= frame, f"cut {cut.time} is not a downbeat"
    # the notes we placed from the plan sound on the cut beats
    onsets = tick_seconds(song, np.array([n.start for n in song.parts[0].notes]))
    assert all(np.min(np.abs(onsets - c.time)) <= frame for c in analysis.cuts)
    # cut markers in the conductor track, one per cut, at the cut
    marks = tick_seconds(song, np.array([m.tick for m in song.markers]))
    assert len(song.markers) == 4 and np.allclose(marks, [c.time for c in analysis.cuts], atol=frame)
    bpms = [t.bpm for t in song.tempos]
    assert 90 - 1e-3 <= min(bpms) and max(bpms) <= 130 + 1e-3


def test_constant_baseline_misses_cuts_the_planner_hits(tmp_path):
    truth = make_video(tmp_path / "clip.mp4", random_shots(7), size=(160, 96))
    analysis = ENGINE.analyze(truth.path)
    base = np.array([s for s, _ in first_plan(analysis).beat_seconds()])
    locked = np.array([s for s, _ in plan(analysis).beat_seconds()])
    off_base = [np.min(np.abs(base - c.time)) for c in analysis.cuts]
    off_locked = [np.min(np.abs(locked - c.time)) for c in analysis.cuts]
    assert max(off_locked) < 1e-4
    assert max(off_base) > 1.0 / analysis.fps  # a constant tempo cannot hit them all


def test_long_shots_keep_the_tempo_step_bound(tmp_path):
    shots = [Shot(5.0, "warm", 0.2), Shot(6.3, "cold", 0.5), Shot(5.6, "forest", 0.3), Shot(4.0, "dusk", 0.6)]
    analysis = ENGINE.analyze(make_video(tmp_path / "long.mp4", shots, size=(160, 96)).path)
    p = plan(analysis)
    assert p.warnings == []
    bpms = [t.bpm for t in p.tempos]
    steps = np.abs(np.diff(bpms))
    # tempo changes only at bar lines or cuts, by at most MAX_STEP_BPM each
    assert steps.max(initial=0) <= MAX_STEP_BPM + 1e-6
    bar_or_cut = set(p.bar_ticks) | set(p.cut_ticks)
    assert all(t.tick in bar_or_cut for t in p.tempos)
    assert len(p.controls) == p.n_bars and p.bar_ticks[0] == 0
    assert p.empty_song().seconds_to_tick(p.duration) <= p.bar_ticks[-1] + p.empty_song().time_signature_at(
        p.bar_ticks[-1]).ticks_per_bar  # the bars cover the picture


def test_pinned_tempo_metre_and_key(tmp_path):
    shots = [Shot(4.0, "warm", 0.2), Shot(4.2, "cold", 0.6), Shot(3.1, "neon", 0.3)]
    analysis = ENGINE.analyze(make_video(tmp_path / "pin.mp4", shots, size=(160, 96)).path)
    options = PlanOptions(tempo=100.0, key=Key(2, "minor"), time_signature=(3, 4), pin_time_signature=True)
    p = plan(analysis, options)
    assert all(95.0 - 1e-6 <= t.bpm <= 105.0 + 1e-6 for t in p.tempos)
    assert {(ts.numerator, ts.denominator) for ts in p.time_signatures} == {(3, 4)}
    assert p.key == Key(2, "minor") and {c.mode for c in p.controls} == {"minor"}
    beats = np.array([s for s, _ in p.beat_seconds()])
    for cut in analysis.cuts:  # a pinned metre still puts cuts on beats
        assert np.min(np.abs(beats - cut.time)) < 1e-4


def test_controls_follow_motion_fades_and_colour(tmp_path):
    shots = [Shot(4.0, "grey", 0.02, shapes=1), Shot(4.0, "neon", 1.2, shapes=6), Shot(4.0, "cold", 0.3)]
    transitions = [Transition("cut"), Transition("fade", 1.0)]
    analysis = ENGINE.analyze(make_video(tmp_path / "ctl.mp4", shots, transitions, size=(160, 96)).path)
    p = plan(analysis)
    song = p.empty_song()
    starts = [song.tick_to_seconds(t) for t in p.bar_ticks]
    ends = starts[1:] + [1e9]
    fade = analysis.transitions[0]
    calm = [c for s, c in zip(starts, p.controls) if s < 3.5]
    busy = [c for s, e, c in zip(starts, ends, p.controls) if 3.9 < s and e < fade.start]
    assert np.mean([c.density for c in busy]) > np.mean([c.density for c in calm]) + 2
    assert np.mean([c.strength for c in busy]) > np.mean([c.strength for c in calm])
    in_fade = [c for s, e, c in zip(starts, ends, p.controls) if s < fade.end and e > fade.start]
    assert in_fade and max(c.strength for c in in_fade) < 0.7 * 104
    cut_bar = int(np.argmin(np.abs(np.array(starts) - analysis.cuts[0].time)))
    assert p.controls[cut_bar].section_start


def test_clip_without_cuts_is_one_section_at_its_motion_tempo(tmp_path):
    analysis = ENGINE.analyze(make_video(tmp_path / "one.mp4", [Shot(5.0, "warm", 0.3)], size=(160, 96)).path)
    p = plan(analysis)
    assert p.cut_ticks == [] and p.markers == []
    assert [c.section_start for c in p.controls].count(True) == 1
    assert abs(p.tempos[0].bpm - np.clip(analysis.tempo.bpm, 90, 130)) < 8


def test_shot_too_short_for_a_beat_is_reported_not_faked(tmp_path):
    shots = [Shot(2.5, "warm"), Shot(0.3, "cold"), Shot(2.5, "forest")]
    analysis = ENGINE.analyze(make_video(tmp_path / "short.mp4", shots, size=(160, 96)).path)
    p = plan(analysis)
    assert len(analysis.cuts) == 2
    assert len(p.cut_ticks) == 1 and any("not locked" in w for w in p.warnings)


def plan_end_seconds(p) -> float:
    """Where the plan's last bar ends, in seconds."""
    song = p.empty_song()
    last = p.bar_ticks[-1]
    return song.tick_to_seconds(last + song.time_signature_at(last).ticks_per_bar)


END_CLIPS = {
    "6.6 s, one cut at 3.0 s": ([Shot(3.0, "warm", 0.3), Shot(3.6, "cold", 0.6)], None),
    "demo 24 s": demo_shots(),
    "5 s, no cut": ([Shot(5.0, "warm", 0.3)], None),
    "random seed 0": (random_shots(0), None),
    "random seed 1": (random_shots(1), None),
    "long shots": ([Shot(5.0, "warm", 0.2), Shot(6.3, "cold", 0.5), Shot(5.6, "forest", 0.3),
                    Shot(4.0, "dusk", 0.6)], None),
}


@pytest.mark.parametrize("name", list(END_CLIPS))
def test_the_last_bar_ends_with_the_picture(tmp_path, name):
    shots, transitions = END_CLIPS[name]
    truth = make_video(tmp_path / "end.mp4", shots, transitions, size=(160, 96))
    analysis = ENGINE.analyze(truth.path)
    p = plan(analysis)
    frame = 1.0 / analysis.fps
    assert p.warnings == []
    assert abs(plan_end_seconds(p) - analysis.duration) <= frame
    assert abs(plan_end_seconds(p) - sum(shot.duration for shot in shots)) <= frame  # the last frame's end
    bpms = [t.bpm for t in p.tempos]
    assert 90 - 1e-3 <= min(bpms) and max(bpms) <= 130 + 1e-3
    assert np.abs(np.diff(bpms)).max(initial=0) <= MAX_STEP_BPM + 1e-6
    beats = np.array([s for s, _ in p.beat_seconds()])
    assert all(np.min(np.abs(beats - c.time)) <= frame for c in analysis.cuts)
    assert len(p.cut_ticks) == len(analysis.cuts)
    assert beats.max() < analysis.duration - frame  # the bar line at the end is not a beat to play on


def test_the_end_prefers_a_whole_bar(tmp_path):
    # 5 s hold 8 beats at 96 BPM: two full 4/4 bars rather than a shortened last bar
    analysis = ENGINE.analyze(make_video(tmp_path / "bars.mp4", [Shot(5.0, "warm", 0.3)], size=(160, 96)).path)
    p = plan(analysis)
    assert [(ts.numerator, ts.denominator) for ts in p.time_signatures] == [(4, 4)] and p.n_bars == 2


def test_a_tail_too_short_for_a_beat_runs_past_with_a_warning(tmp_path):
    analysis = ENGINE.analyze(make_video(tmp_path / "tail.mp4", [Shot(4.0, "warm"), Shot(0.3, "cold")],
                                         size=(160, 96)).path)
    p = plan(analysis)
    assert len(p.cut_ticks) == 1
    assert any("end of the picture" in w and "runs past" in w for w in p.warnings)
    assert plan_end_seconds(p) > analysis.duration  # the bars still cover the picture


def test_a_pinned_metre_that_cannot_end_on_a_bar_line_says_so(tmp_path):
    shots = [Shot(3.0, "warm", 0.3), Shot(3.6, "cold", 0.6)]
    analysis = ENGINE.analyze(make_video(tmp_path / "pin.mp4", shots, size=(160, 96)).path)
    p = plan(analysis, PlanOptions(time_signature=(3, 4), pin_time_signature=True))
    assert {(ts.numerator, ts.denominator) for ts in p.time_signatures} == {(3, 4)}
    assert any("inside a bar of the pinned 3/4" in w for w in p.warnings)
    assert plan_end_seconds(p) > analysis.duration


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_no_bar_shorter_than_two_beats(tmp_path, seed):
    shots = random_shots(seed + 10, n=5, shortest=1.1, longest=3.0)
    analysis = ENGINE.analyze(make_video(tmp_path / "bars.mp4", shots, size=(160, 96), fps=30).path)
    p = plan(analysis)
    lengths = np.diff(p.bar_ticks)
    ticks_per_beat = 480
    assert len(p.cut_ticks) >= 3
    assert (lengths >= 2 * ticks_per_beat).all(), f"bars of {sorted(set(lengths // ticks_per_beat))} beats"
    assert min(s.numerator for s in p.time_signatures) >= 2  # the last bar too


def test_bar_lengths_split_a_one_beat_remainder():
    from cuesmith.engine.planning.cutlock import bar_lengths
    assert bar_lengths([9], 4, False) == [4, 3, 2]
    assert bar_lengths([8, 11], 4, False) == [4, 4, 3]
    assert bar_lengths([9], 4, True) == [4, 4]


def test_every_one_of_the_24_keys_is_reachable_from_the_picture():
    from cuesmith.engine.planning.controls import picture_tonic
    keys = {picture_tonic(b, w, mode) for b in np.linspace(0, 1, 25) for w in np.linspace(-0.3, 0.3, 25)
            for mode in ("major", "minor")}
    assert len(keys) == 24
    # a warm bright picture sits on the sharp side of C, a cool dark one on the flat side
    assert picture_tonic(0.9, 0.2, "major").tonic in (2, 9, 4, 11)  # D A E B
    assert picture_tonic(0.1, -0.2, "major").tonic in (10, 3, 8, 1, 6)  # Bb Eb Ab Db Gb
    assert picture_tonic(0.9, 0.2, "minor").tonic == (picture_tonic(0.9, 0.2, "major").tonic + 9) % 12


def test_form_repeats_rhythms_of_phrases_of_the_same_role():
    from cuesmith.engine.planning.form import phrases, rhythm_sources
    flags = [True] + [False] * 11 + [True] + [False] * 4
    roles = ["verse"] * 12 + ["chorus"] * 5
    assert phrases(flags) == [(0, 4), (4, 8), (8, 12), (12, 17)]
    sources = rhythm_sources(flags, roles, [4] * 17)
    melody, comping = sources["melody"], sources["accompaniment"]
    assert melody[:4] == [-1, -1, 0, -1] and melody[4:8] == [0, 1, 2, -1] and melody[8:11] == [0, 1, 2]
    assert melody[12:17] == [-1, -1, 12, 13, -1]  # the chorus: its own a b a b, the last bar is free
    assert comping[1:4] == [0, 1, 2] and comping[11] == 10 and comping[12] == -1 and comping[13] == 12
    assert all(j < i for stage in sources.values() for i, j in enumerate(stage) if j >= 0)
    # a bar of another length never repeats
    assert rhythm_sources(flags, roles, [4, 4, 3] + [4] * 14)["melody"][2] == -1


def test_plan_gives_every_bar_a_melodic_role_and_a_form(tmp_path):
    shots = [Shot(6.0, "warm", 0.1), Shot(6.0, "neon", 1.0, shapes=6), Shot(6.0, "warm", 0.1)]
    analysis = ENGINE.analyze(make_video(tmp_path / "form.mp4", shots, size=(160, 96)).path)
    p = plan(analysis)
    roles = [c.role for c in p.controls]
    assert "instrumental" not in roles and roles[0] == "verse" and "chorus" in roles
    assert set(p.rhythm_from) == {"melody", "accompaniment"}
    assert all(len(v) == p.n_bars for v in p.rhythm_from.values())
    assert sum(j >= 0 for j in p.rhythm_from["accompaniment"]) >= p.n_bars // 2
