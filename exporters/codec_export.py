"""The mel codec -> ONNX, verified against torch, packaged as models/codec/.

    encoder.onnx     audio (B, N) float32, N a multiple of 640 -> latent (B, T, D), codes (B, 4, T) int64
    dequantize.onnx  codes (B, 4, T) int64 (2048 = special id, adds nothing) -> latent (B, T, D)
    decoder.onnx     latent (B, T, D) -> logmel (B, 128, 2T)
    vocoder.onnx     logmel (B, 128, F) -> real, imag (B, 641, F): the learned vocoder's STFT (optional;
                     the iSTFT runs in numpy); Griffin-Lim needs no graph (engine/codec/vocoder.py)
    <role>.int8.onnx dynamically quantised int8 MatMul weights, shipped only where the error against the
                     original grows by at most INT8_TOLERANCE over fp32's on validation audio

    python -m cuesmith.exporters.codec_export --checkpoint RUN/codec.pt --out models/codec --command "..."
    python -m cuesmith.exporters.codec_export --out models/codec --vocoder VOC/last.pt --int8   # to a shipped folder
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from cuesmith.engine.files import atomic_path, write_json_atomic
from cuesmith.engine.nets.codec import CodecConfig, MelCodec, MelFrontend, pad_to_tokens
from cuesmith.engine.nets.spectral import MultiResolutionMelLoss
from cuesmith.engine.nets.vocoder import Vocoder
from cuesmith.engine.runtime.store import sha256
from cuesmith.exporters.onnx_export import export_traced, quantize_int8
from cuesmith.engine.training.codec import load

FILES = {"encoder": "encoder.onnx", "dequantize": "dequantize.onnx", "decoder": "decoder.onnx"}
VOCODER_FILE = "vocoder.onnx"
INT8_ROLES = ("encoder", "decoder", "vocoder")  # dequantize is a table look-up: nothing to quantise
INT8_TOLERANCE = 0.02  # an int8 graph ships if its error against the original grows by at most 2 %
INT8_SLOWER = 1.1  # ... and it runs at most this much slower than fp32 (ConvInteger is slow on some CPUs)


class EncoderGraph(nn.Module):
    def __init__(self, codec: MelCodec):
        super().__init__()
        self.codec = codec

    def forward(self, audio: torch.Tensor):
        latent = self.codec.encode_latent(audio)
        return latent, self.codec.quantize(latent)


class DequantizeGraph(nn.Module):
    def __init__(self, codec: MelCodec):
        super().__init__()
        self.codec = codec

    def forward(self, codes: torch.Tensor):
        return self.codec.dequantize(codes)


class DecoderGraph(nn.Module):
    def __init__(self, codec: MelCodec):
        super().__init__()
        self.codec = codec

    def forward(self, latent: torch.Tensor):
        return self.codec.decode_logmel(latent)


def export(codec: MelCodec, out: Path) -> dict[str, Path]:
    codec.eval()
    c = codec.config
    audio = torch.zeros(1, 8 * c.token_hop)
    codes = torch.zeros(1, c.codebooks, 8, dtype=torch.long)
    latent = torch.zeros(1, 8, c.latent_dim)
    graphs = {
        "encoder": (EncoderGraph(codec), (audio,), ["audio"], ["latent", "codes"],
                    {"audio": {0: "batch", 1: "samples"}, "latent": {0: "batch", 1: "tokens"},
                     "codes": {0: "batch", 2: "tokens"}}),
        "dequantize": (DequantizeGraph(codec), (codes,), ["codes"], ["latent"],
                       {"codes": {0: "batch", 2: "tokens"}, "latent": {0: "batch", 1: "tokens"}}),
        "decoder": (DecoderGraph(codec), (latent,), ["latent"], ["logmel"],
                    {"latent": {0: "batch", 1: "tokens"}, "logmel": {0: "batch", 2: "frames"}}),
    }
    return export_traced(graphs, out, FILES)


@torch.no_grad()
def verify(codec: MelCodec, folder: Path, audio: Sequence[np.ndarray]) -> dict:
    """ONNX Runtime against torch on real audio: max |delta| of latent and log-mel, code agreement."""
    from cuesmith.engine.runtime.sessions import open_session

    sessions = {role: open_session(folder / name) for role, name in FILES.items()}
    worst = {"latent": 0.0, "logmel": 0.0, "dequantized": 0.0}
    agree, total = 0, 0
    for samples in audio:
        x = pad_to_tokens(samples, codec.config)[None]
        latent_t = codec.encode_latent(torch.from_numpy(x))
        codes_t = codec.quantize(latent_t)
        latent_o, codes_o = sessions["encoder"].run(None, {"audio": x})
        worst["latent"] = max(worst["latent"], float(np.abs(latent_o - latent_t.numpy()).max()))
        agree += int((codes_o == codes_t.numpy()).sum())
        total += codes_o.size
        deq_o = sessions["dequantize"].run(None, {"codes": codes_t.numpy()})[0]
        deq_t = codec.dequantize(codes_t)
        worst["dequantized"] = max(worst["dequantized"], float(np.abs(deq_o - deq_t.numpy()).max()))
        logmel_o = sessions["decoder"].run(None, {"latent": deq_t.numpy()})[0]
        worst["logmel"] = max(worst["logmel"], float(np.abs(logmel_o - codec.decode_logmel(deq_t).numpy()).max()))
    return {"max_abs_latent": worst["latent"], "max_abs_dequantized": worst["dequantized"],
            "max_abs_logmel": worst["logmel"], "code_agreement": agree / max(1, total),
            "excerpts": len(audio)}


def package(checkpoint: Path, out: Path, command: str, verify_audio: Sequence[np.ndarray],
            metrics: Optional[dict] = None) -> dict:
    codec, baseline, saved = load(checkpoint)
    export(codec, out)
    verification = verify(codec, out, verify_audio)
    config = asdict(codec.config)
    manifest = {
        "family": "codec",
        "id": f"codec-mel-rvq-{time.strftime('%Y%m%d')}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "data": {"train": f"{saved.get('train_excerpts')} corpus excerpts of POP909 001-700 "
                          "(python -m cuesmith.engine.corpus build)",
                 "validation": f"{saved.get('valid_excerpts')} corpus excerpts of POP909 701-800"},
        "interface": {"sample_rate": codec.config.sample_rate, "token_rate_hz": codec.config.sample_rate
                      / codec.config.token_hop, "codebooks": codec.config.codebooks,
                      "codebook_size": codec.config.codebook_size, "special_id": codec.config.special_id,
                      "bits_per_second": codec.config.bits_per_second, "latent_dim": codec.config.latent_dim,
                      "decoder_context_tokens": codec.decoder.context, "vocoder": "griffin-lim"},
        "fit": saved.get("fit"),
        "validation_logmel_l1": saved.get("validation"),
        "verification": verification,
        "files": {name: {"sha256": sha256(out / name), "bytes": (out / name).stat().st_size}
                  for name in FILES.values()},
        "stages": {"codec": {"files": dict(FILES), "net_config": config}},
    }
    if metrics:
        manifest["metrics"] = metrics
    write_json_atomic(out / "manifest.json", manifest)
    if baseline is not None:  # the k-means mel baseline, for the benchmark only (not a runtime model)
        with atomic_path(out / "kmeans_baseline.npz") as tmp, tmp.open("wb") as f:
            np.savez_compressed(f, codebooks=baseline.numpy().astype(np.float16),
                                mean=codec.mean.numpy(), std=codec.std.numpy())
    return manifest


# -- the learned vocoder ------------------------------------------------------------

class VocoderGraph(nn.Module):
    def __init__(self, vocoder: Vocoder):
        super().__init__()
        self.vocoder = vocoder

    def forward(self, logmel: torch.Tensor):
        return self.vocoder.spectrum(logmel)


def export_vocoder(vocoder: Vocoder, out: Path) -> Path:
    vocoder.eval()
    logmel = torch.zeros(1, vocoder.config.n_mels, 16)
    graphs = {"vocoder": (VocoderGraph(vocoder), (logmel,), ["logmel"], ["real", "imag"],
                          {"logmel": {0: "batch", 2: "frames"}, "real": {0: "batch", 2: "frames"},
                           "imag": {0: "batch", 2: "frames"}})}
    return export_traced(graphs, out, {"vocoder": VOCODER_FILE})["vocoder"]


def codec_logmels(folder: Path, audio: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The log-mel the codec in `folder` decodes from its own tokens of each excerpt (fp32 graphs)."""
    from cuesmith.engine.codec.runtime import Codec

    codec = Codec.load(folder, vocoder="griffin-lim")
    out = []
    for samples in audio:
        latent = codec.dequantize(codec.encode(samples, codec.sample_rate).codes)
        out.append(codec.logmel(latent, 0, len(latent)))
    return out


