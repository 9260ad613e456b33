"""The critique on generated clips and music: rankings, grades, bad inputs, files and CLI."""
import json
from dataclasses import replace
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from critique_media import clip_shots, constant_song, downbeat_cut_shots, locked_song, pop909_excerpt
from cuesmith.engine import Engine
from cuesmith.engine.critique import (SCHEMA, SCHEMA_VERSION, assess, markdown, music_facts, rank_variations,
                                      soundness, write_critique)
from cuesmith.engine.critique.foils import pitch_scrambled, played_late, random_notes
from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.music.midi_io import write_midi
from cuesmith.engine.music.mood import is_positive
from cuesmith.engine.music.render import render_audio
from cuesmith.engine.music.score import Song
from cuesmith.engine.planning import plan
from media import Shot, make_video

ENGINE = Engine(use_cache=False)
CLIPS = 40
UNRELATED_BPM = 97.3



def clip(tmp_path, seed: int, **kwargs):
    truth = make_video(tmp_path / f"clip{seed}.mp4", clip_shots(seed), size=(128, 72), fps=24, **kwargs)
    return ENGINE.analyze(truth.path)


def rhythm_scores(analysis, render=None) -> tuple[float, float, float]:
    p = plan(analysis)
    songs = (locked_song(p), locked_song(p, shift_beats=0.5), constant_song(analysis.duration, UNRELATED_BPM))
    music = [render(s) for s in songs] if render else songs
    return tuple(assess(analysis, m).rhythm_score for m in music)


@pytest.mark.slow
def test_cut_locked_outranks_shifted_and_unrelated_tempo_on_40_clips(tmp_path):
    wins = 0
    for seed in range(CLIPS):
        locked, shifted, unrelated = rhythm_scores(clip(tmp_path, seed))
        wins += locked > shifted and locked > unrelated
    assert wins >= 0.95 * CLIPS


def wav_renderer(tmp_path):
    counter = iter(range(10 ** 6))

    def render(song: Song):
        audio = render_audio(song, sample_rate=22_050)
        path = tmp_path / f"music{next(counter)}.wav"
        soundfile.write(path, audio.mix, audio.sample_rate)
        return path
    return render


def test_the_ranking_holds_on_rendered_audio(tmp_path):
    render = wav_renderer(tmp_path)
    for seed in range(4):
        locked, shifted, unrelated = rhythm_scores(clip(tmp_path, 100 + seed), render)
        assert locked > shifted and locked > unrelated, (seed, locked, shifted, unrelated)


def test_cut_locked_audio_grades_every_cut_a(tmp_path):
    analysis = clip(tmp_path, 7)
    path = wav_renderer(tmp_path)(locked_song(plan(analysis)))
    critique = assess(analysis, path)
    cuts = [m for m in critique.key_moments if m.kind == "cut"]
    assert len(cuts) == len(analysis.cuts) and {m.grade for m in cuts} == {"A"}
    assert all(abs(m.offset) <= 1 / analysis.fps for m in cuts)
    assert critique.dimension("rhythm").labels["rhythm alignment"] == "precise"
    assert critique.dimension("emotion").labels["emotional richness"] != "abrupt"  # music starting from silence is not


def test_abrupt_means_a_level_jump_away_from_cuts():
    from cuesmith.engine.critique import emotion

    times = np.arange(0.0, 12.0, 0.1)
    steady = music_facts(constant_song(12.0, 100.0))
    fade_in = np.where(times < 0.5, -90.0, -20.0)  # silence, then music: the first window is never judged
    drop = np.where(times < 6.0, -20.0, -40.0)  # 20 dB down at 6 s
    assert not emotion.abrupt_jump(replace(steady, level_times=list(times), level_db=list(fade_in)), [])
    assert emotion.abrupt_jump(replace(steady, level_times=list(times), level_db=list(drop)), [3.0])
    assert not emotion.abrupt_jump(replace(steady, level_times=list(times), level_db=list(drop)), [6.2])  # on a cut


