"""Stems of long cues: peak memory and time of `render_stems` (synthesised, measured and written a chunk at a
time) against `render_audio` (the same render held whole in memory, as the score path did before issue 19),
each in a fresh interpreter, on POP909 song 001 once (194 s) and four times over (776 s).

    python benchmarks/run.py stems_memory
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

TITLE = "Stems of long cues: peak RSS, chunked vs whole"
SONG = Path("/work/shared/data/pop909/001/001.mid")
COPIES = (1, 4)

CODE = """
import json, resource, sys, time
from dataclasses import replace
from cuesmith.engine.music.midi_io import read_midi
from cuesmith.engine.music import render

song = read_midi({song!r})
end, parts = song.end_tick, song.parts
copies = {copies}
song.parts = [replace(p, notes=[replace(n, start=n.start + k * end, end=n.end + k * end)
                                for k in range(copies) for n in p.notes]) for p in parts]
song.tempos = song.tempos[:1]  # one tempo, so the copies line up
seconds = song.duration_seconds
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
wall, cpu = time.perf_counter(), time.process_time()
if {whole}:
    audio = render.render_audio(song, workers=1)
    render.write_stems(audio.stems, audio.mix, audio.sample_rate, {out!r}, workers=1)
else:
    render.render_stems(song, {out!r}, workers=1)
print(json.dumps({{"seconds": seconds, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "before": before, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def measure(copies: int, whole: bool, out: Path) -> dict:
    code = CODE.format(song=str(SONG), copies=copies, whole=whole, out=str(out))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> str:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for copies in COPIES:
            for whole in (True, False):
                r = measure(copies, whole, Path(tmp) / f"{copies}-{whole}")
                rows.append(f"| {r['seconds']:.0f} | {'whole (render_audio + write_stems)' if whole else 'chunked (render_stems)'} "
                            f"| {r['wall']:.1f} | {r['cpu']:.1f} | {r['before']:.0f} | {r['peak']:.0f} |")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "\n".join([
        "POP909 001 (3 parts), once and four times over (one tempo); 48 kHz stereo 24-bit mix + 3 stems, one process "
        f"(workers=1). Peak RSS: ru_maxrss of the interpreter (after imports and reading the MIDI: 'before'). "
        f"Load average at the end: {load} (2 cores, shared).", "",
        "| music s | render | wall s | CPU s | RSS before MiB | peak RSS MiB |",
        "| --- | --- | --- | --- | --- | --- |", *rows])


if __name__ == "__main__":
    print(run())
