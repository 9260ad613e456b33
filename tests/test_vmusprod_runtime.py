"""The runtime path with the shipped V-MusProd model: no torch, reproducible, plan-bound, controllable."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cuesmith.engine.music.key import detect_key
from cuesmith.engine.music.score import PITCH_CLASSES, Chord
from cuesmith.engine.music.tokens import (METER, POSITION, QUALITIES, QUALITY, ROOT, TEMPO, TYPE, VOCAB, TokenType,
                                          encode)
from cuesmith.engine.pipelines.vmusprod import VMusProd, bar_plan
from cuesmith.engine.music.theory import CHORD_TONES, key_chord_fields
from cuesmith.engine.pipelines.vmusprod.decode import harmony
from cuesmith.engine.runtime.sampling import Sampling

from vmusprod_helpers import make_plan, shipped_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return VMusProd(shipped_model())


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from media import Shot, make_video

    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    make_video(path, [Shot(2.5), Shot(2.5, mood="cold", speed=0.8)], fps=24, size=(320, 180))
    return path


def score_cli(cli, clip, out, *extra):
    return subprocess.run([cli, "score", str(clip), "--out", str(out), "--no-stems", *extra],
                          capture_output=True, text=True)


def test_score_imports_no_torch(clip, tmp_path):
    code = ("import sys, json; from cuesmith.engine.api import Engine; "
            f"r = Engine().score_and_save({{'video': {str(clip)!r}, 'out_dir': {str(tmp_path / 'out')!r}, 'stems': False}}); "
            "print(json.dumps({'torch': sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')), "
            "'midi': r.variations[0].midi}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["torch"] == []
    assert report["midi"].endswith("score.mid")


def test_same_seed_gives_byte_identical_midi(cli, clip, tmp_path):
    for name in ("a", "b", "c"):
        seed = "5" if name != "c" else "6"
        done = score_cli(cli, clip, tmp_path / name, "--seed", seed, "--variations", "2")
        assert done.returncode == 0, done.stderr
    a, b, c = ((tmp_path / n / "score.mid").read_bytes() for n in "abc")
    assert a == b
    assert (tmp_path / "a" / "score-var2.mid").read_bytes() == (tmp_path / "b" / "score-var2.mid").read_bytes()
    assert a != c


def test_outputs_never_replace_existing_files(cli, clip, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "score.mid").write_bytes(b"mine")
    (out / "result.json").write_text("mine")
    done = score_cli(cli, clip, out)
    assert done.returncode == 0, done.stderr
    assert (out / "score.mid").read_bytes() == b"mine"
    assert (out / "result.json").read_text() == "mine"
    result = json.loads((out / "result-2.json").read_text())
    assert result["schema_version"] == 2
    assert result["variations"][0]["midi"] == str(out / "score-2.mid")


def test_generation_follows_the_plan(model):
    plan = make_plan(n_bars=6, bpm=120.0, sections=(0, 3))
    generation = model.generate_stages(plan, variations=3, seed=1)
    for stage, sequences in generation.tokens.items():
        for tokens in sequences:
            bars = tokens[tokens[:, TYPE] == TokenType.BAR]
            assert len(bars) == plan.n_bars, stage
            assert set(bars[:, METER]) == {1 + VOCAB.meters.index((4, 4))}
            assert set(bars[:, TEMPO]) == {1 + VOCAB.tempo_bin(120.0)}
            assert_positions_rise(tokens)
    for tokens in generation.tokens["chord"]:
        assert_chord_changes_at_sections(tokens, plan)


def assert_positions_rise(tokens):
    last = 0
    for row in tokens:
        if row[TYPE] == TokenType.BAR:
            last = 0
        elif row[TYPE] == TokenType.POSITION:
            assert 1 <= row[POSITION] <= 16 and row[POSITION] > last
            last = row[POSITION]


def assert_chord_changes_at_sections(tokens, plan):
    bar, previous = -1, None
    rows = list(tokens)
    for i, row in enumerate(rows):
        if row[TYPE] == TokenType.BAR:
            bar += 1
            if plan.controls[bar].section_start:
                assert rows[i + 1][TYPE] == TokenType.POSITION and rows[i + 1][POSITION] == 1
                chord = (rows[i + 2][ROOT], rows[i + 2][QUALITY])
                assert rows[i + 2][TYPE] == TokenType.CHORD and chord != previous
        elif row[TYPE] == TokenType.CHORD:
            previous = (row[ROOT], row[QUALITY])


def notes_per_bar(songs, n_bars):
    """The nets' notes (the voiced chord part follows the chords, not the density control)."""
    return np.mean([sum(len(p.notes) for p in s.parts if p.name != "chords") / n_bars for s in songs])


def test_density_control_moves_notes_per_bar_2x(model):
    low = notes_per_bar(model.generate_stages(make_plan(density="low"), variations=8, seed=11).songs, 8)
    high = notes_per_bar(model.generate_stages(make_plan(density="high"), variations=8, seed=11).songs, 8)
    print(f"notes per bar: low {low:.2f}, high {high:.2f}")
    assert high >= 2 * low


def test_mode_control_flips_the_detected_mode(model):
    flips = 0
    for seed in range(20):
        major = model.generate_stages(make_plan(mode="major"), seed=seed).songs[0]
        minor = model.generate_stages(make_plan(mode="minor"), seed=seed).songs[0]
        flips += detect_key(major).mode == "major" and detect_key(minor).mode == "minor"
    print(f"mode flips in {flips} of 20 seeds")
    assert flips >= 18


