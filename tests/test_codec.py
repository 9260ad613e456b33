"""The mel codec: a tiny one fits, exports, and round-trips audio through ONNX Runtime."""
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cuesmith.engine.codec import runtime as codec_runtime  # noqa: E402
from cuesmith.engine.codec.runtime import Codec  # noqa: E402
from cuesmith.engine.nets.codec import TINY, CodecConfig  # noqa: E402
from cuesmith.engine.training.codec import FitConfig, evaluate, fit, save  # noqa: E402
from cuesmith.exporters.codec_export import package  # noqa: E402

RATE = 32_000
TINY_FIT = FitConfig(steps=30, batch=4, window=16, kmeans_iterations=4, kmeans_points=10_000)


def tones(seconds: float, seed: int) -> np.ndarray:
    """Plucked harmonic notes, four a second, pitches drawn over three octaves."""
    rng = np.random.default_rng(seed)
    note = int(0.25 * RATE)
    t = np.arange(note) / RATE
    out = np.zeros(int(seconds * RATE), np.float32)
    for i in range(len(out) // note):
        f = 110 * 2 ** (rng.integers(0, 36) / 12)
        out[i * note:(i + 1) * note] = 0.2 * np.exp(-6 * t) * sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 5))
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("codec")
    train, valid = [tones(3, 1), tones(3, 2)], [tones(2, 9)]
    codec, baseline, log = fit(train, CodecConfig(**TINY), TINY_FIT)
    save(codec, baseline, folder / "codec.pt", {"validation": evaluate(codec, baseline, valid)})
    manifest = package(folder / "codec.pt", folder / "model", "pytest", valid)
    return codec, folder / "model", manifest, log, valid[0]


def test_tiny_codec_fits(tiny):
    codec, _, manifest, log, _ = tiny
    scores = manifest["validation_logmel_l1"]
    assert scores["codec_latent"] < scores["mean"] and scores["codec_tokens"] < scores["mean"]
    assert scores["kmeans_baseline"] < scores["kmeans_baseline_1_codebook"] < scores["mean"]
    assert log["train_l1"][-1] < 1.0  # L1 on normalised log-mel; predicting the band means scores ~0.8-1


def test_onnx_matches_torch(tiny):
    _, _, manifest, _, _ = tiny
    check = manifest["verification"]
    assert check["max_abs_latent"] < 1e-3 and check["max_abs_logmel"] < 1e-3
    assert check["max_abs_dequantized"] < 1e-5 and check["code_agreement"] > 0.99
    assert manifest["interface"]["special_id"] == manifest["interface"]["codebook_size"]
    assert {"encoder.onnx", "dequantize.onnx", "decoder.onnx"} <= set(manifest["files"])


def test_round_trip_through_onnx_runtime(tiny, monkeypatch):
    codec, folder, _, _, audio = tiny
    runtime = Codec.load(folder)
    encoded = runtime.encode(audio, RATE)
    tokens = int(np.ceil(len(audio) / 640))
    assert encoded.codes.shape == (codec.config.codebooks, tokens) and encoded.latent.shape == (tokens, 8)
    assert encoded.codes.max() < codec.config.codebook_size
    decoded = runtime.decode_codes(encoded.codes, encoded.samples)
    assert len(decoded) == len(audio) and np.isfinite(decoded).all()
    # the round trip keeps the music: its log-mel is closer to the input's than silence or noise are
    from_torch = codec.frontend(torch.from_numpy(np.pad(decoded, (0, tokens * 640 - len(decoded))))[None])
    original = codec.frontend(torch.from_numpy(np.pad(audio, (0, tokens * 640 - len(audio))))[None])
    noise = codec.frontend(torch.from_numpy(np.random.default_rng(0).normal(0, 0.05, tokens * 640).astype(np.float32))[None])
    error = float((from_torch - original).abs().mean())
    assert error < float((noise - original).abs().mean()) and error < float((original - original.mean()).abs().mean())
    # chunked encoding and decoding (small chunks) give the same tokens and nearly the same audio
    monkeypatch.setattr(codec_runtime, "CHUNK_TOKENS", 20)
    chunked = runtime.encode(audio, RATE)
    assert (chunked.codes == encoded.codes).all()
    np.testing.assert_allclose(chunked.latent, encoded.latent, atol=1e-4)
    again = runtime.decode_latent(encoded.latent, encoded.samples)
    assert len(again) == len(audio) and np.isfinite(again).all()


def test_special_id_decodes_to_nothing(tiny):
    _, folder, _, _, _ = tiny
    runtime = Codec.load(folder)
    special = np.full((2, 10), runtime.special_id)
    np.testing.assert_allclose(runtime.dequantize(special), 0.0)
    from cuesmith.engine.errors import CuesmithError
    with pytest.raises(CuesmithError):
        runtime.dequantize(np.full((2, 10), runtime.special_id + 1))
    with pytest.raises(CuesmithError):
        runtime.dequantize(np.zeros((3, 10), int))


def test_runtime_path_imports_no_torch():
    code = ("import sys, cuesmith.engine.codec.runtime, cuesmith.engine.codec.cli, cuesmith.engine.codec.vocoder;"
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_cli_encode_decode(tiny, tmp_path, cli):
    import soundfile

    _, folder, _, _, audio = tiny
    wav = tmp_path / "in.wav"
    soundfile.write(wav, audio, RATE)
    tokens = tmp_path / "t.npz"
    run = lambda *a: subprocess.run([cli, "codec", *map(str, a), "--model", str(folder)],  # noqa: E731
                                    capture_output=True, text=True)
    assert run("encode", wav, "--out", tokens, "--latent").returncode == 0
    with np.load(tokens) as data:
        assert data["codes"].shape == (2, 100) and data["latent"].shape == (100, 8)
    out = tmp_path / "out.wav"
    assert run("decode", tokens, "--out", out).returncode == 0
    assert run("decode", tokens, "--out", out, "--from-latent").returncode == 0  # taken: writes out-2.wav
    first, rate = soundfile.read(out)
    assert rate == RATE and len(first) == len(audio) and (tmp_path / "out-2.wav").is_file()
    bad = run("decode", wav, "--out", tmp_path / "x.wav")
    assert bad.returncode == 2 and "not a token file" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert run("encode", tmp_path / "missing.wav", "--out", tmp_path / "m.npz").returncode == 2
    assert run("encode", wav, "--out", tmp_path / "m.wav").returncode == 2
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "m.npz").exists()