def test_half_beat_shift_is_graded_b_with_its_offset(tmp_path):
    analysis = clip(tmp_path, 3)
    p = plan(analysis)
    critique = assess(analysis, locked_song(p, shift_beats=0.5))
    cuts = [m for m in critique.key_moments if m.kind == "cut"]
    assert {m.grade for m in cuts} == {"B"}
    song = p.empty_song()
    for m in cuts:  # the nearest change is half a beat away, at the local tempo
        beat = 60.0 / song.tempos[max(i for i, t in enumerate(song.tempos)
                                      if song.tick_to_seconds(t.tick) <= m.time + 1e-6)].bpm
        assert abs(abs(m.offset) - beat / 2) < 0.02


def test_own_audio_track_without_rhythm_is_said_so(tmp_path):
    """The default: a clip against its own audio; a steady tone has no changes to align."""
    truth = make_video(tmp_path / "tone.mp4", clip_shots(1), size=(128, 72), fps=24, audio=True)
    critique = ENGINE.critique(truth.path, out_dir=tmp_path / "out")
    rhythm = critique.dimension("rhythm")
    assert rhythm.labels["rhythm alignment"] == "irrelevant" and rhythm.score == 1.0
    assert {m.grade for m in critique.key_moments} == {"C"}
    assert any("no beat" in p for p in critique.problems)


def test_video_without_audio_needs_music(tmp_path):
    truth = make_video(tmp_path / "mute.mp4", clip_shots(2), size=(128, 72), fps=24)
    with pytest.raises(CuesmithError, match="no audio track"):
        ENGINE.critique(truth.path)


def test_unreadable_audio_and_empty_midi_are_clear_errors(tmp_path):
    analysis = clip(tmp_path, 4)
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(CuesmithError, match="junk.mp3"):
        assess(analysis, junk)
    empty = write_midi(Song(), tmp_path / "empty.mid")
    with pytest.raises(CuesmithError, match="no notes"):
        assess(analysis, empty)
    with pytest.raises(CuesmithError, match="no such file"):
        assess(analysis, tmp_path / "missing.wav")


def test_music_much_shorter_than_the_clip_is_reported(tmp_path):
    analysis = clip(tmp_path, 5)
    p = plan(analysis)
    song = locked_song(p)
    cutoff = song.seconds_to_tick(analysis.cuts[0].time + 0.2)
    song.parts[0].notes = [n for n in song.parts[0].notes if n.start < cutoff]
    critique = assess(analysis, song)
    assert any("the music lasts" in p for p in critique.problems)
    later = [m for m in critique.key_moments if m.time > analysis.cuts[0].time + 1.0]
    assert later and {m.grade for m in later} == {"C"}


def test_theme_and_culture_need_evidence(tmp_path):
    analysis = clip(tmp_path, 6)
    song = locked_song(plan(analysis))
    plain = assess(analysis, song)
    assert not plain.dimension("theme").assessed and plain.dimension("theme").score is None
    assert plain.dimension("culture").labels["cultural relevance"] == "not assessed"
    assert "not assessed" in plain.prose["theme"]
    song.title = "Flamenco fiesta"
    tagged = assess(analysis, song, notes="our trip to Madrid, tapas and the beach")
    theme, culture = tagged.dimension("theme"), tagged.dimension("culture")
    assert culture.assessed and culture.labels["cultural relevance"] == "related"
    assert "landmarks" in culture.labels["elements"] and "cuisines" in culture.labels["elements"]
    assert not theme.assessed  # "flamenco fiesta" names no HarmonySet theme category: no verdict
    song.title = "Epic workout anthem"
    sporty = assess(analysis, song, notes="basketball final, last-second shot")
    assert sporty.dimension("theme").labels["content alignment"] == "strongly related"


