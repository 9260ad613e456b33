"""Per-stage sampling defaults of V-MusProd (temperature, top-p), tuned on validation songs 701-800.

Cues come from the product path: the plans of the synthetic clips of benchmarks/vmusprod_cues.py (clip ->
analysis -> cut-locked plan), a few seeds, each batch of variations. A setting's score is the gap of the
cues' statistics (issue 12's table) to real 12-bar excerpts of validation songs 701-800 from the melody's
entry, each gap in units of its tolerance (GAP_SCALES); settings that break a must-hold are not chosen.
Coordinate descent: one stage at a time over GRID, the others at their current values; the before/after
table is measured again on other seeds (CHECK_SEEDS), not those tuned on. The result goes into
models/vmusprod/manifest.json (stages.<stage>.sampling, and "sampling_tuning": how).

    nice -n 10 python benchmarks/tune_sampling.py [--seeds 0 1 2 3 4 5] [--variations 2] [--no-write] [--append]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_vmusprod import MODEL, _cell, _played, real_excerpts, summarise  # noqa: E402
from vmusprod_cues import clip_plans  # noqa: E402

TITLE = "V-MusProd per-stage sampling tuned on POP909 701-800 (issue 12, item 6)"
GRID = [(t, p) for t in (0.8, 0.9, 1.0, 1.1) for p in (0.9, 0.95, 1.0)]
# Gap units: issue 12's tolerances (PCE, IOI: Music Transformer's gaps; leaps: the must-hold bound);
# rhythm recurrence: 10 points.
GAP_SCALES = {"PCE": 0.19, "IOI": 0.09, "leaps": 0.10, "melody_recurrence": 0.10, "accompaniment_recurrence": 0.10}
MUST_HOLD = {"melody_bars": 0.85, "melody_recurrence": 0.50, "accompaniment_recurrence": 0.60}  # at least
MAX_LEAPS = 0.10
SEEDS = tuple(range(6))
CHECK_SEEDS = tuple(range(100, 106))


def cue_items(model, plans: dict, seeds, variations: int) -> list[tuple]:
    from cuesmith.engine.music.musicality import bar_spans

    items = []
    for p in plans.values():
        end = p.bar_ticks[-1] + p.empty_song().time_signature_at(p.bar_ticks[-1]).ticks_per_bar
        for seed in seeds:
            for song in model.generate_stages(p, variations=variations, seed=seed).songs:
                items.append((_played(song), bar_spans(song, p.bar_ticks, end), p.cut_ticks))
    return items


def score(cues: dict, real: dict) -> float:
    return float(sum(abs(cues[k] - real[k]) / scale for k, scale in GAP_SCALES.items()))


def holds(cues: dict) -> bool:
    return all(cues[k] >= v for k, v in MUST_HOLD.items()) and cues["leaps"] <= MAX_LEAPS


def tune(seeds=SEEDS, variations: int = 2, write: bool = True) -> list[str]:
    from cuesmith.engine.pipelines.vmusprod import VMusProd
    from cuesmith.engine.runtime.sampling import Sampling

    began = time.perf_counter()
    real = summarise([(s, spans, None) for s, spans in real_excerpts()])
    plans = clip_plans()
    model = VMusProd(MODEL)
    start = dict(model.sampling)
    seen: dict[tuple, dict] = {}

    def evaluate(on=seeds) -> dict:
        key = (on, *((s, model.sampling[s].temperature, model.sampling[s].top_p) for s in sorted(model.sampling)))
        if key not in seen:
            cues = summarise(cue_items(model, plans, on, variations))
            cues["score"], cues["holds"] = score(cues, real), holds(cues)
            seen[key] = cues
            print(f"  {_setting(model.sampling)}: score {cues['score']:.2f}{'' if cues['holds'] else ' (breaks a must-hold)'}"
                  f" ({time.perf_counter() - began:.0f} s)", flush=True)
        return seen[key]

    evaluate()
    rows = []
    for stage in ("chord", "melody", "accompaniment"):
        results = {}
        for temperature, top_p in GRID:
            model.sampling[stage] = Sampling(temperature, 0, top_p)
            results[(temperature, top_p)] = evaluate()
            rows.append(_row(stage, temperature, top_p, results[(temperature, top_p)]))
        current = (start[stage].temperature, start[stage].top_p)
        eligible = [k for k, r in results.items() if r["holds"]] or [current]
        best = min(eligible, key=lambda k: results[k]["score"] if k in results else float("inf"))
        model.sampling[stage] = Sampling(best[0], 0, best[1])
    tuned = dict(model.sampling)
    after = evaluate(CHECK_SEEDS)
    model.sampling = dict(start)
    before = evaluate(CHECK_SEEDS)
    model.sampling = tuned
    seconds = time.perf_counter() - began
    note = (f"benchmarks/tune_sampling.py {time.strftime('%Y-%m-%d')}: coordinate descent (chord, melody, "
            f"accompaniment) over temperature x top-p {GRID}; cues from the plans of {len(plans)} synthetic clips "
            f"(benchmarks/vmusprod_cues.py, the product path), seeds {list(seeds)}, {variations} variations; score: "
            f"gaps to real 12-bar excerpts of POP909 701-800 from the melody's entry, in units {GAP_SCALES}; "
            f"must-holds kept; before/after on seeds {list(CHECK_SEEDS)}; {seconds:.0f} s")
    if write:
        record(model.sampling, note, before, after, real)
    header = "| stage | temperature | top-p | " + " | ".join(GAP_SCALES) + " | melody bars | score |"
    table = ["| | real | before | after (held-out seeds) |", "| --- | --- | --- | --- |"]
    for k in ("melody_bars",) + tuple(GAP_SCALES) + ("mean_interval", "score"):
        table.append(f"| {k} | {_cell(real.get(k))} | {_cell(before[k])} | {_cell(after[k])} |")
    return [note, "", f"before: {_setting(start)}; after: {_setting(model.sampling)}", "", header,
            "| --- |" + " --- |" * (len(GAP_SCALES) + 4), *rows, "", *table]


def _setting(sampling: dict) -> str:
    return ", ".join(f"{s} T {v.temperature} p {v.top_p}" for s, v in sampling.items())


def _row(stage: str, temperature: float, top_p: float, cues: dict) -> str:
    mark = "" if cues["holds"] else " (x)"
    return (f"| {stage} | {temperature} | {top_p} | " + " | ".join(_cell(cues[k]) for k in GAP_SCALES)
            + f" | {_cell(cues['melody_bars'])} | {cues['score']:.2f}{mark} |")


def record(sampling: dict, note: str, before: dict, after: dict, real: dict) -> None:
    import json

    from cuesmith.engine.files import write_json_atomic

    path = MODEL / "manifest.json"
    manifest = json.loads(path.read_text())
    for stage, s in sampling.items():
        manifest["stages"][stage]["sampling"] = {"temperature": s.temperature, "top_p": s.top_p,
                                                 "tuned": "sampling_tuning"}
    keys = ("melody_bars",) + tuple(GAP_SCALES) + ("mean_interval", "score")
    manifest["sampling_tuning"] = {"how": note, **{name: {k: round(float(v[k]), 4) for k in keys if k in v}
                                                   for name, v in (("real", real), ("before", before),
                                                                   ("after", after))}}
    write_json_atomic(path, manifest)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--variations", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print the table, leave the manifest")
    parser.add_argument("--append", action="store_true", help="append the table to BENCHMARKS.md")
    args = parser.parse_args()
    section = "\n".join(tune(tuple(args.seeds), args.variations, not args.no_write))
    print(section)
    if args.append:
        from run import append

        append(section, TITLE)
