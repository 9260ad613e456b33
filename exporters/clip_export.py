"""A user's CLIP checkpoint -> the VidMuse visual encoder graph `clip_vision.onnx`.

    python -m cuesmith.exporters.clip_export --checkpoint clip-vit-base-patch32/model.safetensors --out models/vidmuse

pixels (B, 3, 224, 224), CLIP-normalised -> hidden (B, 50, 768): the last hidden state per frame
(engine/nets/clip_vit.py). Checked against the torch tower on random pixels (max |delta|).
No CLIP weights ship with cuesmith; nothing is downloaded.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from cuesmith.engine.nets.clip_vit import ClipVision, load_vision_state

from .onnx_export import OPSET

FILE = "clip_vision.onnx"


def export_clip(net: ClipVision, out: Path) -> Path:
    size = net.config.image_size
    path = out / FILE
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        program = torch.onnx.export(net.eval(), (torch.randn(2, 3, size, size),), dynamo=True, opset_version=OPSET,
                                    input_names=["pixels"], output_names=["hidden"],
                                    dynamic_shapes=({0: torch.export.Dim("frames")},), optimize=True,
                                    external_data=False)
    program.save(str(path))
    return path


def verify_clip(net: ClipVision, path: Path) -> dict:
    from cuesmith.engine.runtime.sessions import open_session

    size = net.config.image_size
    pixels = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(pixels).numpy()
    got = open_session(path).run(None, {"pixels": pixels.numpy()})[0]
    return {"shape": list(got.shape), "max_abs_delta": float(np.abs(got - expected).max())}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a CLIP .safetensors or torch state dict")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    net = load_vision_state(args.checkpoint)
    print(json.dumps(verify_clip(net, export_clip(net, args.out))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