def test_critique_files_follow_the_schema(tmp_path):
    analysis = clip(tmp_path, 8)
    critique = assess(analysis, locked_song(plan(analysis)))
    json_path, md_path = write_critique(critique, tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert data["schema"] == SCHEMA and data["version"] == SCHEMA_VERSION
    assert [d["name"] for d in data["dimensions"]] == ["rhythm", "emotion", "theme", "culture"]
    for d in data["dimensions"]:
        assert d["score"] is None or 1.0 <= d["score"] <= 10.0
        assert d["facts"]
    assert data["harmonyset_key_moments"].count(",") == min(3, len(data["key_moments"]))
    text = md_path.read_text()
    for m in critique.key_moments:
        assert m.clock in text
    assert data["dimensions"][1]["labels"]["video emotions"]


def test_emotion_follows_mode_and_the_picture(tmp_path):
    from cuesmith.engine.critique import emotion

    bright = ENGINE.analyze(make_video(tmp_path / "bright.mp4", [Shot(3.0, "warm", 0.5), Shot(3.0, "neon", 0.6)],
                                       size=(128, 72), fps=24).path)
    p = plan(bright)
    facts_major = music_facts(locked_song(p))
    assert facts_major.mode == "major"  # major triads on every beat
    facts_minor = replace(facts_major, mode="minor", harmony_major=0.0)  # the same music in minor, minor chords
    major, minor = emotion.music_affect(facts_major), emotion.music_affect(facts_minor)
    assert major.valence >= minor.valence + 0.45 + 0.25 * facts_major.harmony_major - 1e-9
    assert is_positive(major.valence) and not is_positive(minor.valence)
    picture = emotion.video_affect(bright)
    assert is_positive(picture.valence)  # warm and neon shots read as positive
    e_major = assess(bright, facts_major).dimension("emotion")
    e_minor = assess(bright, facts_minor).dimension("emotion")
    assert e_major.score > e_minor.score
    assert e_minor.labels["emotion alignment"] != "consistent"


def test_cli_critique_writes_files_and_inspect_reads_audio(tmp_path, cli):
    analysis = clip(tmp_path, 9)
    wav = wav_renderer(tmp_path)(locked_song(plan(analysis)))
    out = tmp_path / "out"
    run = subprocess.run([cli, "critique", analysis.info.path, "--music", str(wav), "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "rhythm" in run.stdout and (out / "critique.json").exists() and (out / "critique.md").exists()
    inspected = subprocess.run([cli, "inspect", str(wav), "--json", str(tmp_path / "i.json")],
                               capture_output=True, text=True)
    assert inspected.returncode == 0, inspected.stderr
    data = json.loads((tmp_path / "i.json").read_text())
    assert data["tempo"] and 85 <= data["tempo"] <= 135 and data["loudness_lufs"] < -5
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage")
    failed = subprocess.run([cli, "inspect", str(bad)], capture_output=True, text=True)
    assert failed.returncode == 2 and "bad.wav" in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    helped = subprocess.run([cli, "critique", "--llm-help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "GGUF" in helped.stdout


# -- telling music from noise, and alignment from density (issue 13) -----------------

PAIR_SONGS = range(701, 801, 5)  # 20 validation songs: the critique's thresholds come from 001-700


@pytest.fixture(scope="module")
def downbeat_pairs(tmp_path_factory):
    """(song excerpt, analysis of a video cut on some of its downbeats) for 20 validation songs."""
    folder = tmp_path_factory.mktemp("downbeats")
    rng = np.random.default_rng(13)
    pairs = []
    for number in PAIR_SONGS:
        song = pop909_excerpt(number, 20.0, rng)
        truth = make_video(folder / f"{number}.mp4", downbeat_cut_shots(song, rng, 24), size=(128, 72), fps=24)
        pairs.append((song, ENGINE.analyze(truth.path)))
    return pairs


@pytest.mark.slow
def test_videos_cut_on_downbeats_prefer_their_song_over_it_played_late_and_other_songs(downbeat_pairs):
    late_wins = other_wins = 0
    for i, (song, analysis) in enumerate(downbeat_pairs):
        other = downbeat_pairs[(i + 1) % len(downbeat_pairs)][0]
        own, late, different = (assess(analysis, m).rhythm_score for m in (song, played_late(song, 0.5), other))
        late_wins += own > late
        other_wins += own > different
    assert late_wins >= 0.9 * len(downbeat_pairs) and other_wins >= 0.9 * len(downbeat_pairs), (late_wins, other_wins)


@pytest.mark.slow
def test_random_notes_do_not_outscore_real_songs_on_rhythm_against_unrelated_videos(downbeat_pairs):
    rng = np.random.default_rng(5)
    above = 0
    for i, (song, _) in enumerate(downbeat_pairs):
        unrelated = downbeat_pairs[(i + 1) % len(downbeat_pairs)][1]  # cut on another song's downbeats
        real, noise = (assess(unrelated, m).rhythm_score for m in (song, random_notes(song, rng)))
        above += noise > real
    assert above <= 0.1 * len(downbeat_pairs), above


def test_soundness_names_scrambled_and_random_notes_and_passes_real_songs():
    rng = np.random.default_rng(7)
    flagged = {"real": 0, "scrambled": 0, "random": 0}
    songs = [song for _, song in soundness.excerpts(PAIR_SONGS, per_song=1, bars=8, seed=3)]
    assert len(songs) == 20
    for song in songs:
        for name, music in (("real", song), ("scrambled", pitch_scrambled(song, rng)), ("random", random_notes(song, rng))):
            flagged[name] += music_facts(music).soundness.flagged
    assert flagged["real"] <= 2 and flagged["scrambled"] >= 18 and flagged["random"] >= 18, flagged


def test_a_flagged_cue_is_said_so_and_the_real_one_ranked_first(tmp_path):
    rng = np.random.default_rng(11)
    song = pop909_excerpt(731, 20.0, rng)
    truth = make_video(tmp_path / "731.mp4", downbeat_cut_shots(song, rng, 24), size=(128, 72), fps=24)
    analysis = ENGINE.analyze(truth.path)
    critiques = [assess(analysis, m) for m in (random_notes(song, rng), song, pitch_scrambled(song, rng))]
    assert [c.soundness["flagged"] for c in critiques] == [True, False, True]
    assert any("does not sound like music" in p for p in critiques[0].problems)
    assert "does not sound like music" in markdown(critiques[2])
    assert rank_variations(critiques)[0] == 1


def test_no_critique_module_imports_the_planner():
    import ast
    from pathlib import Path

    import cuesmith.engine.critique as package

    for path in Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any("planning" in n for n in names), f"{path.name} imports {names}"
    loaded = subprocess.run([sys.executable, "-c", "import sys, cuesmith.engine.critique.assess; "
                             "print(any(m.startswith('cuesmith.engine.planning') for m in sys.modules))"],
                            capture_output=True, text=True)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "False", loaded.stderr


@pytest.mark.slow
def test_the_engines_cue_for_a_clip_beats_the_same_cue_on_another_clip(tmp_path):
    from vmusprod_helpers import shipped_model

    shipped_model()
    analyses, cues = [], []
    for seed in range(3):
        truth = make_video(tmp_path / f"cue{seed}.mp4", clip_shots(50 + seed, n=3), size=(128, 72), fps=24)
        score = ENGINE.score({"video": str(truth.path), "seed": seed, "stems": False})  # in memory
        analyses.append(score.analysis)
        cues.append(score.music[0].song)
    for i, cue in enumerate(cues):
        own = assess(analyses[i], cue).rhythm_score
        others = [assess(a, cue).rhythm_score for j, a in enumerate(analyses) if j != i]
        assert own > max(others), (i, own, others)


@pytest.mark.slow
def test_soundness_names_random_notes_from_audio(tmp_path):
    """From audio there are no notes: key fit, chord fit, repetition and pulse, on their own floors."""
    render = wav_renderer(tmp_path)
    rng = np.random.default_rng(17)
    song = pop909_excerpt(741, 15.0, rng)
    real, noise = (music_facts(render(m)).soundness for m in (song, random_notes(song, rng)))
    assert not real.flagged and noise.flagged, (real, noise)
    assert "voice leading" not in real.facts and set(real.facts) == set(noise.facts)


@pytest.mark.slow
def test_keep_best_keeps_the_variation_the_critique_ranks_first(tmp_path):
    from cuesmith.engine.cli import parse_args
    from vmusprod_helpers import shipped_model

    shipped_model()
    truth = make_video(tmp_path / "clip.mp4", clip_shots(61, n=3), size=(128, 72), fps=24)
    request = {"video": str(truth.path), "out_dir": str(tmp_path / "out"), "seed": 2, "variations": 3, "stems": False}
    every = ENGINE.score(request)
    critiques = [assess(every.analysis, m.song) for m in every.music]
    kept = ENGINE.score({**request, "keep_best": True})
    assert len(every.music) == 3 and len(kept.music) == 1
    assert kept.music[0].song == every.music[rank_variations(critiques)[0]].song
    args = parse_args(["score", str(truth.path), "--out", str(tmp_path / "o"), "--variations", "3", "--keep-best"])
    assert args.keep_best and args.variations == 3