@torch.no_grad()
def verify_vocoder(vocoder: Vocoder, path: Path, logmels: Sequence[np.ndarray]) -> dict:
    """ONNX Runtime + the numpy iSTFT against the torch vocoder: max |delta| of audio, relative to its peak."""
    from cuesmith.engine.codec.vocoder import istft
    from cuesmith.engine.runtime.sessions import open_session

    session, worst, peak = open_session(path), 0.0, 0.0
    for logmel in logmels:
        expected = vocoder(torch.from_numpy(logmel)[None])[0].numpy()
        real, imag = session.run(None, {"logmel": logmel[None]})
        worst = max(worst, float(np.abs(istft(real[0], imag[0], vocoder.config.hop) - expected).max()))
        peak = max(peak, float(np.abs(expected).max()))
    return {"max_abs_audio": worst, "peak_audio": peak, "excerpts": len(logmels)}


def add_vocoder(folder: Path, checkpoint: Path, verify_audio: Sequence[np.ndarray]) -> dict:
    """Export the vocoder of a training checkpoint (EMA weights) into a packaged codec folder."""
    from cuesmith.engine.training.vocoder import load as load_vocoder

    vocoder, state = load_vocoder(checkpoint)
    path = export_vocoder(vocoder, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["stages"]["codec"]["files"]["vocoder"] = VOCODER_FILE
    manifest["interface"]["vocoder_context_frames"] = vocoder.context + 2  # + the iSTFT's reach (n_fft = 4 hops)
    metrics_path = checkpoint.parent / "metrics.json"  # written by the training run at its end
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    manifest["vocoder"] = {"net_config": vocoder.config.to_dict(), "train_config": state["train_config"],
                           "steps": state["step"], "history": state["history"][-10:],
                           **{k: metrics[k] for k in ("validation_mel_l1", "train_excerpts", "valid_excerpts",
                                                      "command") if k in metrics},
                           "verification": verify_vocoder(vocoder, path, codec_logmels(folder, verify_audio))}
    manifest["files"][VOCODER_FILE] = {"sha256": sha256(path), "bytes": path.stat().st_size}
    write_json_atomic(folder / "manifest.json", manifest)
    return manifest


# -- int8 ---------------------------------------------------------------------------------

def int8_name(role: str) -> str:
    return f"{role}.int8.onnx"


def timed(session, feeds: dict) -> float:
    started = time.perf_counter()
    session.run(None, feeds)
    return time.perf_counter() - started


def role_errors(folder: Path, graphs: dict[str, str], audio: Sequence[np.ndarray]) -> dict:
    """Errors against the original on `audio` with `graphs` (role -> file): log-mel L1 of the codec's
    tokens path ("logmel_l1") and, with a vocoder, multi-resolution log-mel L1 of its audio ("audio_mel_l1");
    and each graph's seconds on the first excerpt (one thread, best of three)."""
    from cuesmith.engine.codec.vocoder import istft
    from cuesmith.engine.runtime.sessions import open_session

    manifest = json.loads((folder / "manifest.json").read_text())
    net = dict(manifest["stages"]["codec"]["net_config"])
    net["dilations"] = tuple(net["dilations"])
    config = CodecConfig(**net)
    frontend, mel_loss = MelFrontend(config), MultiResolutionMelLoss(config.sample_rate)
    sessions = {role: open_session(folder / name, threads=1) for role, name in graphs.items()}
    seconds: dict[str, float] = {}

    def run(role: str, feeds: dict) -> list:
        if role not in seconds:  # the first excerpt: best of three runs, this machine being shared
            seconds[role] = min(timed(sessions[role], feeds) for _ in range(3))
        return sessions[role].run(None, feeds)

    logmel_l1, audio_l1 = [], []
    for samples in audio:
        x = pad_to_tokens(samples, config)[None]
        _, codes = run("encoder", {"audio": x})
        latent = run("dequantize", {"codes": codes})[0]
        logmel = run("decoder", {"latent": latent})[0]
        with torch.no_grad():
            true = frontend(torch.from_numpy(x))
        logmel_l1.append(float((torch.from_numpy(logmel) - true).abs().mean()))
        if "vocoder" in sessions:
            real, imag = run("vocoder", {"logmel": logmel})
            produced = torch.from_numpy(istft(real[0], imag[0], config.hop))[None]
            with torch.no_grad():
                audio_l1.append(float(mel_loss(produced, torch.from_numpy(x))))
    errors: dict = {"logmel_l1": float(np.mean(logmel_l1))}
    if audio_l1:
        errors["audio_mel_l1"] = float(np.mean(audio_l1))
    return {**errors, "seconds": {role: float(f"{t:.4g}") for role, t in seconds.items()}}


def add_int8(folder: Path, verify_audio: Sequence[np.ndarray],
             op_type_choices: Sequence[tuple[str, ...]] = (("MatMul", "Conv"), ("MatMul",))) -> dict:
    """Quantise each of INT8_ROLES, trying each op-type set in turn (most quantised first); ship the first
    whose error grows by at most INT8_TOLERANCE and that runs at most INT8_SLOWER times fp32's time,
    then check the shipped ones together and drop the worst while that fails."""
    manifest = json.loads((folder / "manifest.json").read_text())
    files = manifest["stages"]["codec"]["files"]
    for role in INT8_ROLES:
        manifest["files"].pop(files.pop(f"{role}_int8", ""), None)
    fp32 = {role: files[role] for role in ("encoder", "dequantize", "decoder", "vocoder") if role in files}
    base = role_errors(folder, fp32, verify_audio)
    report: dict = {"tolerance": INT8_TOLERANCE, "slower": INT8_SLOWER, "fp32": base, "excerpts": len(verify_audio)}
    shipped: dict[str, float] = {}  # role -> relative growth of its error
    for role in [r for r in INT8_ROLES if r in fp32]:
        measure = "audio_mel_l1" if role == "vocoder" else "logmel_l1"
        target = folder / int8_name(role)
        report[role] = {"tried": []}
        for op_types in op_type_choices:
            quantize_int8(folder / fp32[role], target, tuple(op_types))
            errors = role_errors(folder, {**fp32, role: target.name}, verify_audio)
            growth = errors[measure] / base[measure] - 1
            report[role]["tried"].append({"op_types": list(op_types), **errors, "bytes": target.stat().st_size})
            if growth <= INT8_TOLERANCE and errors["seconds"][role] <= INT8_SLOWER * base["seconds"][role]:
                shipped[role] = growth
                report[role].update(op_types=list(op_types), bytes=target.stat().st_size)
                break
        report[role]["fp32_bytes"] = (folder / fp32[role]).stat().st_size
        if role not in shipped:
            target.unlink()
    while shipped:
        together = role_errors(folder, {**fp32, **{r: int8_name(r) for r in shipped}}, verify_audio)
        report["together"] = {"roles": sorted(shipped), **together}
        if all(together[m] <= base[m] * (1 + INT8_TOLERANCE) for m in base if m != "seconds"):
            break
        worst = max(shipped, key=shipped.get)
        del shipped[worst]
        (folder / int8_name(worst)).unlink()
    for role in [r for r in INT8_ROLES if r in fp32]:
        report[role]["shipped"] = role in shipped
        if role in shipped:
            name = int8_name(role)
            files[f"{role}_int8"] = name
            manifest["files"][name] = {"sha256": sha256(folder / name), "bytes": (folder / name).stat().st_size}
    manifest["int8"] = report
    write_json_atomic(folder / "manifest.json", manifest)
    return manifest


def main(argv: Optional[list[str]] = None) -> int:
    from cuesmith.engine.training.codec import corpus_audio

    parser = argparse.ArgumentParser(description="export, verify and package the mel codec")
    parser.add_argument("--checkpoint", type=Path, help="codec.pt of a fit (omit to extend the folder in --out)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--command", default="python -m cuesmith.engine.training.codec")
    parser.add_argument("--verify-excerpts", type=int, default=4)
    parser.add_argument("--vocoder", type=Path, help="a learned vocoder's last.pt (engine/training/vocoder.py)")
    parser.add_argument("--default-vocoder", choices=("griffin-lim", "vocos"),
                        help="the vocoder decoding uses unless asked (as bench_codec chose)")
    parser.add_argument("--int8", action="store_true", help="add the int8 graphs that hold quality")
    args = parser.parse_args(argv)
    audio = corpus_audio("valid", args.verify_excerpts)
    if args.checkpoint:
        manifest = package(args.checkpoint, args.out, args.command, audio)
        print(json.dumps(manifest["verification"]), json.dumps(manifest["files"]))
    if args.vocoder:
        manifest = add_vocoder(args.out, args.vocoder, audio)
        print(json.dumps(manifest["vocoder"]["verification"]))
    if args.default_vocoder:
        manifest = json.loads((args.out / "manifest.json").read_text())
        manifest["interface"]["vocoder"] = args.default_vocoder
        write_json_atomic(args.out / "manifest.json", manifest)
    if args.int8:
        print(json.dumps(add_int8(args.out, audio)["int8"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
