"""Long timelines: stems rendered a chunk at a time, as they would be whole; no SciPy or librosa on the
score path; a 10-minute clip scored within the memory budget (slow tier)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from cuesmith.engine.critique.moments import peaks_and_prominences
from cuesmith.engine.music import render
from cuesmith.engine.music.score import Note, Part, Song, TempoChange

HEAVY = ("scipy", "librosa", "pyloudnorm", "torch", "sklearn", "numba", "pretty_midi")
RSS_BUDGET_MIB = 600  # issue 19: a 10-minute clip with stems


def heavy_modules(code: str) -> list[str]:
    """The heavy packages (HEAVY) a fresh interpreter has imported after running `code`."""
    probe = code + f"\nimport sys, json; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_cli_and_the_score_path_import_nothing_heavy():
    modules = ["cuesmith.engine.cli", "cuesmith.engine.api", "cuesmith.engine.pipelines.job",
               "cuesmith.engine.pipelines.vmusprod", "cuesmith.engine.video.analysis", "cuesmith.engine.critique",
               "cuesmith.engine.critique.moments", "cuesmith.engine.music.render", "cuesmith.engine.music.audio",
               "cuesmith.engine.music.midi_io", "cuesmith.engine.progress"]
    assert heavy_modules("\n".join(f"import {m}" for m in modules)) == []


def test_rendering_stems_imports_nothing_heavy(tmp_path):
    code = ("from cuesmith.engine.music.render import render_stems\n"
            "from cuesmith.engine.music.score import Note, Part, Song\n"
            f"render_stems(Song(parts=[Part('a', [Note(0, 960, 60)])]), {str(tmp_path)!r})")
    assert heavy_modules(code) == []
    assert (tmp_path / "mix.wav").is_file()


def long_song() -> Song:
    """8 s: several chunks of a few thousand frames, two tempos, a kit and sustained chords."""
    chords = Part("Piano", [Note(t, t + 900, p, 70) for t in range(0, 7680, 960) for p in (48, 55, 60, 64)])
    lead = Part("Lead", [Note(t, t + 200, 72 + (t // 240) % 7, 100) for t in range(0, 7680, 240)], program=80)
    kit = Part("Kit", [Note(t, t + 60, 36 if t % 960 == 0 else 42, 120) for t in range(0, 7680, 240)],
               channel=9, is_drum=True)
    return Song(parts=[chords, lead, kit], tempos=[TempoChange(0, 110.0), TempoChange(3840, 140.0)])


def test_stems_rendered_in_chunks_are_the_stems_rendered_whole(tmp_path, monkeypatch):
    song = long_song()
    frames = render.render_length(song, render.SAMPLE_RATE)
    monkeypatch.setattr(render, "CHUNK_FRAMES", 64 * (frames // 64 + 1))  # one chunk: the song at once
    whole = render.render_stems(song, tmp_path / "whole", workers=1)
    # chunks on the 64-frame grid, the last one shorter than the 10 ms fade-out, so the fade straddles two
    chunk = next(c for c in range(64 * 40, 64 * 200, 64) if 0 < frames % c < int(0.01 * render.SAMPLE_RATE))
    monkeypatch.setattr(render, "CHUNK_FRAMES", chunk)
    chunked = render.render_stems(song, tmp_path / "chunked", workers=1)
    assert list(chunked) == list(whole) == ["mix", "Piano", "Lead", "Kit"]
    lsb = 2.0 ** -23
    for name in whole:
        a, rate = soundfile.read(whole[name], dtype="float64")
        b, _ = soundfile.read(chunked[name], dtype="float64")
        assert rate == 48_000 and soundfile.info(chunked[name]).subtype == "PCM_24" and a.shape == b.shape
        assert np.sqrt(np.mean(a ** 2)) > 1e-3
        # the same samples up to the loudness gain's float rounding: at most one 24-bit step apart
        assert np.max(np.abs(a - b)) <= lsb * 1.01, name
        assert np.mean(a != b) < 0.01, name
    assert sorted(p.name for p in (tmp_path / "chunked").iterdir()) == ["Kit.wav", "Lead.wav", "Piano.wav", "mix.wav"]


def test_chunked_synthesis_is_one_render_call_per_event(monkeypatch):
    """The chunks of a part are what TinySoundFont renders in one pass (the old whole-buffer synthesis)."""
    song = long_song()
    synth = render.load_synth(render.default_soundfont(), render.SAMPLE_RATE)
    frames = render.render_length(song, render.SAMPLE_RATE)
    part = song.parts[1]
    chunk = next(c for c in range(64 * 40, 64 * 2000, 64) if 0 < frames % c < int(0.01 * render.SAMPLE_RATE))
    monkeypatch.setattr(render, "CHUNK_FRAMES", chunk)  # the fade-out straddles the last two chunks
    reference = np.zeros((frames, 2), dtype=np.float32)
    render._select_program(synth, 0, part)
    position, raw = 0, memoryview(reference).cast("B")
    for frame, is_on, pitch, velocity in render._note_events(part, song, render.SAMPLE_RATE, frames):
        if frame > position:
            synth.generate_simple(frame - position, raw[position * 8:frame * 8])
            position = frame
        synth.noteon(0, pitch, velocity) if is_on else synth.noteoff(0, pitch)
    synth.generate_simple(frames - position, raw[position * 8:])
    n = int(0.01 * render.SAMPLE_RATE)
    reference[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)[:, None]
    render._silence(synth)
    chunks = [chunk.copy() for _, chunk in render.synthesize_chunks(synth, part, song, frames, render.SAMPLE_RATE)]
    assert len(chunks) > 3
    assert np.array_equal(np.concatenate(chunks), reference)


def test_k_weighting_is_the_iir_filter_across_chunks():
    from scipy.signal import lfilter

    rng = np.random.default_rng(5)
    for rate in (48_000, 44_100, 22_050):
        b, a = render.k_weighting_coefficients(rate)
        x = rng.standard_normal(rate * 3 + 77).astype(np.float32)
        expected = lfilter(b, a, x.astype(np.float64))
        weighting = render.KWeighting(rate)
        pieces = [weighting(x[s:e]) for s, e in [(0, 1), (1, 1000), (1000, 70_000), (70_000, len(x))]]
        got = np.concatenate(pieces)
        assert np.max(np.abs(got - expected)) < 1e-5 * np.max(np.abs(expected))


def test_motion_peaks_are_scipys_find_peaks():
    from scipy.signal import find_peaks

    rng = np.random.default_rng(11)
    for trial in range(200):
        n = int(rng.integers(3, 300))
        if trial % 2:
            x = np.round(rng.random(n) * 4) / 4  # plateaus and ties
        else:
            x = np.convolve(rng.random(n + 8), np.ones(9) / 9, "valid")
        peaks, prominences = peaks_and_prominences(x, 0.3)
        expected, props = find_peaks(x, height=0.3, prominence=(0, None))
        assert peaks.tolist() == expected.tolist()
        assert np.allclose(prominences, props["prominences"])


# -- slow: a 10-minute clip ------------------------------------------------------------------------------------

def ten_minute_clip(path: Path) -> Path:
    """10 minutes at 96x54 and 6 fps, a hard cut every 20 s: cheap to make and to decode."""
    from media import MOODS, Shot, make_video

    moods = list(MOODS)
    shots = [Shot(20.0, moods[i % len(moods)], 0.1 + 0.05 * (i % 7), shapes=2) for i in range(30)]
    make_video(path, shots, fps=6, size=(96, 54))
    return path


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc (Linux)")
def test_a_ten_minute_clip_scores_with_stems_within_the_memory_budget(tmp_path):
    from vmusprod_helpers import shipped_model

    shipped_model()
    clip = ten_minute_clip(tmp_path / "long.mp4")
    out = tmp_path / "out"
    code = ("import sys, json\n"
            "from cuesmith.engine.cli import main\n"
            f"code = main(['score', {str(clip)!r}, '--out', {str(out)!r}])\n"
            # its own high-water mark: ru_maxrss would count what pytest held when it forked this process
            "peak = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & " + repr(set(HEAVY)) + ")\n"
            "print(json.dumps({'code': code, 'peak_mib': peak, 'heavy': heavy}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    result = json.loads((out / "result.json").read_text())
    assert report["code"] == 0 and result["duration"] > 590
    mix = Path(result["placement"]["audio"]["mix"])
    assert soundfile.info(mix).duration > 590 and soundfile.info(mix).subtype == "PCM_24"
    assert len(result["placement"]["audio"]["stems"]) >= 2
    assert not list(out.rglob(".cuesmith-render-*"))  # the scratch files are gone
    assert report["heavy"] == []
    print(f"peak RSS of `cuesmith score` on 10 minutes with stems: {report['peak_mib']:.0f} MiB")
    assert report["peak_mib"] < RSS_BUDGET_MIB
