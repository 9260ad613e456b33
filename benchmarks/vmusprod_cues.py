"""Cues from synthetic clips on the product path (clip -> analysis -> cut-locked plan -> V-MusProd),
written as pickled Songs with their bar and cut ticks, so one checkout's cues can be measured by another's
code (the "before" column of BENCHMARKS.md comes from the code on main).

    python benchmarks/vmusprod_cues.py OUT_DIR [--seeds 0 1 2]
"""
from __future__ import annotations

import pickle
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from media import Shot, make_video  # noqa: E402

CLIPS = {  # shots (duration s, colour mood, motion) of each clip; a hard cut between shots
    "four-shots": [Shot(4.0, "warm", 0.2), Shot(3.5, "cold", 0.8), Shot(5.0, "dusk", 0.4), Shot(4.5, "neon", 1.0)],
    "two-long": [Shot(9.0, "forest", 0.3), Shot(8.0, "warm", 0.7)],
    "quick-cuts": [Shot(2.2, "grey", 0.6), Shot(2.8, "neon", 1.1), Shot(2.0, "cold", 0.5), Shot(3.1, "warm", 0.9),
                   Shot(2.6, "dusk", 0.3)],
    "one-shot": [Shot(14.0, "dusk", 0.5)],
}


def clip_plans() -> dict:
    """Each clip's cut-locked plan (clip -> analysis -> plan), by clip name."""
    from cuesmith.engine import Engine
    from cuesmith.engine.planning import plan

    engine = Engine(use_cache=False)
    with tempfile.TemporaryDirectory() as tmp:
        return {name: plan(engine.analyze(make_video(Path(tmp) / f"{name}.mp4", shots, size=(160, 96), fps=24).path))
                for name, shots in CLIPS.items()}


def generate_cues(out: Path, seeds=(0, 1, 2), model_dir: Path = ROOT / "models" / "vmusprod",
                  int8: bool = False) -> list[Path]:
    from cuesmith.engine.pipelines.vmusprod import VMusProd

    model = VMusProd(model_dir, int8=int8) if int8 else VMusProd(model_dir)
    generate = getattr(model, "generate_stages", model.generate)  # (the family interface moved it)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, p in clip_plans().items():
        for seed in seeds:
            song = generate(p, variations=1, seed=seed).songs[0]
            path = out / f"{name}-{seed}.pkl"
            path.write_bytes(pickle.dumps({"clip": name, "seed": seed, "song": song, "bar_ticks": p.bar_ticks,
                                           "cut_ticks": p.cut_ticks, "key": (p.key.tonic, p.key.mode),
                                           "time_signatures": [(t.tick, t.numerator) for t in p.time_signatures]}))
            written.append(path)
    return written


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "vmusprod")
    args = parser.parse_args()
    for path in generate_cues(args.out, tuple(args.seeds), args.model):
        print(path)
