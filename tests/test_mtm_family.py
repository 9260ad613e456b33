"""The MTM family end to end: a tiny DiT trained a few steps on codec latents -> ONNX -> audio through ORT."""
import json
from dataclasses import replace
import subprocess
import sys

from pathlib import Path

import numpy as np
import pytest

from bridge_helpers import short_clip
from cuesmith.engine import Engine
from cuesmith.engine.codec.runtime import Codec
from cuesmith.engine.pipelines import load_family
from cuesmith.engine.pipelines.mtm.describe import describe
from cuesmith.engine.pipelines.mtm.library import Library, item_from_audio
from cuesmith.engine.pipelines.mtm.text import HashedText
from mtm_helpers import RATE, piece

torch = pytest.importorskip("torch")

from cuesmith.engine.nets.mtm import tiny  # noqa: E402
from cuesmith.engine.training.mtm import CONFIGS, train  # noqa: E402
from cuesmith.exporters.mtm_export import package  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "mtm"
    codec, text = Codec.load(threads=1), HashedText()
    items = [item_from_audio(name, piece(bpm, mode, seconds=4.0), RATE, codec)
             for name, bpm, mode in (("fast", 125, "major"), ("slow", 75, "minor"))]
    library = Library(items, text)
    trained = train(library, folder.parent / "run", replace(CONFIGS["tiny"], steps=5), net_config=tiny())
    package(trained["model"], folder, "test", text.spec(), sampling={"guidance": 3.0, "steps": 6})
    library.save(folder / "library")
    return folder


def test_generates_audio_through_onnx_runtime_same_seed_same_audio(model_dir):

    model = load_family("mtm", model_dir)
    plan = type("Plan", (), {"duration": 1.5})()
    inputs = {"description": "fast hope major pop music"}
    first = model.generate(plan, inputs, n=2, seed=4, sampling=None, progress=None)
    again = model.generate(plan, inputs, n=1, seed=4, sampling=None, progress=None)
    audio = first[0].stems["music"]
    assert first[0].sample_rate == 32_000 and audio.shape == (48_000,) and np.isfinite(audio).all()
    assert np.abs(audio).max() > 1e-4
    np.testing.assert_array_equal(again[0].stems["music"], audio)
    assert not np.allclose(first[1].stems["music"], audio)  # variation 2 starts from seed 5's noise
    assert first[0].report["description"] == inputs["description"]


def test_guidance_one_is_the_conditional_path_alone(model_dir):
    model = load_family("mtm", model_dir)
    calls = []
    denoise = model.denoise
    model.denoise = lambda x, t, cond: calls.append(cond["control_gate"][0]) or denoise(x, t, cond)
    model.latents("slow sad", None, 0.5, 1, seed=1, guidance=1.0)
    assert calls and all(gate == 1.0 for gate in calls)  # never the null condition (gate 0)
    calls.clear()
    model.latents("slow sad", None, 0.5, 1, seed=1, guidance=3.0)
    assert sorted(set(float(g) for g in calls)) == [0.0, 1.0]


def test_cli_scores_with_the_tiny_model_and_names_a_missing_one(model_dir, tmp_path, cli, monkeypatch):
    clip = short_clip(tmp_path / "clip.mp4", seconds=2.0)
    missing = subprocess.run([cli, "score", str(clip), "--family", "mtm", "--models", str(tmp_path / "none"),
                              "--out", str(tmp_path / "a")], capture_output=True, text=True)
    assert missing.returncode == 2 and "model mtm is missing" in missing.stderr
    assert not (tmp_path / "a").exists()
    done = subprocess.run([cli, "score", str(clip), "--family", "mtm", "--models", str(model_dir),
                           "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "b" / "result.json").read_text())
    assert result["model"]["family"] == "mtm"
    auto = result["variations"][0]["description"]  # the text bridge's caption
    assert result["request"]["describe"] is None and auto.endswith(f"{round(result['tempo'])} bpm, piano and band")
    asked = subprocess.run([cli, "score", str(clip), "--family", "mtm", "--models", str(model_dir), "--describe",
                            "slow sad piano", "--out", str(tmp_path / "c")], capture_output=True, text=True)
    assert asked.returncode == 0, asked.stderr
    result = json.loads((tmp_path / "c" / "result.json").read_text())
    assert result["request"]["describe"] == result["variations"][0]["description"] == "slow sad piano"
    assert "description: slow sad piano" in asked.stdout


def test_describe_is_the_text_the_dit_is_conditioned_on(model_dir, tmp_path, monkeypatch):
    clip = short_clip(tmp_path / "clip.mp4", seconds=2.0)
    encoded = []
    tokens = HashedText.tokens
    monkeypatch.setattr(HashedText, "tokens", lambda self, text: encoded.append(text) or tokens(self, text))
    engine = Engine(use_cache=False, model_dir=model_dir)
    auto = engine.score(video=str(clip), family="mtm", seed=2)
    assert encoded == [describe(auto.plan, auto.analysis)[0]]  # the text bridge's caption, when none is given
    encoded.clear()
    asked = engine.score(video=str(clip), family="mtm", seed=2, describe="slow sad piano")
    assert encoded == ["slow sad piano"]
    assert not np.allclose(asked.music[0].stems["music"], auto.music[0].stems["music"])  # other text, other audio
    saved = json.loads(Path(engine.save(asked, tmp_path / "out").result_json).read_text())
    assert saved["variations"][0]["description"] == "slow sad piano"


def test_runtime_path_imports_no_torch():
    code = ("import sys, cuesmith.engine.pipelines.mtm, cuesmith.engine.pipelines.mtm.library; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_model_trained_with_the_shipped_text_encoder_runs_with_it(tmp_path):
    from cuesmith.engine.pipelines.mtm.text import SHIPPED, OnnxText, text_encoder

    text = text_encoder({"name": SHIPPED, "max_tokens": 32})
    codec = Codec.load(threads=1)
    library = Library([item_from_audio(name, piece(bpm, mode, seconds=3.0), RATE, codec)
                       for name, bpm, mode in (("fast", 125, "major"), ("slow", 75, "minor"))], text)
    trained = train(library, tmp_path / "run", replace(CONFIGS["tiny"], steps=2))
    assert trained["model"].config.text_dim == text.dim == 384  # the DiT's text width follows the encoder
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["train_config"]["text_encoder"] == SHIPPED
    package(trained["model"], tmp_path / "mtm", "test", text.spec(), sampling={"guidance": 3.0, "steps": 2})
    model = load_family("mtm", tmp_path / "mtm")
    assert isinstance(model.text, OnnxText) and model.text.spec() == text.spec()
    plan = type("Plan", (), {"duration": 1.0})()
    music = model.generate(plan, {"description": "a mournful, unhurried ballad"}, n=1, seed=0)
    assert np.isfinite(music[0].stems["music"]).all()
