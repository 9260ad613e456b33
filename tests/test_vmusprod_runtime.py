"""The runtime path with the shipped V-MusProd model: no torch, reproducible, plan-bound, controllable."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cuesmith.engine.music.key import detect_key
from cuesmith.engine.music.tokens import METER, POSITION, QUALITY, ROOT, TEMPO, TYPE, VOCAB, TokenType
from cuesmith.engine.pipelines.vmusprod import VMusProd
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
            f"r = Engine().score({{'video': {str(clip)!r}, 'out_dir': {str(tmp_path / 'out')!r}, 'stems': False}}); "
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
    assert result["schema_version"] == 1
    assert result["variations"][0]["midi"] == str(out / "score-2.mid")


def test_generation_follows_the_plan(model):
    plan = make_plan(n_bars=6, bpm=120.0, sections=(0, 3))
    generation = model.generate(plan, variations=3, seed=1)
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
    return np.mean([sum(len(p.notes) for p in s.parts) / n_bars for s in songs])


def test_density_control_moves_notes_per_bar_2x(model):
    low = notes_per_bar(model.generate(make_plan(density="low"), variations=8, seed=11).songs, 8)
    high = notes_per_bar(model.generate(make_plan(density="high"), variations=8, seed=11).songs, 8)
    print(f"notes per bar: low {low:.2f}, high {high:.2f}")
    assert high >= 2 * low


@pytest.mark.xfail(reason="not met by the shipped CPU-trained weights: 7 of 20 seeds flip "
                   "(models/vmusprod/manifest.json, known_limits)", strict=False)
def test_mode_control_flips_the_detected_mode(model):
    flips = 0
    for seed in range(20):
        major = model.generate(make_plan(mode="major"), seed=seed).songs[0]
        minor = model.generate(make_plan(mode="minor"), seed=seed).songs[0]
        flips += detect_key(major).mode == "major" and detect_key(minor).mode == "minor"
    print(f"mode flips in {flips} of 20 seeds")
    assert flips >= 18


def test_sampling_temperature_zero_is_greedy_and_deterministic(model):
    plan = make_plan(n_bars=2)
    a = model.generate(plan, variations=2, seed=1, sampling=Sampling(temperature=0))
    b = model.generate(plan, variations=2, seed=2, sampling=Sampling(temperature=0))
    for stage in a.tokens:
        assert all(np.array_equal(x, y) for x, y in zip(a.tokens[stage], b.tokens[stage]))
