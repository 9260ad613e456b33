"""Package a trained V-MusProd run as a model folder: ONNX graphs + manifest.json.

    python -m cuesmith.exporters.package --run out/vmusprod/run --out models/vmusprod \
        --command "out/vmusprod/run/train_all.sh"

Takes `<run>/<stage>/best.pt` of the three stages, exports and verifies each
(`onnx_export`, `verify`), and writes the manifest: per file its sha256 and
size, per stage the net config, epochs, validation NLL history and the
verification figures, plus the training command, data split and seed.
Quality metrics are added later by `--metrics FILE` (a JSON object).

    python -m cuesmith.exporters.package --run out/m12/chordrun --out models/vmusprod --stages chord \
        --command "..."

re-exports only the named stages into an existing model folder and keeps the
rest of its manifest (the other stages, measurements, known limits); the
command is added to the manifest's. Either way a stage keeps the tuned
"sampling" of the manifest it replaces (benchmarks/tune_sampling.py wrote
it; a full re-package once dropped it).

    python -m cuesmith.exporters.package --out models/vmusprod --reexport-decoders

exports the folder's decoder step graphs again with the current exporter from
the weights the folder already holds (read back from its graphs,
training/warm.py: no checkpoint needed), verifies them against that net and
keeps everything else. Exporter changes that keep the math (issue 19: one
embedding Gather, no Transposes for a single token) reach shipped models so.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Optional

from cuesmith.engine.files import write_json_atomic
from cuesmith.engine.runtime.store import sha256

from .onnx_export import export_decoders, export_stage
from .verify import verify_net, verify_stage

STAGES = ("chord", "melody", "accompaniment")
READ_BACK_TOLERANCE = 1e-4  # max |Δlogit| between a folder's decoder graph and the net read back from it


def package(run: Path, out: Path, command: str, int8: bool = True, checkpoint: str = "best.pt",
            stages: tuple[str, ...] = STAGES) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "manifest.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    partial = set(stages) != set(STAGES)
    if partial and not previous:
        raise ValueError(f"{out}: no manifest.json to re-export {', '.join(stages)} into")
    entries = {}
    for stage in stages:
        entry = export_stage(run / stage / checkpoint, out, int8=int8)
        entry["verification"] = verify_stage(run / stage / checkpoint, out)
        entry["checkpoint"] = str(run / stage / checkpoint)  # not shipped; the benchmark's torch side loads it
        sampling = previous.get("stages", {}).get(stage, {}).get("sampling")
        if sampling is not None:
            entry["sampling"] = sampling
        entries[stage] = entry
    if partial:
        return _replace_stages(previous, entries, out, command)
    files = sorted({name for e in entries.values() for name in e["files"].values()})
    first = next(iter(entries.values()))["train_config"]
    manifest = {
        "family": "vmusprod",
        "id": f"vmusprod-{first['name']}-{time.strftime('%Y%m%d')}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "data": {"train": "POP909 001-700, transposed -5..+6 semitones on the fly",
                 "validation": "POP909 701-800, untransposed, fixed crops (opening and middle)"},
        "seed": first["seed"],
        "validation_nll": {s: e["best_valid_nll"] for s, e in entries.items()},
        "files": {name: {"sha256": sha256(out / name), "bytes": (out / name).stat().st_size} for name in files},
        "stages": entries,
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def _replace_stages(manifest: dict, entries: dict, out: Path, command: str) -> dict:
    """`manifest` with `entries` in place of its stages of those names, files and validation NLL updated."""
    manifest["stages"].update(entries)
    manifest["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    manifest["command"] = f"{manifest.get('command', '')}; then {command}".lstrip("; ")
    manifest["validation_nll"].update({s: e["best_valid_nll"] for s, e in entries.items()})
    names = sorted({name for e in manifest["stages"].values() for name in e["files"].values()})
    manifest["files"] = {name: {"sha256": sha256(out / name), "bytes": (out / name).stat().st_size} for name in names}
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def reexport_decoders(folder: Path, command: str, int8: bool = True) -> dict:
    """Every stage's decoder (and int8 decoder) in `folder` exported again from the folder's own weights."""
    from cuesmith.engine.training.warm import shipped_net

    manifest = json.loads((folder / "manifest.json").read_text())
    for stage, entry in manifest["stages"].items():
        net = shipped_net(folder, stage, entry["net_config"])
        held = verify_net(net, folder)["fp32"]["max_abs_logit_diff"]
        if held > READ_BACK_TOLERANCE:  # the weights read back are not the graphs' own: exporting would change the model
            raise ValueError(f"{folder}/{stage}: weights read back from the graphs differ from them "
                             f"(max |Δlogit| {held:.3g}); not re-exported")
        with tempfile.TemporaryDirectory(dir=folder) as staging:  # written whole, then moved in
            made = export_decoders(net, Path(staging), int8=int8 and "decoder_int8" in entry["files"])
            for role, path in made.items():
                os.replace(path, folder / path.name)
                entry["files"][role] = path.name
        entry["verification"] = verify_net(net, folder)
    return _replace_stages(manifest, {}, folder, command)


def add_metrics(folder: Path, metrics: dict) -> dict:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["metrics"] = metrics
    write_json_atomic(path, manifest)
    return manifest


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="training output folder (OUT of engine.training.train)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--command", default="", help="the command that trained the run (for the manifest)")
    parser.add_argument("--metrics", type=Path, help="add this JSON object as the manifest's metrics")
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                        help="re-export only these stages into OUT's existing manifest")
    parser.add_argument("--reexport-decoders", action="store_true",
                        help="export OUT's decoder graphs again from the weights OUT holds (no --run)")
    args = parser.parse_args(argv)
    if args.reexport_decoders:
        command = args.command or "python -m cuesmith.exporters.package --out " + str(args.out) + " --reexport-decoders"
        manifest = reexport_decoders(args.out, command, int8=not args.no_int8)
        print(json.dumps({s: e["verification"] for s, e in manifest["stages"].items()}, indent=1))
    if args.run:
        manifest = package(args.run, args.out, args.command, int8=not args.no_int8, stages=tuple(args.stages))
        print(json.dumps({s: e["verification"] for s, e in manifest["stages"].items()}, indent=1))
    if args.metrics:
        add_metrics(args.out, json.loads(args.metrics.read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
