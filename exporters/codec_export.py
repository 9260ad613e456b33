"""The mel codec -> ONNX, verified against torch, packaged as models/codec/.

    encoder.onnx     audio (B, N) float32, N a multiple of 640 -> latent (B, T, D), codes (B, 4, T) int64
    dequantize.onnx  codes (B, 4, T) int64 (2048 = special id, adds nothing) -> latent (B, T, D)
    decoder.onnx     latent (B, T, D) -> logmel (B, 128, 2T)
The vocoder (Griffin-Lim) runs in numpy at run time (engine/codec/vocoder.py).

    python -m cuesmith.exporters.codec_export --checkpoint RUN/codec.pt --out models/codec --command "..."
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
from cuesmith.engine.nets.codec import MelCodec, pad_to_tokens
from cuesmith.engine.runtime.store import sha256
from cuesmith.exporters.onnx_export import export_traced
from cuesmith.engine.training.codec import load

FILES = {"encoder": "encoder.onnx", "dequantize": "dequantize.onnx", "decoder": "decoder.onnx"}


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


def main(argv: Optional[list[str]] = None) -> int:
    from cuesmith.engine.training.codec import corpus_audio

    parser = argparse.ArgumentParser(description="export, verify and package the mel codec")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--command", default="python -m cuesmith.engine.training.codec")
    parser.add_argument("--verify-excerpts", type=int, default=4)
    args = parser.parse_args(argv)
    manifest = package(args.checkpoint, args.out, args.command, corpus_audio("valid", args.verify_excerpts))
    print(json.dumps(manifest["verification"]), json.dumps(manifest["files"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