def test_sampling_temperature_zero_is_greedy_and_deterministic(model):
    plan = make_plan(n_bars=2)
    a = model.generate_stages(plan, variations=2, seed=1, sampling=Sampling(temperature=0))
    b = model.generate_stages(plan, variations=2, seed=2, sampling=Sampling(temperature=0))
    for stage in a.tokens:
        assert all(np.array_equal(x, y) for x, y in zip(a.tokens[stage], b.tokens[stage]))


def test_minor_raises_the_seventh_only_in_its_dominant_chords():
    pairs, tonic = key_chord_fields(9, "minor")
    allowed = {f"{PITCH_CLASSES[r - 1]}{QUALITIES[q - 1]}" for r, q in zip(*pairs.nonzero()) if r > 0}
    assert {"Am", "Dm", "EM", "E7", "FM", "GM", "CM", "Abo"} <= allowed
    assert not {"Em", "Fm", "C+", "AM", "DM"} & allowed  # Em: the natural v; Fm, C+: G# outside V and vii
    assert tonic == (10, 1 + QUALITIES.index("m"))


def test_major_has_no_chord_on_its_submediant():
    pairs, tonic = key_chord_fields(0, "major")
    allowed = {f"{PITCH_CLASSES[r - 1]}{QUALITIES[q - 1]}" for r, q in zip(*pairs.nonzero()) if r > 0}
    assert {"CM", "Dm", "Em", "FM", "GM", "G7", "Bo"} <= allowed
    assert not any(name.startswith("A") for name in allowed)  # vi (Am), the relative minor's tonic, is out
    minor, _ = key_chord_fields(9, "minor")
    assert minor[1 + 9, 1 + QUALITIES.index("m")]  # ...but not in A minor, where it is the tonic


def test_harmony_holds_each_chord_until_the_next():
    plan = make_plan(n_bars=2, sections=(0,))
    song = plan.empty_song()
    song.chords = [Chord(0, 960, 0, "M"), Chord(960, 1920, 7, "7"), Chord(2400, 3840, 9, "m")]
    found = harmony(encode(song, "chord"), bar_plan(plan))
    cells = ((0, 0), (0, 7), (0, 8), (1, 0), (1, 3), (1, 4))
    assert [tuple(np.flatnonzero(found.tones[bar, pos])) for bar, pos in cells] == \
        [(0, 4, 7), (0, 4, 7), (2, 5, 7, 11), (2, 5, 7, 11), (2, 5, 7, 11), (0, 4, 9)]
    assert [tuple(np.argwhere(found.onset_roots >= 0)[i]) for i in range(3)] == [(0, 0), (0, 8), (1, 4)]
    assert list(found.onset_roots[found.onset_roots >= 0]) == [0, 7, 9]


@pytest.mark.parametrize("mode", ["major", "minor"])
def test_closing_bars_are_an_authentic_cadence(model, mode):
    plan = make_plan(n_bars=4, mode=mode, sections=(0,))
    tonic, dominant = ("C", "G") if mode == "major" else ("A", "E")
    for song in model.generate_stages(plan, variations=3, seed=3).songs:
        last_bars = [c for c in song.chords if c.start >= plan.bar_ticks[2]]
        names = [(c.start >= plan.bar_ticks[3], f"{PITCH_CLASSES[c.root]}{c.quality}") for c in last_bars]
        assert names and {n for last, n in names if not last} == {f"{dominant}7"}
        assert {n for last, n in names if last} == {tonic + ("M" if mode == "major" else "m")}


def test_accompaniment_keeps_to_the_chord_with_the_root_below_and_melody_beats_too(model):
    plan = make_plan(n_bars=4, mode="minor")
    for song in model.generate_stages(plan, variations=2, seed=4).songs:
        chords = [c for c in song.chords if not c.is_none]
        sounding = lambda tick: max((c for c in chords if c.start <= tick), key=lambda c: c.start)  # noqa: E731
        for part in song.parts:
            notes = [n for n in part.notes if part.name == "accompaniment" or n.start % 480 == 0]
            assert notes
            for note in notes:
                chord = sounding(note.start)
                assert (note.pitch - chord.root) % 12 in CHORD_TONES[chord.quality], (part.name, note, chord)
        accompaniment = song.parts[1].notes
        onsets = [[n.pitch for n in accompaniment if n.start == c.start] for c in chords]
        assert any(onsets)  # where the accompaniment plays at a chord's onset, its lowest note is the root
        assert all(min(pitches) % 12 == c.root for pitches, c in zip(onsets, chords) if pitches)


def test_no_onset_stacks_more_notes_than_the_training_music(model):
    from collections import Counter

    from cuesmith.engine.pipelines.vmusprod.decode import MAX_NOTES_PER_ONSET

    songs = model.generate_stages(make_plan(density="high"), variations=4, seed=11).songs
    for song in songs:
        for part in song.parts:
            stage = "melody" if part.name.lower() == "melody" else "accompaniment"
            per_onset = Counter(note.start for note in part.notes)
            assert max(per_onset.values()) <= MAX_NOTES_PER_ONSET[stage], part.name
            last = max(per_onset)  # the final onset, which cannot move on to another bar
            assert per_onset[last] <= MAX_NOTES_PER_ONSET[stage]
