"""MTM's DiT -> ONNX (condition encoder, one denoising step with the ControlFormer), verified
against torch, with a manifest; models/mtm/ when a trained model ships.

    condition.onnx  text (B, S, text_dim) -> memory (B, S, width)
    step.onnx       x (B, T, latent), t (B), memory (B, S, width), text_mask (B, S), start (B),
                    duration (B), style (B, style_dim), control (B, T, latent), control_gate (B) -> v
The sampler (engine/pipelines/mtm/sampler.py) and the codec's decoder run at run time.

    python -m cuesmith.exporters.mtm_export --checkpoint out/mtm/run/last.pt --items out/mtm/items --out models/mtm

exports a training checkpoint's EMA weights with a music library of `--library-size` training items
(spread over the retrieval partitions) in `<out>/library`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from cuesmith.engine.files import write_json_atomic
from cuesmith.engine.nets.mtm import MTMConfig, MTMDiT
from cuesmith.engine.runtime.store import sha256
from cuesmith.exporters.onnx_export import export_traced

FILES = {"condition": "condition.onnx", "step": "step.onnx"}
STEP_INPUTS = ["x", "t", "memory", "text_mask", "start", "duration", "style", "control", "control_gate"]


class ConditionGraph(nn.Module):
    def __init__(self, model: MTMDiT):
        super().__init__()
        self.model = model

    def forward(self, text):
        return self.model.encode_text(text)


class StepGraph(nn.Module):
    def __init__(self, model: MTMDiT):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        return self.model.step(*inputs)


def example_inputs(model: MTMDiT, batch: int = 2, frames: int = 12, tokens: int = 5, seed: int = 0) -> dict:
    c = model.config
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(batch, tokens, c.text_dim, generator=g)
    return {"text": text, "x": torch.randn(batch, frames, c.latent_dim, generator=g),
            "t": torch.rand(batch, generator=g), "text_mask": torch.ones(batch, tokens),
            "start": torch.zeros(batch), "duration": torch.full((batch,), 10.0),
            "style": torch.randn(batch, c.style_dim, generator=g),
            "control": torch.randn(batch, frames, c.latent_dim, generator=g), "control_gate": torch.ones(batch)}


def step_feeds(model: MTMDiT, example: dict) -> dict:
    with torch.no_grad():
        memory = model.encode_text(example["text"])
    return {name: (memory if name == "memory" else example[name]) for name in STEP_INPUTS}


def export(model: MTMDiT, out: Path) -> dict[str, Path]:
    model.eval()
    example = example_inputs(model)
    batch_axes = {name: {0: "batch"} for name in STEP_INPUTS}
    for name in ("x", "control"):
        batch_axes[name] = {0: "batch", 1: "frames"}
    batch_axes["memory"] = batch_axes["text_mask"] = {0: "batch", 1: "tokens"}
    graphs = {
        "condition": (ConditionGraph(model), (example["text"],), ["text"], ["memory"],
                      {"text": {0: "batch", 1: "tokens"}, "memory": {0: "batch", 1: "tokens"}}),
        "step": (StepGraph(model), tuple(step_feeds(model, example).values()), STEP_INPUTS, ["v"],
                 {**batch_axes, "v": {0: "batch", 1: "frames"}}),
    }
    return export_traced(graphs, out, FILES)


@torch.no_grad()
def verify(model: MTMDiT, folder: Path, seed: int = 1) -> dict:
    """Max |ONNX Runtime - torch| of both graphs, on inputs of other shapes than the export's."""
    from cuesmith.engine.runtime.sessions import open_session

    example = example_inputs(model, batch=3, frames=17, tokens=7, seed=seed)
    example["text_mask"][0, 4:] = 0.0
    example["control_gate"][1] = 0.0
    condition = open_session(folder / FILES["condition"])
    memory_o = condition.run(None, {"text": example["text"].numpy()})[0]
    feeds = step_feeds(model, example)
    step = open_session(folder / FILES["step"])
    v_o = step.run(None, {name: value.numpy() for name, value in feeds.items()})[0]
    return {"max_abs_memory": float(np.abs(memory_o - feeds["memory"].numpy()).max()),
            "max_abs_v": float(np.abs(v_o - model.step(*feeds.values()).numpy()).max())}


def package(model: MTMDiT, out: Path, command: str, text_encoder: dict, data: Optional[dict] = None,
            sampling: Optional[dict] = None) -> dict:
    """Export, verify and write manifest.json; `text_encoder` names the encoder the model was trained with,
    `sampling` the sampler's defaults ({"guidance": 3.0, "steps": 25})."""
    export(model, out)
    manifest = {
        "family": "mtm",
        "id": f"mtm-dit-{time.strftime('%Y%m%d')}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "data": data or {},
        "interface": {"latent_dim": model.config.latent_dim, "text_encoder": text_encoder,
                      "schedule": "cosine (alpha = cos(pi t/2)), v-objective"},
        "sampling": sampling or {"guidance": 3.0, "steps": 25},
        "verification": verify(model, out),
        "files": {name: {"sha256": sha256(out / name), "bytes": (out / name).stat().st_size}
                  for name in FILES.values()},
        "stages": {"mtm": {"files": dict(FILES), "net_config": model.config.to_dict()}},
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def library_sample(library, size: int):
    """Up to `size` items, taking each retrieval partition in turn so every partition is represented."""
    from cuesmith.engine.pipelines.mtm.library import Library

    groups: dict = {}
    for item in library.items:
        groups.setdefault(item.attributes, []).append(item)
    chosen, queues = [], [list(g) for g in groups.values()]
    while len(chosen) < size and any(queues):
        for queue in queues:
            if queue and len(chosen) < size:
                chosen.append(queue.pop(0))
    return Library(chosen, library.text)


def main(argv: Optional[list[str]] = None) -> int:
    from cuesmith.engine.pipelines.mtm.text import NAME
    from cuesmith.engine.training.mtm import load_items, text_encoder

    parser = argparse.ArgumentParser(description="export an MTM checkpoint (EMA weights) to ONNX with its library")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--items", type=Path, required=True, help="the training command's --items (train/ inside)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--library-size", type=int, default=32)
    args = parser.parse_args(argv)
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    config = MTMConfig(**state["net_config"])
    model = MTMDiT(config)
    model.load_state_dict(state["ema"])
    text = text_encoder(state["train_config"].get("text_encoder", NAME), config)
    library = library_sample(load_items(args.items / "train", text), args.library_size)
    history = state["history"]
    data = {"train": "corpus excerpts of POP909 001-700 (engine/training/mtm.py prepare)",
            "validation": "corpus excerpts of POP909 701-800",
            "training": {"steps": state["step"], "config": state["train_config"],
                         "last": history[-1] if history else None, "history": history[::max(1, len(history) // 20)]},
            "library_items": len(library.items)}
    command = "python -m cuesmith.exporters.mtm_export " + " ".join(sys.argv[1:] if argv is None else argv)
    manifest = package(model.eval(), args.out, command, text.spec(), data)
    library.save(args.out / "library")
    print(json.dumps(manifest["verification"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
