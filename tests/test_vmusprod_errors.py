"""Missing models stop `score` with a clear error; the request/result schema round-trips."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.music.controls import measure_controls, section_starts
from cuesmith.engine.music.score import Note, Part, Song
from cuesmith.engine.pipelines.vmusprod import VMusProd
from cuesmith.engine.runtime.sampling import Sampling, sample
from cuesmith.engine.schema import SCHEMA_VERSION, ScoreRequest, ScoreResult, VariationResult

from vmusprod_helpers import SHIPPED


def test_missing_model_folder_names_the_model(tmp_path):
    with pytest.raises(CuesmithError, match="model vmusprod is missing"):
        VMusProd(tmp_path / "nowhere")


def test_missing_graph_names_the_stage(tmp_path):
    if not (SHIPPED / "manifest.json").is_file():
        pytest.fail("the shipped model is missing")
    folder = tmp_path / "vmusprod"
    folder.mkdir()
    shutil.copy(SHIPPED / "manifest.json", folder)
    for name in json.loads((folder / "manifest.json").read_text())["files"]:
        if not name.startswith("melody."):
            shutil.copy(SHIPPED / name, folder)
    with pytest.raises(CuesmithError, match="model vmusprod/melody is missing its encoder graph"):
        VMusProd(folder)


def test_cli_reports_a_missing_model_on_one_line(cli, tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not needed: the model is checked first")
    done = subprocess.run([cli, "score", str(video), "--out", str(tmp_path / "out"), "--models",
                           str(tmp_path / "empty")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "model vmusprod is missing" in done.stderr
    assert not (tmp_path / "out").exists()


def test_request_and_result_round_trip():
    request = ScoreRequest(video="a.mp4", out_dir="out", variations=3, seed=7, mode="minor", density="high")
    assert ScoreRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request
    result = ScoreResult(request=request, duration=8.0, tempo=100.0, key="A minor", n_bars=4, cut_times=[3.0],
                         section_bars=[0, 1], variations=[VariationResult("out/score.mid", 9.5, "A minor", {"melody": 3})],
                         model={"family": "vmusprod"}, providers={"chord": "CPUExecutionProvider"},
                         timings={"total": 1.0})
    assert ScoreResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert result.to_dict()["schema_version"] == SCHEMA_VERSION == 2


def test_a_version_1_result_is_still_read():
    request = ScoreRequest(video="a.mp4", out_dir="out")
    v1 = {**ScoreResult(request=request, duration=8.0, tempo=100.0, key="A minor", n_bars=4, cut_times=[],
                        section_bars=[0], variations=[VariationResult("out/score.mid", 9.5, "A minor", {})],
                        model={}, providers={}, timings={}).to_dict(), "schema_version": 1}
    del v1["placement"]
    result = ScoreResult.from_dict(json.loads(json.dumps(v1)))
    assert result.placement is None and result.variations[0].midi == "out/score.mid"


@pytest.mark.parametrize("bad", [{"variations": 0}, {"mode": "dorian"}, {"density": "max"}, {"tempo": 5},
                                 {"schema_version": SCHEMA_VERSION + 1}, {"schema_version": 0}])
def test_bad_requests_are_refused(bad):
    with pytest.raises(CuesmithError):
        ScoreRequest.from_dict({"video": "a.mp4", "out_dir": "o", **bad})


def test_measure_controls_counts_the_music():
    sparse = [Note(i * 480, i * 480 + 480, 60, 40) for i in range(4)]  # bar 1: 4 quarter notes
    dense = [Note(1920 + i * 120, 1920 + i * 120 + 120, 72 + i % 3, 100) for i in range(16)]  # bar 2: 16 sixteenths
    song = Song(parts=[Part("melody", sparse + dense)])
    first, second = measure_controls(song)
    assert (first.density, second.density) == (4.0, 16.0)
    assert (first.strength, second.strength) == (40.0, 100.0)
    assert first.register == 60.0 and second.register == pytest.approx(73.0, abs=0.1)
    assert first.section_start and first.mode in ("major", "minor")


def test_section_starts_at_density_jumps_and_melody_returns():
    density = [4, 4, 4, 4, 16, 16, 16, 16, 16, 16]
    assert section_starts(density, [True] * 10) == [i in (0, 4) for i in range(10)]
    melody = [True, True, True, True, True, False, True, True, True, True]
    assert section_starts([8] * 10, melody) == [i in (0, 6) for i in range(10)]


def test_sampling_respects_mask_top_k_and_seed():
    logits = np.array([5.0, 1.0, 0.5, 3.0])
    allowed = np.array([False, True, True, True])
    assert sample(logits, allowed, np.random.default_rng(0), Sampling(temperature=0)) == 3
    assert sample(logits, allowed, np.random.default_rng(0), Sampling(top_k=1)) == 3
    draws = [sample(logits, allowed, np.random.default_rng(s), Sampling()) for s in range(50)]
    assert 0 not in draws and len(set(draws)) > 1
    again = [sample(logits, allowed, np.random.default_rng(s), Sampling()) for s in range(50)]
    assert draws == again


def test_a_missing_model_is_the_error_even_while_the_video_decodes(tmp_path):
    """The model loads beside the analysis (job.py): its error still comes first and nothing is written."""
    from cuesmith.engine import Engine
    from media import Shot, make_video

    clip = make_video(tmp_path / "clip.mp4", [Shot(4.0, "warm", 0.3)], size=(160, 96), fps=24)
    reports = []
    with pytest.raises(CuesmithError, match="model vmusprod is missing"):
        Engine(use_cache=False, model_dir=tmp_path / "empty").score(
            video=str(clip.path), out_dir=str(tmp_path / "out"), progress=lambda stage, f: reports.append(f))
    assert not (tmp_path / "out").exists()
