"""VidMuse (issue 16): tiny config trains -> exports -> generates audio through ORT; the numpy parts alone.

The model folder the tests build decodes codes with tests/families/standin_codec.py (a test stand-in for
the issue-15 codec, same decode interface), named in its manifest.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.pipelines.vidmuse import VidMuse, Windows
from cuesmith.engine.pipelines.vidmuse.decode import sample_top_k
from cuesmith.engine.pipelines.vidmuse.delay import deinterleave, interleave, valid_cells
from cuesmith.engine.pipelines.vidmuse.features import N_STATS, TOKENS_PER_FRAME, frame_stats

from bridge_helpers import short_clip

STANDIN_CODEC = Path(__file__).resolve().parent / "families" / "standin_codec.py"
SPECIAL = 2048


# -- numpy parts ---------------------------------------------------------------------------

def test_the_delay_pattern_round_trips_and_shifts_each_codebook():
    codes = np.random.default_rng(0).integers(0, SPECIAL, (4, 37))
    delayed = interleave(codes, SPECIAL)
    assert delayed.shape == (4, 40)
    assert (deinterleave(delayed) == codes).all()
    assert delayed[2, 2] == codes[2, 0] and delayed[3, 39] == codes[3, 36]
    assert (delayed[3, :3] == SPECIAL).all() and (delayed[0, 37:] == SPECIAL).all()
    assert ((delayed == SPECIAL) == ~valid_cells(37, 40)).all()


def test_windows_overlap_by_the_prompt_and_cover_the_clip():
    spans = Windows(total=3500, window=1500, prompt=25).spans()
    assert spans == [(0, 1500), (1475, 1500), (2950, 550)]
    assert Windows(total=40, window=1500, prompt=25).spans() == [(0, 40)]


def test_patch_statistics_see_colour_edges_and_change():
    frame = np.zeros((70, 140, 3), np.uint8)
    frame[:, 70:] = 255  # right half white
    stats = frame_stats(frame, frame)
    assert stats.shape == (TOKENS_PER_FRAME, N_STATS)
    patches = stats[1:].reshape(7, 7, N_STATS)
    assert np.allclose(patches[:, :3, :3], 0) and np.allclose(patches[:, 4:, :3], 1)
    assert np.allclose(stats[0, :3], 0.5, atol=0.01)  # the summary token: mean colour
    assert patches[:, 3, 3:6].min() > 0.3 and np.allclose(patches[:, 0, 3:6], 0)  # spread only where the edge is
    assert patches[:, 3, 6].min() > 0 and np.allclose(patches[:, 0, 6], 0)  # horizontal gradient energy
    assert np.allclose(stats[:, 8], 0)  # no change from an identical frame
    assert np.allclose(frame_stats(frame, 255 - frame)[:, 8], 1)  # every pixel inverted


def test_top_k_draws_only_among_the_k_largest_and_is_seeded():
    logits = np.tile(np.array([0.0, 5.0, 4.9, -3.0, 4.8], np.float32), (200, 1))
    drawn = sample_top_k(logits, 2, 1.0, np.random.default_rng(1))
    assert set(drawn) == {1, 2}
    assert (drawn == sample_top_k(logits, 2, 1.0, np.random.default_rng(1))).all()
    assert (sample_top_k(logits, 250, 0.0, np.random.default_rng(1)) == 1).all()


# -- the chain: train -> export -> ORT ---------------------------------------------------------

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from cuesmith.engine.nets.vidmuse import CONFIGS as NETS
    from cuesmith.engine.training.vidmuse import CONFIGS, synthetic_pairs, train

    out = tmp_path_factory.mktemp("vidmuse-run")
    pairs = synthetic_pairs(4, seconds=3.0, net=NETS["tiny"])
    return out, pairs, train(pairs, out, CONFIGS["tiny"])


@pytest.fixture(scope="module")
def tiny_model(tiny_run, tmp_path_factory):
    from cuesmith.exporters.vidmuse_export import package

    models = tmp_path_factory.mktemp("models")
    manifest = package(tiny_run[0] / "last.pt", models / "vidmuse", codec={"module": str(STANDIN_CODEC)})
    return models, manifest


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return short_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=3.0)


def test_training_runs_resumes_and_keeps_an_ema(tiny_run):
    from cuesmith.engine.training.vidmuse import CONFIGS, train

    out, pairs, result = tiny_run
    assert result["step"] == 6 and [h["step"] for h in result["history"]] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(h["loss"]) and h["loss"] > 0 for h in result["history"])
    state = torch.load(out / "last.pt", weights_only=False)
    assert state["step"] == 6 and any(not torch.equal(state["ema"][k], state["model"][k]) for k in state["model"])
    train(pairs, out / "resumed", CONFIGS["tiny"], steps=2)
    resumed = train(pairs, out / "resumed", CONFIGS["tiny"], steps=4, resume=True)
    straight = train(pairs, out / "straight", CONFIGS["tiny"], steps=4)
    timeless = [[{k: v for k, v in h.items() if k != "seconds"} for h in run["history"]] for run in (resumed, straight)]
    assert timeless[0] == timeless[1]
    a, b = (torch.load(out / name / "last.pt", weights_only=False) for name in ("resumed", "straight"))
    assert all(torch.equal(a["model"][k], b["model"][k]) and torch.equal(a["ema"][k], b["ema"][k]) for k in a["model"])


def test_validation_scores_the_ema_with_and_without_the_video_and_a_time_budget_stops(tmp_path):
    from cuesmith.engine.nets.vidmuse import CONFIGS as NETS
    from cuesmith.engine.training.vidmuse import CONFIGS, synthetic_pairs, train

    pairs, valid = synthetic_pairs(4, 3.0, NETS["tiny"]), synthetic_pairs(2, 3.0, NETS["tiny"], seed=1)
    result = train(pairs, tmp_path / "run", CONFIGS["tiny"], valid=valid, steps=3)
    losses = [(h["valid_loss"], h["valid_loss_null"]) for h in result["history"]]
    assert len(losses) == 3 and all(np.isfinite(pair).all() and pair[0] != pair[1] for pair in losses)
    stopped = train(pairs, tmp_path / "budget", CONFIGS["tiny"], max_minutes=0.0)
    assert stopped["step"] == 1 and torch.load(tmp_path / "budget" / "last.pt", weights_only=False)["step"] == 1


def test_the_export_matches_torch(tiny_model):
    verification = tiny_model[1]["stages"]["vidmuse"]["verification"]
    assert verification["step"]["max_abs_logit_delta"] < 1e-4 and verification["step"]["greedy_agreement"] == 1.0
    # int8 of a 6-step tiny net: its logits nearly tie, so argmax agreement is a coin toss (0.66 with ORT 1.32);
    # what must hold is that int8 tracks fp32: an error far under the logits' spread (unrelated logits: ~1.4)
    assert verification["step_int8"]["rms_logit_delta_over_std"] < 0.3


def test_the_step_graph_takes_cached_cross_kv_not_the_video(tiny_model):
    import onnxruntime as ort

    folder = tiny_model[0] / "vidmuse"
    files = tiny_model[1]["stages"]["vidmuse"]["files"]
    step = ort.InferenceSession(str(folder / files["step"]))
    inputs = {i.name: i.shape for i in step.get_inputs()}
    layers = ("_0", "_1")  # the tiny config's two decoder layers
    cached = {f"{name}{i}" for name in ("past_k", "past_v", "cross_k", "cross_v") for i in layers}
    assert set(inputs) == {"codes", "position"} | cached  # no video tokens: nothing else to project
    net = tiny_model[1]["stages"]["vidmuse"]["net_config"]
    head_dim = net["d_model"] // net["n_heads"]
    assert inputs["cross_k_0"] == ["batch", net["n_heads"], head_dim, "video_tokens"]
    assert inputs["cross_v_1"] == ["batch", net["n_heads"], "video_tokens", head_dim]
    assert inputs["past_k_0"] == ["batch", net["n_heads"], "past", head_dim]
    cross = ort.InferenceSession(str(folder / files["cross"]))
    assert [i.name for i in cross.get_inputs()] == ["tokens"]
    assert [o.name for o in cross.get_outputs()] == ["cross_k_0", "cross_k_1", "cross_v_0", "cross_v_1"]


def test_score_writes_audio_through_the_score_save_path(tiny_model, clip, tmp_path, monkeypatch):
    from cuesmith.engine import Engine

    monkeypatch.setenv("CUESMITH_MODELS", str(tiny_model[0]))
    seen = []
    score = Engine(use_cache=False).score(video=str(clip), family="vidmuse", out_dir=str(tmp_path / "out"), seed=1,
                                          progress=lambda stage, f: seen.append(stage))
    music = score.music[0]
    assert music.song is None and set(music.stems) == {"music"} and music.sample_rate == 32_000
    audio = music.stems["music"]
    assert len(audio) == round(score.plan.duration * 32_000) and np.abs(audio).max() > 0.05
    assert any(s.startswith("generate music (window 2/2)") for s in seen) and "video features" in seen
    assert score.model["family"] == "vidmuse" and score.critique.music_kind == "audio"
    result = Engine().save(score)
    assert Path(result.placement.audio["mix"]).read_bytes()[:4] == b"RIFF" and result.variations[0].midi is None


def analysis_and_plan(clip):
    from cuesmith.engine import Engine
    from cuesmith.engine.pipelines.job import plan_for
    from cuesmith.engine.schema import ScoreRequest

    analysis = Engine(use_cache=False).analyze(str(clip))
    return analysis, plan_for(analysis, ScoreRequest(video=str(clip)))


def test_same_seed_same_audio_bytes(tiny_model, clip):
    model = VidMuse(tiny_model[0] / "vidmuse")
    analysis, plan = analysis_and_plan(clip)
    first = model.generate(plan, {"analysis": analysis}, n=2, seed=5)
    again = model.generate(plan, {"analysis": analysis}, n=2, seed=5)
    other = model.generate(plan, {"analysis": analysis}, n=1, seed=6)
    assert [m.stems["music"].tobytes() for m in first] == [m.stems["music"].tobytes() for m in again]
    assert first[0].stems["music"].tobytes() != first[1].stems["music"].tobytes()
    assert other[0].stems["music"].tobytes() != first[0].stems["music"].tobytes()


def test_cfg_scale_zero_is_the_unconditional_path(tiny_model, clip):
    model = VidMuse(tiny_model[0] / "vidmuse")
    analysis, plan = analysis_and_plan(clip)
    features = model.video_features(Path(analysis.info.path), analysis.start, plan.duration)
    unconditional = model.generate_codes(None, plan.duration, 2, 7, model.guidance)
    zero = model.generate_codes(features, plan.duration, 2, 7, replace(model.guidance, cfg_scale=0.0))
    guided = model.generate_codes(features, plan.duration, 2, 7, model.guidance)
    assert all((a == b).all() for a, b in zip(unconditional, zero))
    assert any((a != b).any() for a, b in zip(unconditional, guided))  # the video does steer the codes
    assert all(c.shape == (4, math.ceil(plan.duration * 50)) and c.max() < SPECIAL for c in guided)


def test_the_int8_step_generates_too(tiny_model):
    model = VidMuse(tiny_model[0] / "vidmuse", int8=True)
    assert model.graphs["vidmuse"][-1] == "vidmuse.step.int8.onnx"
    codes = model.generate_codes(None, 1.0, 1, 0, model.guidance)
    assert codes[0].shape == (4, 50) and 0 <= codes[0].min() and codes[0].max() < SPECIAL


def test_the_runtime_imports_no_torch(tiny_model, clip):
    code = ("import sys; from pathlib import Path; import numpy as np; "
            "from cuesmith.engine.pipelines.vidmuse import VidMuse; "
            f"m = VidMuse(Path({str(tiny_model[0] / 'vidmuse')!r})); "
            f"f = m.video_features(Path({str(clip)!r}), 0.0, 3.0); "
            "c = m.generate_codes(f, 3.0, 1, 0, m.guidance); a = m.codec.decode_codes(c[0]); "
            "print(len(a), sorted(n for n in sys.modules if n.split('.')[0] == 'torch'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "[]" and int(done.stdout.split()[0]) == 150 * 640


# -- the shipped weights (models/vidmuse) ------------------------------------------------------

def test_the_shipped_weights_load_and_generate_a_short_window(clip):
    from cuesmith.engine.runtime.store import SHIPPED

    if not (SHIPPED / "vidmuse" / "manifest.json").is_file():
        pytest.skip("no shipped vidmuse weights")
    model = VidMuse(SHIPPED / "vidmuse")
    manifest = model.model.manifest
    assert sum(f["bytes"] for f in manifest["files"].values()) < 80e6
    assert manifest["stages"]["vidmuse"]["history"][-1]["valid_loss"] > 0 and manifest["codec"] == {"model": "codec"}
    features = model.video_features(clip, 0.0, 1.0)
    codes = model.generate_codes(features, 1.0, 1, 0, model.guidance)[0]
    assert codes.shape == (4, 50) and 0 <= codes.min() and codes.max() < SPECIAL
    audio = model.codec.decode_codes(codes, 32_000)
    assert len(audio) == 32_000 and np.isfinite(audio).all() and np.abs(audio).max() > 0.01


# -- errors --------------------------------------------------------------------------------

def test_a_missing_model_names_it(tmp_path):
    with pytest.raises(CuesmithError, match="model vidmuse is missing"):
        VidMuse(tmp_path / "nowhere")


def test_a_missing_graph_names_it(tiny_model, tmp_path):
    folder = tmp_path / "vidmuse"
    shutil.copytree(tiny_model[0] / "vidmuse", folder)
    (folder / "vidmuse.step.onnx").unlink()
    with pytest.raises(CuesmithError, match="model vidmuse/vidmuse is missing its step graph"):
        VidMuse(folder)


def test_cli_score_family_vidmuse_writes_the_mix(cli, clip, tiny_model, tmp_path):
    done = subprocess.run([cli, "score", str(clip), "--family", "vidmuse", "--models", str(tiny_model[0] / "vidmuse"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["model"]["family"] == "vidmuse" and result["variations"][0]["midi"] is None
    assert Path(result["placement"]["audio"]["mix"]).is_file() and Path(result["critique"]["json"]).is_file()


def test_cli_score_family_vidmuse_without_a_model_exits_2_naming_it(cli, clip, tmp_path):
    env = dict(os.environ, CUESMITH_MODELS=str(tmp_path / "empty"), XDG_DATA_HOME=str(tmp_path / "data"))
    done = subprocess.run([cli, "score", str(clip), "--family", "vidmuse", "--models", str(tmp_path / "nowhere"),
                           "--out", str(tmp_path / "out")],  # models/vidmuse ships: name a folder that is not there
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "model vidmuse is missing" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


# -- the CLIP visual encoder (a user's checkpoint; never downloaded) ------------------------------

def test_a_clip_shaped_checkpoint_loads_and_exports_to_50_tokens_per_frame(tmp_path):
    from cuesmith.engine.nets.clip_vit import ClipVision, ClipVisionConfig, load_vision_state, write_safetensors
    from cuesmith.exporters.clip_export import export_clip, verify_clip

    small = ClipVisionConfig(width=128, layers=2, heads=2, mlp=256)  # ViT-B/32's layout, narrower
    torch.manual_seed(0)
    made = ClipVision(small)
    state = {f"vision_model.{k}": v for k, v in made.state_dict().items()}
    state["vision_model.embeddings.position_ids"] = torch.arange(50, dtype=torch.float32)[None]
    state["text_model.embeddings.token_embedding.weight"] = torch.zeros(10, 64)  # a whole CLIPModel's text keys
    write_safetensors(state, tmp_path / "model.safetensors")
    loaded = load_vision_state(tmp_path / "model.safetensors")
    assert loaded.config == small
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in made.state_dict().items())
    report = verify_clip(loaded, export_clip(loaded, tmp_path / "out"))
    assert report["shape"] == [3, 50, 128] and report["max_abs_delta"] < 1e-4
    write_safetensors({"encoder.weight": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not a CLIP checkpoint"):
        load_vision_state(tmp_path / "other.safetensors")


def test_a_model_with_the_clip_encoder_reads_clip_features(clip, tmp_path):
    from cuesmith.engine.nets.clip_vit import ClipVision, ClipVisionConfig, write_safetensors
    from cuesmith.engine.nets.vidmuse import CONFIGS as NETS
    from cuesmith.engine.training.vidmuse import CONFIGS, synthetic_pairs, train
    from cuesmith.exporters.vidmuse_export import add_clip, package

    torch.manual_seed(0)
    tower = ClipVision(ClipVisionConfig(width=128, layers=1, heads=2, mlp=256))
    write_safetensors({f"vision_model.{k}": v for k, v in tower.state_dict().items()}, tmp_path / "clip.safetensors")
    net = replace(NETS["tiny"], visual_dim=128)
    train(synthetic_pairs(2, 3.0, net), tmp_path / "run", CONFIGS["tiny"], net_config=net, steps=2)
    package(tmp_path / "run" / "last.pt", tmp_path / "vidmuse", int8=False, codec={"module": str(STANDIN_CODEC)},
            clip=tmp_path / "clip.safetensors")
    model = VidMuse(tmp_path / "vidmuse")
    assert "clip_vision.onnx" in model.graphs["vidmuse"]
    features = model.video_features(clip, 0.0, 3.0)
    assert features.local.shape == (6, 50, 128) and features.globl.shape == (4, 50, 128)
    assert not np.allclose(features.local[0], features.local[-1])  # the first and last shots differ
    codes = model.generate_codes(features, 3.0, 1, 0, model.guidance)
    assert codes[0].shape == (4, 150)
    with pytest.raises(ValueError, match="CLIP width 128, but the net reads 9-wide"):
        add_clip(tmp_path / "clip.safetensors", NETS["tiny"], tmp_path / "other")  # a statistics net


# -- with the issue-15 codec (once engine/codec is in the tree) ----------------------------------

def tones(seconds: float, seed: int, rate: int = 32_000) -> np.ndarray:
    """Plucked harmonic notes, four a second, pitches drawn over three octaves."""
    rng = np.random.default_rng(seed)
    note = int(0.25 * rate)
    t = np.arange(note) / rate
    out = np.zeros(int(seconds * rate), np.float32)
    for i in range(len(out) // note):
        f = 110 * 2 ** (rng.integers(0, 36) / 12)
        partials = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 5))
        out[i * note:(i + 1) * note] = 0.2 * np.exp(-6 * t) * partials
    return out


def test_prepare_pairs_a_corpus_excerpt_with_its_video(clip, tmp_path):
    """The paired corpus layout (issue 15: <split>/<id>.flac beside <id>.mp4) -> one .npz, with the shipped codec."""
    pytest.importorskip("cuesmith.engine.codec.runtime")
    import soundfile

    from cuesmith.engine.nets.vidmuse import CONFIGS as NETS
    from cuesmith.engine.runtime.store import SHIPPED
    from cuesmith.engine.training.vidmuse import Pair, load_pairs, prepare

    if not (SHIPPED / "codec" / "manifest.json").is_file():
        pytest.skip("no shipped codec")
    (tmp_path / "corpus" / "train").mkdir(parents=True)
    shutil.copy(clip, tmp_path / "corpus" / "train" / "001-0.mp4")
    soundfile.write(tmp_path / "corpus" / "train" / "001-0.flac", tones(3, 1), 32_000, subtype="PCM_16")
    assert prepare(tmp_path / "corpus", tmp_path / "pairs", NETS["tiny"], SHIPPED / "codec") == 1
    assert prepare(tmp_path / "corpus", tmp_path / "pairs", NETS["tiny"], SHIPPED / "codec") == 0  # kept, not redone
    (pair,) = load_pairs(tmp_path / "pairs" / "train")
    assert isinstance(pair, Pair) and pair.codes.shape == (4, 150) and pair.codes.max() < SPECIAL
    assert pair.local.shape == (6, TOKENS_PER_FRAME, N_STATS) and pair.globl.shape == (64, TOKENS_PER_FRAME, N_STATS)
    assert pair.local[:, 0, :3].std(axis=0).max() > 0.01  # the clip's shots differ in colour


@pytest.mark.slow  # fits a tiny codec too (~1 min on a busy 2-core machine)
def test_the_chain_with_the_real_codec_trains_exports_and_decodes_audio(clip, tmp_path):
    codec_runtime = pytest.importorskip("cuesmith.engine.codec.runtime")
    from cuesmith.engine.nets.codec import TINY, CodecConfig
    from cuesmith.engine.nets.vidmuse import CONFIGS as NETS
    from cuesmith.engine.training.codec import FitConfig, fit, save as save_codec
    from cuesmith.engine.training.vidmuse import CONFIGS, Pair, train
    from cuesmith.exporters.codec_export import package as package_codec
    from cuesmith.exporters.vidmuse_export import package

    torch.manual_seed(0)
    valid = [tones(2, 9)]
    fitted, baseline, _ = fit([tones(3, 1), tones(3, 2)], CodecConfig(**TINY),
                              FitConfig(steps=30, batch=4, window=16, kmeans_iterations=4, kmeans_points=10_000))
    save_codec(fitted, baseline, tmp_path / "codec.pt", {})
    package_codec(tmp_path / "codec.pt", tmp_path / "codec", "pytest", valid)
    codec = codec_runtime.Codec.load(tmp_path / "codec")
    net = replace(NETS["tiny"], codebooks=codec.codebooks, codebook_size=codec.codebook_size)
    rng = np.random.default_rng(0)
    pairs = [Pair(codec.encode(tones(3, s), 32_000).codes, rng.random((6, 50, 9), dtype=np.float32),
                  rng.random((4, 50, 9), dtype=np.float32)) for s in (3, 4, 5)]
    assert pairs[0].codes.shape == (codec.codebooks, 150)
    train(pairs, tmp_path / "run", CONFIGS["tiny"], net_config=net)
    codec_entry = {"model": "codec", "folder": str(tmp_path / "codec")}
    package(tmp_path / "run" / "last.pt", tmp_path / "vidmuse", codec=codec_entry)
    model = VidMuse(tmp_path / "vidmuse")
    analysis, plan = analysis_and_plan(clip)
    music = model.generate(plan, {"analysis": analysis}, n=1, seed=0)[0]
    audio = music.stems["music"]
    assert music.sample_rate == codec.sample_rate and len(audio) == round(plan.duration * codec.sample_rate)
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
