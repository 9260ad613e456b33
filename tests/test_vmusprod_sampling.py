"""Per-stage sampling defaults: stored with the model, used unless the request gives its own values."""
from __future__ import annotations

import json

import pytest

from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.pipelines.vmusprod import VMusProd
from cuesmith.engine.pipelines.vmusprod.pipeline import DEFAULT_SAMPLING, STAGES, stage_sampling
from cuesmith.engine.runtime.sampling import Sampling
from cuesmith.engine.schema import ScoreRequest

from vmusprod_helpers import make_plan, shipped_model

TUNED = {"chord": (0.8, 0.9), "melody": (1.1, 1.0), "accompaniment": (0.9, 0.95)}


def test_given_values_override_and_unset_ones_fall_back():
    defaults = Sampling(0.8, 5, 0.9)
    assert Sampling().over(defaults) == defaults
    assert Sampling(temperature=0).over(defaults) == Sampling(0, 5, 0.9)  # 0 is given (greedy), not unset
    assert Sampling(top_k=2, top_p=1.0).over(defaults) == Sampling(0.8, 2, 1.0)


def test_each_stage_reads_its_manifest_entry_else_the_old_request_defaults():
    manifest = {"stages": {"melody": {"sampling": {"temperature": 0.9, "top_p": 0.9, "tuned": "how"}}}}
    found = stage_sampling(manifest)
    assert found["melody"] == Sampling(0.9, 0, 0.9)
    assert found["chord"] == found["accompaniment"] == DEFAULT_SAMPLING == Sampling(1.0, 0, 0.95)


def test_the_shipped_model_carries_its_sampling_and_how_it_was_tuned():
    manifest = json.loads((shipped_model() / "manifest.json").read_text())
    for stage in STAGES:
        entry = manifest["stages"][stage]["sampling"]
        assert 0 < entry["temperature"] <= 2 and 0 < entry["top_p"] <= 1
    assert "tune_sampling.py" in manifest["sampling_tuning"]["how"]


@pytest.fixture(scope="module")
def tuned_model(tmp_path_factory):
    """The shipped graphs (linked) with a manifest whose stages sample differently."""
    shipped = shipped_model()
    folder = tmp_path_factory.mktemp("vmusprod")
    manifest = json.loads((shipped / "manifest.json").read_text())
    for name in manifest["files"]:
        (folder / name).symlink_to(shipped / name)
    for stage, (temperature, top_p) in TUNED.items():
        manifest["stages"][stage]["sampling"] = {"temperature": temperature, "top_p": top_p}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return VMusProd(folder)


def test_stages_sample_with_their_own_defaults_unless_the_request_sets_them(tuned_model):
    plan = make_plan(n_bars=2)
    used = tuned_model.generate_stages(plan, seed=1).sampling
    assert {s: (used[s]["temperature"], used[s]["top_p"]) for s in STAGES} == TUNED
    used = tuned_model.generate_stages(plan, seed=1, sampling=Sampling(temperature=0.7)).sampling
    assert {s: (used[s]["temperature"], used[s]["top_p"]) for s in STAGES} == \
        {s: (0.7, top_p) for s, (_, top_p) in TUNED.items()}
    music = tuned_model.generate(plan, n=1, seed=1, sampling=Sampling(top_p=0.5))
    assert {s["top_p"] for s in music[0].report["sampling"].values()} == {0.5}


def test_request_leaves_sampling_unset_by_default_and_reads_explicit_values():
    assert (ScoreRequest(video="a.mp4").temperature, ScoreRequest(video="a.mp4").top_p) == (None, None)
    explicit = ScoreRequest.from_dict({"video": "a.mp4", "temperature": 0.9, "top_p": 0.95, "schema_version": 2})
    assert (explicit.temperature, explicit.top_p) == (0.9, 0.95)
    assert ScoreRequest.from_dict(json.loads(json.dumps(explicit.to_dict()))) == explicit
    for bad in ({"temperature": -1.0}, {"top_p": 0.0}, {"top_p": 1.5}):
        with pytest.raises(CuesmithError, match="sampling needs"):
            ScoreRequest.from_dict({"video": "a.mp4", **bad})
