"""`make bench`: run every benchmarks/bench_*.py and append its figures to BENCHMARKS.md.

Each benchmark module has `run() -> str`, returning a Markdown section
(a table with its own baseline measured in the same run and the ratio).
`python benchmarks/run.py video` runs only the modules whose name contains "video".
"""
from __future__ import annotations

import datetime
import importlib
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]


def machine() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def append(section: str, title: str) -> None:
    out = ROOT / "BENCHMARKS.md"
    if not out.exists():
        out.write_text("# Benchmarks\n\nAppended by `make bench`; newest last. Each section names its baseline.\n")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    with out.open("a", encoding="utf-8") as f:
        f.write(f"\n## {title} — {stamp} — {machine()}\n\n{section.strip()}\n")


def main(argv: list[str]) -> int:
    wanted = argv[1:]
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    for name in modules:
        if wanted and not any(w in name for w in wanted):
            continue
        module = importlib.import_module(name)
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        section = module.run()
        print(section, flush=True)
        append(section, getattr(module, "TITLE", name))
        print(f"({time.perf_counter() - started:.0f} s)\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
