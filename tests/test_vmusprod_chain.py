"""The whole chain on a tiny config: train a few steps -> export -> verify -> generate through ORT."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from cuesmith.engine.music.tokens import TYPE, TokenType  # noqa: E402
from cuesmith.engine.pipelines.vmusprod import VMusProd  # noqa: E402
from cuesmith.engine.runtime.sampling import Sampling  # noqa: E402
from cuesmith.engine.training.data import collate, fixed_crops, load_songs  # noqa: E402
from cuesmith.engine.training.train import CONFIGS, Run, train  # noqa: E402
from cuesmith.exporters.package import package  # noqa: E402
from cuesmith.exporters.onnx_export import load_checkpoint  # noqa: E402

from vmusprod_helpers import make_plan  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-run")
    results = {stage: train(Run(stage, replace(CONFIGS["tiny"]), out)) for stage in ("chord", "melody", "accompaniment")}
    return out, results


@pytest.fixture(scope="module")
def tiny_model(tiny_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "vmusprod"
    manifest = package(tiny_run[0], folder, command="tiny test")
    return folder, manifest


def test_training_logs_validation_loss_per_epoch_and_resumes(tiny_run):
    out, results = tiny_run
    for stage, result in results.items():
        assert len(result["history"]) == CONFIGS["tiny"].epochs[stage]
        assert np.isfinite(result["best_valid_nll"]) and result["best_valid_nll"] > 0
        log = (out / stage / "train.log").read_text()
        assert "valid_nll" in log
        assert (out / stage / "last.pt").is_file() and (out / stage / "best.pt").is_file()
    resumed = train(Run("chord", replace(CONFIGS["tiny"]), out), resume=True, epochs=2)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert "resumed at epoch 1" in (out / "chord" / "train.log").read_text()


def test_kv_cache_step_matches_the_full_forward(tiny_run):
    net, _ = load_checkpoint(tiny_run[0] / "melody" / "best.pt")
    songs = load_songs("melody", (701,), (0,))
    batch = collate(fixed_crops(songs[0], 4, 64)[:1], net.config.d_video)
    with torch.no_grad():
        memory, memory_bar = net.memory_for(batch)
        cross_k, cross_v = net.memory_kv(memory)
        full = net.heads.all_types(net.hidden(batch["tokens"], batch["context"], cross_k, cross_v, memory_bar)[0])
        past_k, past_v = net.empty_cache(1)
        for t in range(batch["tokens"].shape[1]):
            type_logits, field_logits, past_k, past_v = net.step(
                batch["tokens"][:, t:t + 1], batch["context"][:, t:t + 1], past_k, past_v, cross_k, cross_v, memory_bar)
            assert torch.allclose(type_logits[0], full[0][t], atol=1e-4)
            assert torch.allclose(field_logits[0], full[1][t], atol=1e-4)


def test_exports_agree_with_torch(tiny_model):
    _, manifest = tiny_model
    for stage, entry in manifest["stages"].items():
        report = entry["verification"]
        print(stage, report)
        assert report["fp32"]["max_abs_logit_diff"] < 1e-4, stage
        assert report["fp32"]["greedy_agreement"] == 1.0, stage
        assert report["fp32_in_place"]["max_abs_logit_diff"] < 1e-4, stage  # through runtime/kv_cache.py
        assert report["fp32_in_place"]["greedy_agreement"] == 1.0, stage
        assert report["int8"]["max_abs_logit_diff"] < 0.5, stage
        assert report["int8_in_place"]["max_abs_logit_diff"] < 0.5, stage
        for name in entry["files"].values():
            assert len(manifest["files"][name]["sha256"]) == 64


def test_tiny_model_generates_through_onnx_runtime_to_the_plan(tiny_model):
    folder, _ = tiny_model
    plan = make_plan(n_bars=4, sections=(0, 2))
    generation = VMusProd(folder).generate_stages(plan, variations=2, seed=3, sampling=Sampling(top_p=0.95))
    assert set(generation.providers.values()) == {"CPUExecutionProvider"}
    for stage, sequences in generation.tokens.items():
        for tokens in sequences:
            assert (tokens[:, TYPE] == TokenType.BAR).sum() == plan.n_bars, stage
            assert tokens[0, TYPE] == TokenType.BOS and tokens[-1, TYPE] == TokenType.EOS
    assert len(generation.songs) == 2


def test_re_exporting_one_stage_keeps_the_rest_of_the_manifest(tiny_run, tmp_path):
    import json
    import shutil

    folder = tmp_path / "vmusprod"
    package(tiny_run[0], folder, command="first")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["stages"]["chord"]["sampling"] = {"temperature": 1.1, "top_p": 0.9}
    manifest["known_limits"] = ["kept"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    melody_entry = manifest["stages"]["melody"]
    shutil.copy(tiny_run[0] / "chord" / "best.pt", tmp_path / "other.pt")  # another run's chord net
    (tmp_path / "run2" / "chord").mkdir(parents=True)
    shutil.move(tmp_path / "other.pt", tmp_path / "run2" / "chord" / "best.pt")
    after = package(tmp_path / "run2", folder, command="second", stages=("chord",))
    assert after["stages"]["chord"]["sampling"] == {"temperature": 1.1, "top_p": 0.9}
    assert after["stages"]["chord"]["checkpoint"] == str(tmp_path / "run2" / "chord" / "best.pt")
    assert after["stages"]["melody"] == melody_entry and after["known_limits"] == ["kept"]
    assert after["command"] == "first; then second"
    assert json.loads((folder / "manifest.json").read_text()) == json.loads(json.dumps(after))  # (tuples: lists)
    with pytest.raises(ValueError):
        package(tmp_path / "run2", tmp_path / "empty", command="x", stages=("chord",))


def test_re_exported_decoders_compute_what_the_folder_held(tiny_model, tmp_path):
    """`package --reexport-decoders`: new decoder graphs from the folder's own weights (no checkpoint), the
    same logits as the graphs they replace, the manifest's hashes and verification updated."""
    import json
    import shutil

    import onnxruntime as ort

    from cuesmith.engine.runtime.store import sha256
    from cuesmith.exporters.package import main as package_main

    folder = tmp_path / "vmusprod"
    shutil.copytree(tiny_model[0], folder)
    before = ort.InferenceSession(str(tiny_model[0] / "melody.decoder.onnx"), providers=["CPUExecutionProvider"])
    assert package_main(["--out", str(folder), "--reexport-decoders"]) == 0
    after = ort.InferenceSession(str(folder / "melody.decoder.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for i in before.get_inputs():
        shape = [d if isinstance(d, int) else {"batch": 2, "past_len": 5, "memory_len": 7}.get(d, 3) for d in i.shape]
        feeds[i.name] = (rng.integers(0, 3, shape) if "int64" in i.type else rng.standard_normal(shape)).astype(
            np.int64 if "int64" in i.type else np.float32)
    for old, new in zip(before.run(None, feeds)[:2], after.run(None, feeds)[:2]):
        assert np.abs(old - new).max() < 1e-4
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"]["melody.decoder.onnx"]["sha256"] == sha256(folder / "melody.decoder.onnx")
    assert manifest["stages"]["melody"]["verification"]["fp32"]["max_abs_logit_diff"] < 1e-4
    assert manifest["command"].endswith("--reexport-decoders")
