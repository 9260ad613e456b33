"""The model store: a model is a folder with `manifest.json` and its ONNX files.

Looked up in order: $CUESMITH_MODELS/<family>, the user folder
(platformdirs user_data_dir("cuesmith")/models/<family>: user-provided
weights win), then the models shipped in the package (models/<family>).
A missing manifest or graph is a CuesmithError naming the model: no
rule-based stand-in takes a model's place.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from platformdirs import user_data_dir

from ..errors import CuesmithError

SHIPPED = Path(__file__).resolve().parent.parent.parent / "models"


@dataclass(frozen=True)
class ModelFolder:
    family: str
    path: Path
    manifest: dict

    def file(self, stage: str, role: str) -> Path:
        """The ONNX file of `stage`'s `role` ("encoder", "decoder", "decoder_int8", "decoder_in_place", ...),
        checked to exist."""
        entry = self.manifest.get("stages", {}).get(stage)
        name = None if entry is None else entry.get("files", {}).get(role)
        path = None if name is None else self.path / name
        if path is None or not path.is_file():
            shown = path or self.path / f"{stage}.{role}.onnx"
            raise CuesmithError(f"model {self.family}/{stage} is missing its {role} graph", shown,
                                hint="reinstall cuesmith or export the model (python -m cuesmith.exporters.onnx_export)")
        return path

    def has(self, stage: str, role: str) -> bool:
        """Whether the manifest names a `role` graph for `stage` (`file` checks that it exists)."""
        return role in self.manifest.get("stages", {}).get(stage, {}).get("files", {})

    def stage_config(self, stage: str) -> dict:
        return self.manifest["stages"][stage]["net_config"]

    def info(self, graphs: dict) -> dict:
        """What a result names of the model that made it: family, folder, graphs used, manifest id."""
        return {"family": self.family, "folder": str(self.path), "graphs": graphs,
                "manifest_id": self.manifest.get("id", "")}


def search_path(family: str) -> list[Path]:
    folders = []
    if os.environ.get("CUESMITH_MODELS"):
        folders.append(Path(os.environ["CUESMITH_MODELS"]).expanduser() / family)
    folders.append(Path(user_data_dir("cuesmith")) / "models" / family)
    folders.append(SHIPPED / family)
    return folders


def find_model(family: str, folder: Optional[Path] = None) -> ModelFolder:
    """The first folder of `family` with a manifest; a CuesmithError naming the model if none."""
    candidates = [folder] if folder is not None else search_path(family)
    for path in candidates:
        manifest = path / "manifest.json"
        if manifest.is_file():
            try:
                return ModelFolder(family, path, json.loads(manifest.read_text()))
            except (OSError, ValueError) as error:
                raise CuesmithError(f"model {family}: unreadable manifest ({error})", manifest) from None
    searched = ", ".join(str(p) for p in candidates)
    raise CuesmithError(f"model {family} is missing: no manifest.json in {searched}",
                        hint="reinstall cuesmith or set CUESMITH_MODELS to a folder holding it")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
