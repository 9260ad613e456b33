"""The learned vocoder, the codec's int8 graphs and the waveform codec's training entry (issue 15)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cuesmith.engine.codec import runtime as codec_runtime  # noqa: E402
from cuesmith.engine.codec.runtime import Codec  # noqa: E402
from cuesmith.engine.codec.vocoder import istft  # noqa: E402
from cuesmith.engine.nets import spectral  # noqa: E402
from cuesmith.engine.nets.codec import TINY, CodecConfig  # noqa: E402
from cuesmith.engine.nets.vocoder import CONFIGS as VOCODER_CONFIGS  # noqa: E402
from cuesmith.engine.training import vocoder as vocoder_training  # noqa: E402
from cuesmith.engine.training import waveform_codec  # noqa: E402
from cuesmith.engine.training.codec import FitConfig, evaluate, fit, save  # noqa: E402
from cuesmith.exporters.codec_export import add_int8, add_vocoder, package  # noqa: E402

from test_codec import tones  # noqa: E402

RATE = 32_000


def test_numpy_istft_matches_torch_and_inverts_the_stft():
    hop = 80
    audio = torch.from_numpy(tones(0.5, 3))[None]
    window = spectral.hann(4 * hop)
    spectrum = torch.stft(audio, 4 * hop, hop, window=window, center=True, return_complex=True)[..., :-1]
    rebuilt = spectral.istft(spectrum.real, spectrum.imag, hop, window)
    frames = spectrum.shape[-1]
    np.testing.assert_allclose(rebuilt[0, 4 * hop:-4 * hop], audio[0, 4 * hop:frames * hop - 4 * hop], atol=1e-5)
    rng = np.random.default_rng(0)
    real, imag = rng.normal(size=(2, 2 * hop + 1, 30)).astype(np.float32)
    expected = spectral.istft(torch.from_numpy(real)[None], torch.from_numpy(imag)[None], hop, window)[0].numpy()
    np.testing.assert_allclose(istft(real, imag, hop), expected, atol=1e-5)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny codec, packaged, with a tiny learned vocoder trained on its decoded log-mel."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("vocoder")
    train, valid = [tones(3, 1), tones(3, 2)], [tones(2, 9)]
    codec, baseline, _ = fit(train, CodecConfig(**TINY), FitConfig(steps=30, batch=4, window=16,
                                                                    kmeans_iterations=4, kmeans_points=10_000))
    save(codec, baseline, root / "codec.pt", {"validation": evaluate(codec, baseline, valid)})
    package(root / "codec.pt", root / "model", "pytest", valid)
    runtime = Codec.load(root / "model", vocoder="griffin-lim")
    examples = vocoder_training.make_examples(train, codec.config, runtime)
    config = vocoder_training.TrainConfig(steps=40, batch=4, window_frames=32, lr=3e-3, warmup_steps=2,
                                          save_every=20, log_every=10)
    state = vocoder_training.train(examples, root / "run", config, VOCODER_CONFIGS["tiny"], log=lambda m: None)
    manifest = add_vocoder(root / "model", root / "run" / "last.pt", valid)
    return root, state, manifest, valid[0]


def test_tiny_vocoder_trains_and_onnx_matches_torch(folder):
    _, state, manifest, _ = folder
    losses = [h["loss"] for h in state["history"]]
    assert state["step"] == 40 and losses[-1] < losses[0]
    check = manifest["vocoder"]["verification"]
    assert check["max_abs_audio"] < 1e-3 * max(1.0, check["peak_audio"])
    assert manifest["stages"]["codec"]["files"]["vocoder"] == "vocoder.onnx"
    assert manifest["interface"]["vocoder"] == "griffin-lim"  # default unchanged until the bench chooses


def test_learned_vocoder_decodes_in_exact_chunks(folder, monkeypatch):
    root, _, _, audio = folder
    codec = Codec.load(root / "model", vocoder="vocos")
    assert codec.vocoder.name == "vocos" and codec.graphs["vocoder"] == "vocoder"
    encoded = codec.encode(audio, RATE)
    whole = codec.decode_codes(encoded.codes, encoded.samples)
    assert len(whole) == len(audio) and np.isfinite(whole).all() and np.abs(whole).max() > 0
    monkeypatch.setattr(codec_runtime, "CHUNK_TOKENS", 13)
    chunked = codec.decode_codes(encoded.codes, encoded.samples)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)  # context each side: no seam at all
    with pytest.raises(Exception, match="unknown vocoder"):
        Codec.load(root / "model", vocoder="wavenet")


def test_int8_graphs_ship_only_where_they_hold(folder):
    root, _, _, audio = folder
    manifest = add_int8(root / "model", [audio])
    report, files = manifest["int8"], manifest["stages"]["codec"]["files"]
    base = report["fp32"]
    limit = {m: v * (1 + report["tolerance"]) for m, v in base.items() if m != "seconds"}
    for role in ("encoder", "decoder", "vocoder"):
        measure = "audio_mel_l1" if role == "vocoder" else "logmel_l1"
        shipped = report[role]["shipped"]
        assert shipped == (f"{role}_int8" in files) == (root / "model" / f"{role}.int8.onnx").is_file()
        held = [t for t in report[role]["tried"] if t[measure] <= limit[measure]
                and t["seconds"][role] <= report["slower"] * base["seconds"][role]]
        assert not shipped or (held and held[0]["op_types"] == report[role]["op_types"])
    if any(report[r]["shipped"] for r in ("encoder", "decoder", "vocoder")):
        assert all(report["together"][m] <= limit[m] for m in limit)
    codec = Codec.load(root / "model", int8=True, vocoder="vocos")
    assert all(codec.graphs[r] == (f"{r}_int8" if f"{r}_int8" in files else r) for r in codec.graphs)
    decoded = codec.decode_codes(codec.encode(audio, RATE).codes, len(audio))
    assert len(decoded) == len(audio) and np.isfinite(decoded).all()
    assert json.loads((root / "model" / "manifest.json").read_text())["int8"]["excerpts"] == 1


def test_waveform_codec_smoke_trains_and_resumes(tmp_path):
    audio = waveform_codec.synthetic_audio(4, 0.5, RATE)
    config = waveform_codec.CONFIGS["tiny"]
    first = waveform_codec.train(audio, tmp_path, config, device="cpu", log=lambda m: None)
    assert first["step"] == 4 and "adversarial" in first["history"][-1] and "adversarial" not in first["history"][0]
    assert all(np.isfinite(h["mel"]) for h in first["history"])
    from dataclasses import replace

    again = waveform_codec.train(audio, tmp_path, replace(config, steps=6), resume=True, device="cpu",
                                 log=lambda m: None)
    assert again["step"] == 6 and len(again["history"]) == 6
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    from cuesmith.engine.nets.waveform_codec import WaveformCodec

    net = WaveformCodec(waveform_codec.net_config_from(state["net_config"]))
    net.load_state_dict(state["model"])
    net.eval()
    x = torch.from_numpy(audio[0][:3 * 640])[None]
    codes = net.encode(x)
    assert codes.shape == (1, 2, 3) and int(codes.max()) < 16
    assert net.decode(codes).shape == x.shape
    special = torch.full_like(codes, net.config.special_id)
    assert float(net.quantiser.dequantize(special).abs().max()) == 0.0
