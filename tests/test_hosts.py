"""The host scripts at their seams: each runs outside its editor against a fake of the editor's API
(tests/host_fakes/), the real `cuesmith send` / OSC / WebSocket and the REAL engine (`cuesmith serve` on
free ports); the tests check what lands on the fake timeline (record frames, markers) against the job's own
result.json and critique.json. Everything runs from a `cuesmith hosts install --dest` copy, as shipped."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge_helpers import ROOT, running_engine
from media import Shot, make_video

FAKES = Path(__file__).resolve().parent / "host_fakes"
CLI = ROOT / ".venv" / "bin" / "cuesmith"
FPS = 30
START_FRAME = 108000  # 01:00:00:00
# Two clips with a gap between them on the timeline: A uses 0.5-2.5 s of a.mp4 at record 0-2 s,
# B uses 0-1.5 s of b.mp4 at record 3-4.5 s. In the score they play back to back (3.5 s).
CLIPS = [{"file": "a.mp4", "start": 0.5, "end": 2.5, "record": 0.0},
         {"file": "b.mp4", "start": 0.0, "end": 1.5, "record": 3.0}]


def timeline_seconds(score_seconds: float) -> float:
    """Where a moment of the score belongs on the timeline (the mapping each script must make)."""
    a, b = CLIPS
    length_a = a["end"] - a["start"]
    return a["record"] + score_seconds if score_seconds < length_a else b["record"] + score_seconds - length_a


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    make_video(folder / "a.mp4", [Shot(1.5, "warm", 0.3), Shot(1.5, "cold", 0.8)], fps=FPS, size=(160, 90))
    make_video(folder / "b.mp4", [Shot(2.0, "forest", 0.5)], fps=FPS, size=(160, 90))
    return folder


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with running_engine(tmp_path_factory.mktemp("engine")) as running:
        yield running


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = tmp_path_factory.mktemp("installed")
    done = subprocess.run([str(CLI), "hosts", "install", "--dest", str(dest)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return dest


def engine_env(engine, **extra) -> dict:
    env = {**os.environ, "CUESMITH_HOST": engine.host, "CUESMITH_PORT": str(engine.port), **extra}
    env.pop("CUESMITH_TOKEN", None)
    return env


def job_files(imported_wav: str) -> tuple[dict, dict]:
    """result.json and critique.json of the job that wrote this stem (<job>/stems/<name>.wav)."""
    job = Path(imported_wav).parent.parent
    result = json.loads((job / "result.json").read_text())
    return result, json.loads(Path(result["critique"]["json"]).read_text())


def expected_markers(critique: dict) -> list[tuple[int, str]]:
    """(frames from the timeline start, grade) of every key moment."""
    return [(round(timeline_seconds(m["time"]) * FPS), m["grade"]) for m in critique["key_moments"]]


# --- DaVinci Resolve -----------------------------------------------------------------------------

def resolve_scene(media: Path, selected=None) -> dict:
    tracks = [[{"id": f"v{i}", "name": c["file"], "path": str(media / c["file"]),
                "start": START_FRAME + round(c["record"] * FPS), "duration": round((c["end"] - c["start"]) * FPS),
                "source_start": round(c["start"] * FPS), "left_offset": round(c["start"] * FPS), "clip_fps": FPS}
               for i, c in enumerate(CLIPS)]]
    scene = {"fps": FPS, "start_frame": START_FRAME, "audio_tracks": 1, "tracks": tracks}
    if selected is not None:
        scene["selected"] = selected
    return scene


def check_resolve_calls(calls: list) -> None:
    imports = [c[1][0] for c in calls if c[0] == "ImportMedia"]
    appends = [c[1][0] for c in calls if c[0] == "AppendToTimeline"]
    assert imports and len(appends) == len(imports) == sum(c[0] == "AddTrack" for c in calls)
    result, critique = job_files(imports[0])
    stems = {p for n, p in result["variations"][0]["stems"].items() if n != "mix"}
    assert set(imports) == stems  # every stem, not the mix
    assert [a["recordFrame"] for a in appends] == [START_FRAME] * len(appends)
    assert [a["trackIndex"] for a in appends] == list(range(2, 2 + len(appends)))  # new tracks after A1
    assert all(a["mediaType"] == 2 for a in appends)
    markers = [(c[1], c[2], c[4]) for c in calls if c[0] == "AddMarker"]
    assert critique["key_moments"], "the generated clips have cuts, so the critique has key moments"
    colours = {"A": "Green", "B": "Yellow", "C": "Red"}
    assert [(f, colour) for f, colour, _ in markers] == [(f, colours[g]) for f, g in expected_markers(critique)]
    assert all(note.split(" at ")[0] in ("cut", "transition", "motion peak") for _, _, note in markers)


def request_clips(result: dict) -> list[tuple[str, float, float]]:
    return [(Path(c["video"]).name, c["start"], c["end"]) for c in result["request"]["clips"]]


def test_resolve_python_scores_the_timeline_and_places_the_result(engine, media, installed, tmp_path):
    scene, log = tmp_path / "scene.json", tmp_path / "calls.json"
    scene.write_text(json.dumps(resolve_scene(media)))  # Resolve < 21.0.4: no selection, all clips
    env = engine_env(engine, CUESMITH_FAKE_SCENE=str(scene), CUESMITH_FAKE_LOG=str(log), PYTHONPATH=str(FAKES))
    done = subprocess.run([sys.executable, str(installed / "resolve" / "cuesmith_score.py")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "accepted" in done.stdout and "%" in done.stdout  # progress shown in the console
    calls = json.loads(log.read_text())
    check_resolve_calls(calls)
    result, _ = job_files([c for c in calls if c[0] == "ImportMedia"][0][1][0])
    assert request_clips(result) == [(c["file"], c["start"], c["end"]) for c in CLIPS]


def run_lua(fake: str, scene: dict, script: Path, env: dict, tmp_path: Path) -> tuple[list, str]:
    scene_path, log = tmp_path / "scene.json", tmp_path / "calls.json"
    scene_path.write_text(json.dumps(scene))
    done = subprocess.run(["lua5.4", str(FAKES / fake), str(scene_path), str(log), str(script)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    logged = json.loads(log.read_text())
    assert "failed" not in logged, done.stdout + logged["failed"]
    return logged["calls"], done.stdout


def test_resolve_lua_scores_the_selection_through_cuesmith_send(engine, media, installed, tmp_path):
    scene = resolve_scene(media, selected=["v0", "v1"])  # Resolve 21.0.4+: the selection
    calls, console = run_lua("resolve_fake.lua", scene, installed / "resolve" / "cuesmith_score_lua.lua",
                             engine_env(engine), tmp_path)
    assert "accepted" in console and "%" in console
    check_resolve_calls(calls)
    result, _ = job_files([c for c in calls if c[0] == "ImportMedia"][0][1][0])
    assert request_clips(result) == [(c["file"], c["start"], c["end"]) for c in CLIPS]


# --- REAPER --------------------------------------------------------------------------------------

def reaper_scene(media: Path, **extra) -> dict:
    """Clip A at 10 s of the project, B at 13 s (a 1 s gap), and a selected audio item that is not video."""
    items = [{"path": str(media / c["file"]), "type": "VIDEO", "position": 10.0 + c["record"],
              "length": c["end"] - c["start"], "offset": c["start"], "rate": 1.0, "selected": True} for c in CLIPS]
    items.append({"path": str(media / "voice.wav"), "type": "WAVE", "position": 10.0, "length": 4.0,
                  "selected": True})
    return {"items": items, "tracks": 2, **extra}


def test_reaper_inserts_midi_stems_and_markers_at_the_clips(engine, media, installed, tmp_path):
    calls, console = run_lua("reaper_fake.lua", reaper_scene(media), installed / "reaper" / "cuesmith_score.lua",
                             engine_env(engine), tmp_path)
    assert "accepted" in console
    inserted = [c for c in calls if c[0] == "InsertMedia"]
    assert [c[0] for c in calls if c[0] == "InsertTrackAtIndex"] == ["InsertTrackAtIndex"] * len(inserted)
    midi, stems = inserted[0], inserted[1:]
    result, critique = job_files(stems[0][1])
    assert request_clips(result) == [(c["file"], c["start"], c["end"]) for c in CLIPS]  # not the audio item
    assert midi[1] == result["variations"][0]["midi"] and midi[4] == "cuesmith MIDI"
    assert {c[1] for c in stems} == {p for n, p in result["variations"][0]["stems"].items() if n != "mix"}
    assert all(c[3] == pytest.approx(10.0) for c in inserted)  # at the first clip's position
    markers = [(c[1], c[2]) for c in calls if c[0] == "AddProjectMarker2"]
    assert [round(p, 3) for p, _ in markers] == [round(10.0 + timeline_seconds(m["time"]), 3)
                                                 for m in critique["key_moments"]]
    assert [n.split()[1] for _, n in markers] == [m["grade"] for m in critique["key_moments"]]
    assert calls[-1][0] == "Undo_EndBlock"


def test_reaper_without_a_selection_scores_the_time_selection(engine, media, installed, tmp_path):
    scene = reaper_scene(media, time_selection=[10.5, 14.0])
    for item in scene["items"]:
        item["selected"] = False
    calls, _ = run_lua("reaper_fake.lua", scene, installed / "reaper" / "cuesmith_score.lua",
                       engine_env(engine, CUESMITH_PLACE="mix"), tmp_path)
    inserted = [c for c in calls if c[0] == "InsertMedia"]
    assert len(inserted) == 2 and Path(inserted[1][1]).name == "mix.wav"  # the MIDI and the mix only
    result, _ = job_files(inserted[1][1])
    assert request_clips(result) == [("a.mp4", 1.0, 2.5), ("b.mp4", 0.0, 1.0)]  # cut to the time selection
    assert all(c[3] == pytest.approx(10.5) for c in inserted)


# --- Premiere Pro (UXP over WebSocket, CEP over UDP) ---------------------------------------------

def premiere_scene(media: Path, select: bool) -> dict:
    """Clip A at 20 s of the sequence, B at 23 s, and the linked audio of A (selected, not video)."""
    clips = [{"path": str(media / c["file"]), "start": 20.0 + c["record"], "end": 20.0 + c["record"] + c["end"]
              - c["start"], "in": c["start"], "out": c["end"], "video": True, "selected": select} for c in CLIPS]
    clips.insert(1, {**clips[0], "video": False})
    return {"clips": clips, "audio_tracks": 2}


def run_panel(kind: str, scene: dict, installed: Path, env: dict, tmp_path: Path) -> dict:
    scene_path, log = tmp_path / "scene.json", tmp_path / "log.json"
    scene_path.write_text(json.dumps(scene))
    done = subprocess.run(["node", "--experimental-websocket", "--no-warnings", str(FAKES / "run_premiere.js"), kind,
                           str(installed / f"premiere-{kind}"), str(scene_path), str(log)],
                          env=env, capture_output=True, text=True, timeout=120)
    logged = json.loads(log.read_text())
    assert done.returncode == 0 and "error" not in logged, done.stdout + done.stderr + logged.get("error", "")
    return logged


def check_premiere_plan(plan: dict) -> tuple[dict, dict]:
    result, critique = job_files(plan["audio"][0]["path"])
    assert request_clips(result) == [(c["file"], c["start"], c["end"]) for c in CLIPS]
    assert {a["path"] for a in plan["audio"]} == {p for n, p in result["variations"][0]["stems"].items() if n != "mix"}
    assert all(a["seconds"] == pytest.approx(20.0) for a in plan["audio"])
    assert [round(m["seconds"], 3) for m in plan["markers"]] == [round(20.0 + timeline_seconds(m["time"]), 3)
                                                                 for m in critique["key_moments"]]
    assert plan["midi"] == result["variations"][0]["midi"]
    return result, critique


def test_premiere_uxp_panel_over_websocket(engine, media, installed, tmp_path):
    env = engine_env(engine, CUESMITH_WS_URL=f"ws://{engine.host}:{engine.ws_port}/")
    logged = run_panel("uxp", premiere_scene(media, select=True), installed, env, tmp_path)
    assert any("accepted" in line for line in logged["lines"])
    plan = logged["plan"]
    _, critique = check_premiere_plan(plan)
    (imported, paths, into_root), (_, name, actions) = logged["calls"]
    assert imported == "importFiles" and sorted(paths) == sorted(a["path"] for a in plan["audio"]) and into_root
    inserts = [a for a in actions if a["action"] == "insert"]
    assert [(a["path"], a["seconds"], a["audioTrack"]) for a in inserts] == \
        [(a["path"], a["seconds"], 2 + i) for i, a in enumerate(plan["audio"])]  # new tracks after A1, A2
    markers = [a for a in actions if a["action"] == "marker"]
    assert [(round(m["seconds"], 3), m["comments"]) for m in markers] == \
        [(round(m["seconds"], 3), m["note"]) for m in plan["markers"]]
    assert [m["name"].split()[1] for m in markers] == [m["grade"] for m in critique["key_moments"]]


def test_premiere_cep_panel_over_udp_with_extendscript(engine, media, installed, tmp_path):
    logged = run_panel("cep", premiere_scene(media, select=False), installed, engine_env(engine), tmp_path)
    plan = logged["plan"]
    _, critique = check_premiere_plan(plan)  # nothing selected: every clip of the video tracks
    overwrites = [c for c in logged["calls"] if c[0] == "overwriteClip"]
    assert [(c[2], c[3]) for c in overwrites] == [(a["path"], a["seconds"]) for a in plan["audio"]]
    # A2 was free; then one new track per further stem, made with the QE DOM
    assert [c[1] for c in overwrites] == list(range(1, 1 + len(overwrites)))
    assert sum(c[0] == "addTracks" for c in logged["calls"]) == len(overwrites) - 1
    colours = {"A": 0, "B": 4, "C": 1}
    assert [(round(m["seconds"], 3), m["colour"]) for m in logged["markers"]] == \
        [(round(20.0 + timeline_seconds(m["time"]), 3), colours[m["grade"]]) for m in critique["key_moments"]]
