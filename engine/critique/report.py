"""critique.json (schema `cuesmith.critique`, version in `assess.SCHEMA_VERSION`) and critique.md."""
from __future__ import annotations

from pathlib import Path

from ..files import unused_path, write_bytes_atomic, write_json_atomic
from .moments import clock
from .prose import DIMENSIONS, TITLES, soundness_text


def markdown(critique) -> str:
    lines = [f"# Critique: {Path(critique.video).name} with {Path(critique.music).name or 'the music'}", "",
             f"Overall {critique.overall:.1f}/10" if critique.overall is not None else "Overall: not scored", ""]
    if critique.problems:
        lines += ["**Could not fully assess:**", *[f"- {p}" for p in critique.problems], ""]
    lines += ["| dimension | score | labels |", "| --- | --- | --- |"]
    for d in critique.dimensions:
        score = f"{d.score:.1f}" if d.score is not None else "not assessed"
        lines.append(f"| {TITLES[d.name]} | {score} | {'; '.join(f'{k}: {v}' for k, v in d.labels.items())} |")
    lines += ["", f"Key moments (HarmonySet form): {critique.harmonyset_key_moments}", ""]
    if critique.key_moments:
        lines += ["| time | kind | grade | nearest change |", "| --- | --- | --- | --- |"]
        for m in critique.key_moments:
            near = f"{m.offset:+.3f} s ({m.change})" if m.offset is not None else "none within the window"
            lines.append(f"| {clock(m.time)} | {m.kind} | {m.grade} | {near} |")
        lines.append("")
    for name in DIMENSIONS:
        lines += [f"## {TITLES[name]}", "", critique.prose.get(name, ""), ""]
    if critique.soundness:
        lines += ["## Is it music?", "", soundness_text(critique.soundness), ""]
    source = "a local language model" if critique.prose_source == "llm" else "the template"
    lines.append(f"_Prose by {source}." + (f" {critique.prose_note}_" if critique.prose_note else "_"))
    return "\n".join(lines) + "\n"


def write_critique(critique, out_dir: str | Path) -> tuple[Path, Path]:
    """critique.json and critique.md in `out_dir`; names already taken get -2, -3, ... (never replaced)."""
    out = Path(out_dir)
    json_path = write_json_atomic(unused_path(out / "critique.json"), critique.to_dict())
    md_path = write_bytes_atomic(unused_path(out / "critique.md"), markdown(critique).encode("utf-8"))
    return json_path, md_path
