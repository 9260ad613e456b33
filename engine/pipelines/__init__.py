"""The model families, as plug-ins (in the way OpenTimelineIO registers its adapters).

`FAMILIES` names each family and the module that holds it. A family module
exposes

    load(model_dir: Path | None, int8: bool | None = None) -> model   (None: the model's own choice)
    model.generate(plan, inputs, n, seed, sampling, progress) -> list[Music]
    model.info: dict      # "family", "folder", "graphs", "manifest_id": what result.json reports

where `inputs` is a dict (today {"analysis": VideoAnalysis}) and each `Music`
(music/music.py) holds a Song, audio stems, or both. Nothing else in the engine
names a family: a new one is a folder under pipelines/ and a row here.

Extra families (a test's, a user's experiment) come from the environment:
CUESMITH_FAMILIES="name=module.path,other=/abs/path/family.py" (a dotted import
path, or a .py file loaded by its path). They reach a `cuesmith serve` process
the same way.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Optional

from ..errors import CuesmithError

FAMILIES: dict[str, str] = {
    "vmusprod": "cuesmith.engine.pipelines.vmusprod",
    "vidmuse": "cuesmith.engine.pipelines.vidmuse",
    "mtm": "cuesmith.engine.pipelines.mtm",
}
EXTRA_FAMILIES_VARIABLE = "CUESMITH_FAMILIES"


def families() -> dict[str, str]:
    """Family name -> module: the table, then those named in $CUESMITH_FAMILIES."""
    table = dict(FAMILIES)
    for entry in os.environ.get(EXTRA_FAMILIES_VARIABLE, "").split(","):
        name, _, module = entry.partition("=")
        if name.strip() and module.strip():
            table[name.strip()] = module.strip()
    return table


def family_module(name: str) -> ModuleType:
    """The module of family `name` (imported on first use)."""
    table = families()
    if name not in table:
        raise CuesmithError(f"unknown model family {name!r} (expected {', '.join(table)})")
    where = table[name]
    if not where.endswith(".py"):
        return importlib.import_module(where)
    module_name = f"cuesmith_family_{name}"
    spec = importlib.util.spec_from_file_location(module_name, Path(where))
    if spec is None or not Path(where).is_file():
        raise CuesmithError(f"family {name!r}: no such module file", where)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_family(name: str, model_dir=None, int8: Optional[bool] = None):
    """A loaded model of family `name`, ready to `generate`."""
    return family_module(name).load(model_dir, int8=int8)
