"""The host scripts at their seams: each runs outside its editor against a fake of the editor's API
(tests/host_fakes/), the real `cuesmith send` / OSC / WebSocket and the REAL engine (`cuesmith serve` on
free ports); the tests check what lands on the fake timeline (record frames, markers, files) against the job's
own result.json placement (schema version 2). An audio-only result (the test-only family
tests/families/fixed_audio.py, picked with CUESMITH_FAMILY) places its audio and no MIDI in each host.
Everything runs from a `cuesmith hosts install --dest` copy, as shipped."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge_helpers import ROOT, running_engine
from media import Shot, make_video

FAKES = Path(__file__).resolve().parent / "host_fakes"
FIXED_AUDIO = Path(__file__).resolve().parent / "families" / "fixed_audio.py"
RESOLVE_COLOURS = {"green": "Green", "yellow": "Yellow", "red": "Red", "blue": "Blue"}
PREMIERE_COLOURS = {"green": 0, "red": 1, "yellow": 4, "blue": 6}
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
    """One `cuesmith serve` that also knows the test-only audio family (through $CUESMITH_FAMILIES only)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUESMITH_FAMILIES", f"fixed_audio={FIXED_AUDIO}")
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
    """result.json and its placement, of the job that wrote this stem (<job>/stems/<name>.wav)."""
    job = Path(imported_wav).parent.parent
    result = json.loads((job / "result.json").read_text())
    return result, result["placement"]


def placed_stems(placement: dict) -> set[str]:
    return set(placement["audio"]["stems"].values())


def check_placement_markers(placement: dict) -> None:
    """The placement the hosts read has what they need: graded cuts and the section starts."""
    kinds = {m["kind"] for m in placement["markers"]}
    assert {"cut", "section"} <= kinds, "the generated clips have cuts, so the critique has key moments"
    assert all(m["grade"] in "ABC" and m["colour"] in ("green", "yellow", "red") for m in placement["markers"]
               if m["kind"] != "section")


def expected_resolve_markers(placement: dict) -> list[tuple[int, str, str, str]]:
    """(frames from the timeline start, colour, name, note) of every placement marker; Resolve keeps one marker
    per frame, so a second one on a frame moves to the next free frame."""
    taken, expected = set(), []
    for m in placement["markers"]:
        frame = round(timeline_seconds(m["time"]) * FPS)
        while frame in taken:
            frame += 1
        taken.add(frame)
        expected.append((frame, RESOLVE_COLOURS[m["colour"]], f"cuesmith {m['name']}", m["note"] or m["name"]))
    return expected


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


def selected_scene(media: Path) -> dict:
    """Resolve 21.0.4+: A and B selected (and an id that is no video item); a clip on V2 is not."""
    scene = resolve_scene(media, selected=["v0", "v1", "a0"])
    scene["tracks"].append([{**scene["tracks"][0][1], "id": "v2", "start": START_FRAME + 600}])
    return scene


def check_resolve_calls(calls: list) -> dict:
    """The stems at the first clip on new tracks, the placement's markers on the timeline; the result."""
    imports = [c[1][0] for c in calls if c[0] == "ImportMedia"]
    appends = [c[1][0] for c in calls if c[0] == "AppendToTimeline"]
    assert imports and len(appends) == len(imports) == sum(c[0] == "AddTrack" for c in calls)
    result, placement = job_files(imports[0])
    assert set(imports) == placed_stems(placement)  # every stem, not the mix
    assert [a["recordFrame"] for a in appends] == [START_FRAME] * len(appends)
    assert [a["trackIndex"] for a in appends] == list(range(2, 2 + len(appends)))  # new tracks after A1
    assert all(a["mediaType"] == 2 for a in appends)
    check_placement_markers(placement)
    markers = [(c[1], c[2], c[3], c[4]) for c in calls if c[0] == "AddMarker"]
    assert markers == expected_resolve_markers(placement)
    return result


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
    scene = selected_scene(media)
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
    result, placement = job_files(stems[0][1])
    assert request_clips(result) == [(c["file"], c["start"], c["end"]) for c in CLIPS]  # not the audio item
    assert midi[1] == placement["midi"] == result["variations"][0]["midi"] and midi[4] == "cuesmith MIDI"
    assert {c[1] for c in stems} == placed_stems(placement)
    assert all(c[3] == pytest.approx(10.0) for c in inserted)  # at the first clip's position
    check_reaper_markers(calls, placement)
    assert calls[-1][0] == "Undo_EndBlock"


REAPER_RGB = {"green": (40, 180, 60), "yellow": (230, 200, 40), "red": (210, 50, 40), "blue": (60, 110, 220)}


def check_reaper_markers(calls: list, placement: dict) -> None:
    check_placement_markers(placement)
    markers = [(round(c[1], 3), c[2], c[3]) for c in calls if c[0] == "AddProjectMarker2"]
    native = {name: r + 256 * g + 65536 * b + 0x1000000 for name, (r, g, b) in REAPER_RGB.items()}
    assert markers == [(round(10.0 + timeline_seconds(m["time"]), 3),
                        f"cuesmith {m['name']}: {m['note'] or m['name']}", native[m["colour"]])
                       for m in placement["markers"]]


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
    result, placement = job_files(plan["audio"][0]["path"])
    assert request_clips(result) == [(c["file"], c["start"], c["end"]) for c in CLIPS]
    assert {a["path"] for a in plan["audio"]} == placed_stems(placement)
    assert all(a["seconds"] == pytest.approx(20.0) for a in plan["audio"])
    check_placement_markers(placement)
    assert [(round(m["seconds"], 3), m["name"], m["note"], m["colourIndex"]) for m in plan["markers"]] == \
        [(round(20.0 + timeline_seconds(m["time"]), 3), f"cuesmith {m['name']}", m["note"] or m["name"],
          PREMIERE_COLOURS[m["colour"]]) for m in placement["markers"]]
    assert plan["midi"] == placement["midi"]
    return result, placement


def test_premiere_uxp_panel_over_websocket(engine, media, installed, tmp_path):
    env = engine_env(engine, CUESMITH_WS_URL=f"ws://{engine.host}:{engine.ws_port}/")
    logged = run_panel("uxp", premiere_scene(media, select=True), installed, env, tmp_path)
    assert any("accepted" in line for line in logged["lines"])
    plan = logged["plan"]
    _, placement = check_premiere_plan(plan)
    assert plan["midi"] == placement["midi"] is not None
    (imported, paths, into_root), (_, name, actions) = logged["calls"]
    assert imported == "importFiles" and sorted(paths) == sorted(a["path"] for a in plan["audio"]) and into_root
    inserts = [a for a in actions if a["action"] == "insert"]
    assert [(a["path"], a["seconds"], a["audioTrack"]) for a in inserts] == \
        [(a["path"], a["seconds"], 2 + i) for i, a in enumerate(plan["audio"])]  # new tracks after A1, A2
    markers = [a for a in actions if a["action"] == "marker"]
    assert [(round(m["seconds"], 3), m["comments"]) for m in markers] == \
        [(round(m["seconds"], 3), m["note"]) for m in plan["markers"]]
    assert [m["name"] for m in markers] == [f"cuesmith {m['name']}" for m in placement["markers"]]


def test_premiere_cep_panel_over_udp_with_extendscript(engine, media, installed, tmp_path):
    logged = run_panel("cep", premiere_scene(media, select=False), installed, engine_env(engine), tmp_path)
    plan = logged["plan"]
    _, placement = check_premiere_plan(plan)  # nothing selected: every clip of the video tracks
    overwrites = [c for c in logged["calls"] if c[0] == "overwriteClip"]
    assert [(c[2], c[3]) for c in overwrites] == [(a["path"], a["seconds"]) for a in plan["audio"]]
    # A2 was free; then one new track per further stem, made with the QE DOM
    assert [c[1] for c in overwrites] == list(range(1, 1 + len(overwrites)))
    assert sum(c[0] == "addTracks" for c in logged["calls"]) == len(overwrites) - 1
    assert [(round(m["seconds"], 3), m["colour"]) for m in logged["markers"]] == \
        [(round(20.0 + timeline_seconds(m["time"]), 3), PREMIERE_COLOURS[m["colour"]]) for m in placement["markers"]]


# --- the scripts' own codecs against real implementations ----------------------------------------

def load_installed_resolve(installed: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("cuesmith_score_resolve", installed / "resolve" / "cuesmith_score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_resolve_osc_codec_agrees_with_python_osc(installed):
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder

    script = load_installed_resolve(installed)
    ours = OscMessage(script.osc_message("/cuesmith/score", "t1", '{"video": "/é.mp4"}', 7, 0.5, "token=x"))
    assert (ours.address, ours.params) == ("/cuesmith/score", ["t1", '{"video": "/é.mp4"}', 7, 0.5, "token=x"])
    builder = OscMessageBuilder("/cuesmith/progress")
    for value in ("job1", "generate", 0.25, 3):
        builder.add_arg(value)
    assert script.osc_parse(builder.build().dgram) == ("/cuesmith/progress", ["job1", "generate", 0.25, 3])


def test_a_long_request_travels_as_a_json_file(installed):
    script = load_installed_resolve(installed)
    request = script.build_request([{"video": f"/media/reel/clip-{i:03d}.mov", "start": i, "end": i + 1.5}
                                    for i in range(40)])
    argument = script.request_argument(request)
    try:
        assert argument.endswith(".json") and json.loads(Path(argument).read_text()) == request
    finally:
        Path(argument).unlink()
    short = script.request_argument(script.build_request([{"video": "/a.mp4", "start": 0, "end": 1}]))
    assert json.loads(short)["clips"][0]["video"] == "/a.mp4"


def test_premiere_core_osc_codec_agrees_with_python_osc(installed):
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder

    builder = OscMessageBuilder("/cuesmith/result")
    for value in ("job1", "score", "/out/é/result.json"):
        builder.add_arg(value)
    script = f"""
      const core = require({json.dumps(str(installed / "premiere-cep" / "core.js"))});
      const parsed = core.oscParse(Buffer.from({json.dumps(builder.build().dgram.hex())}, "hex"));
      const built = Buffer.from(core.oscMessage("/cuesmith/score", ["t1", "{{}}", 3, 0.5])).toString("hex");
      console.log(JSON.stringify({{parsed, built}}));"""
    out = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout)
    assert out["parsed"] == {"address": "/cuesmith/result", "args": ["job1", "score", "/out/é/result.json"]}
    theirs = OscMessage(bytes.fromhex(out["built"]))
    assert (theirs.address, theirs.params) == ("/cuesmith/score", ["t1", "{}", 3, 0.5])


def test_lua_json_round_trips_through_python(installed, tmp_path):
    value = {"text": 'quote " back \\ tab \t é 🎬', "list": [1, 2.5, -300, True, False], "nested": {"a": {"b": []}}}
    source = tmp_path / "in.json"
    source.write_text(json.dumps(value, ensure_ascii=True))
    script = (f'local lib = dofile({json.dumps(str(installed / "reaper" / "cuesmith_lib.lua"))}) '
              f'local v = lib.read_json({json.dumps(str(source))}) '
              'v.nested.a.b = nil io.write(lib.encode(v))')
    out = subprocess.run(["lua5.4", "-e", script], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == {**value, "nested": {"a": {}}}


def test_lua_send_reports_an_engine_that_is_not_there(installed, tmp_path):
    from bridge_helpers import free_udp_port

    script = (f'local lib = dofile({json.dumps(str(installed / "reaper" / "cuesmith_lib.lua"))}) '
              'local r, why = lib.score({{video = "/nowhere.mp4", start = 0, ["end"] = 1}}, print) '
              'io.write(tostring(r) .. "|" .. why)')
    env = {**os.environ, "CUESMITH_PORT": str(free_udp_port())}
    done = subprocess.run(["lua5.4", "-e", script], capture_output=True, text=True, env=env, timeout=60)
    result, why = done.stdout.rsplit("|", 1)
    assert result.endswith("nil") and why.startswith("error: ") and len(why.splitlines()) == 1


# --- Ableton -------------------------------------------------------------------------------------

def test_ableton_patch_is_a_wired_max_patcher_listening_for_results(installed):
    patcher = json.loads((installed / "ableton" / "cuesmith_receiver.maxpat").read_text())["patcher"]
    boxes = {b["box"]["id"]: b["box"] for b in patcher["boxes"]}
    for line in patcher["lines"]:
        (source, outlet), (destination, inlet) = line["patchline"]["source"], line["patchline"]["destination"]
        assert outlet < boxes[source]["numoutlets"] and inlet < boxes[destination]["numinlets"]
    texts = [b.get("text", "") for b in boxes.values()]
    assert "udpreceive 9480" in texts and any(t.startswith("route /cuesmith/result") for t in texts)
    assert "reply=9480" in (installed / "ableton" / "README.md").read_text()


# --- cuesmith hosts install ----------------------------------------------------------------------

def hosts(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), "hosts", *args], capture_output=True, text=True, timeout=60)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_install_puts_every_host_file_in_place_and_is_idempotent(tmp_path):
    first = hosts("install", "--dest", str(tmp_path))
    assert first.returncode == 0, first.stderr
    files = snapshot(tmp_path)
    shipped = ROOT / "plugin_bridge" / "hosts"
    assert files["resolve/cuesmith_score.py"] == (shipped / "resolve" / "cuesmith_score.py").read_bytes()
    assert files["premiere-cep/CSXS/manifest.xml"] == (shipped / "premiere" / "cep" / "CSXS" / "manifest.xml").read_bytes()
    assert files["premiere-uxp/core.js"] == files["premiere-cep/core.js"] == (shipped / "premiere" / "core.js").read_bytes()
    assert f'M.BIN = "{CLI}"'.encode() in files["reaper/cuesmith_lib.lua"]  # the scripts find this cuesmith
    installed_lines = [l for l in first.stdout.splitlines() if ": installed: " in l]
    assert len(installed_lines) == len([f for f in files if not f.endswith(".cuesmith-install.json")]) == 16
    second = hosts("install", "--dest", str(tmp_path))
    assert second.returncode == 0 and ": installed: " not in second.stdout and ": unchanged: " in second.stdout
    assert snapshot(tmp_path) == files


def test_install_never_overwrites_a_file_the_user_changed(tmp_path):
    assert hosts("install", "--host", "reaper", "--dest", str(tmp_path)).returncode == 0
    script = tmp_path / "reaper" / "cuesmith_score.lua"
    script.write_text("-- my own tweaks\n")
    foreign = tmp_path / "resolve" / "cuesmith_score.py"  # there before cuesmith, never installed by it
    foreign.parent.mkdir()
    foreign.write_text("print('mine')\n")
    again = hosts("install", "--dest", str(tmp_path))
    assert again.returncode == 0
    assert script.read_text() == "-- my own tweaks\n" and foreign.read_text() == "print('mine')\n"
    assert f"kept your changed file (not replaced; move it away and re-run to update): {script}" in again.stdout
    assert f"{foreign}" in again.stdout and "2 file(s) you changed were kept" in again.stderr
    assert (tmp_path / "resolve" / "cuesmith_score_lua.lua").exists()  # the rest was installed


def test_install_updates_an_older_copy_it_wrote_itself(tmp_path):
    assert hosts("install", "--host", "ableton", "--dest", str(tmp_path)).returncode == 0
    readme, manifest = tmp_path / "ableton" / "README.md", tmp_path / "ableton" / ".cuesmith-install.json"
    old = b"# an older cuesmith README\n"
    readme.write_bytes(old)
    recorded = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**recorded, "README.md": __import__("hashlib").sha256(old).hexdigest()}))
    done = hosts("install", "--host", "ableton", "--dest", str(tmp_path))
    assert f"ableton: updated: {readme}" in done.stdout
    assert readme.read_bytes() == (ROOT / "plugin_bridge" / "hosts" / "ableton" / "README.md").read_bytes()


def test_dry_run_writes_nothing_and_list_names_the_standard_folders(tmp_path):
    done = hosts("install", "--dest", str(tmp_path / "d"), "--dry-run")
    assert done.returncode == 0 and "would install" in done.stdout and not (tmp_path / "d").exists()
    listed = hosts("--list", "--host", "resolve")
    assert listed.returncode == 0 and "Fusion/Scripts/Utility" in listed.stdout and "reaper" not in listed.stdout


def test_standard_folders_per_system():
    from cuesmith.plugin_bridge.hosts import PARTS, standard_folder

    env = {"HOME": "/home/u", "APPDATA": "C:/Users/u/AppData/Roaming"}
    resolve, reaper = PARTS["resolve"][0], PARTS["reaper"][0]
    assert standard_folder(resolve, "Linux", env) == Path("/home/u/.local/share/DaVinciResolve/Fusion/Scripts/Utility")
    assert standard_folder(resolve, "Darwin", env) == Path(
        "/home/u/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility")
    assert standard_folder(reaper, "Windows", env) == Path("C:/Users/u/AppData/Roaming/REAPER/Scripts/cuesmith")
    cep = PARTS["premiere"][0]
    assert standard_folder(cep, "Darwin", env) == Path(
        "/home/u/Library/Application Support/Adobe/CEP/extensions/com.cuesmith.panel")


def test_dest_that_is_a_file_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "resolve"
    blocker.write_text("not a folder")
    done = hosts("install", "--host", "resolve", "--dest", str(tmp_path))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "not a folder" in done.stderr
    assert blocker.read_text() == "not a folder"


def test_bare_hosts_command_asks_what_to_do():
    done = hosts()
    assert done.returncode == 2 and "cuesmith hosts install" in done.stderr


def test_premiere_manifests_declare_what_the_panels_need(installed):
    import xml.etree.ElementTree as ElementTree

    uxp = json.loads((installed / "premiere-uxp" / "manifest.json").read_text())
    assert "ws://127.0.0.1:9471" in uxp["requiredPermissions"]["network"]["domains"]
    assert uxp["host"]["app"] == "premierepro" and uxp["main"] == "index.html"
    cep = ElementTree.parse(installed / "premiere-cep" / "CSXS" / "manifest.xml").getroot()
    assert cep.find(".//ScriptPath").text == "./host.jsx" and cep.find(".//MainPath").text == "./index.html"
    assert "--enable-nodejs" in [p.text for p in cep.iter("Parameter")]
    assert cep.find(".//Host").get("Name") == "PPRO"


# --- failures reach the editor's console as one line, and nothing is placed -------------------------

def run_resolve_python(scene: dict, env: dict, installed: Path, tmp_path: Path):
    scene_path, log = tmp_path / "scene.json", tmp_path / "calls.json"
    scene_path.write_text(json.dumps(scene))
    env = {**env, "CUESMITH_FAKE_SCENE": str(scene_path), "CUESMITH_FAKE_LOG": str(log), "PYTHONPATH": str(FAKES)}
    done = subprocess.run([sys.executable, str(installed / "resolve" / "cuesmith_score.py")], env=env,
                          capture_output=True, text=True, timeout=120)
    return done, json.loads(log.read_text())


def test_resolve_python_without_an_engine_says_so(media, installed, tmp_path):
    from bridge_helpers import free_udp_port

    env = {**os.environ, "CUESMITH_PORT": str(free_udp_port()), "CUESMITH_TIMEOUT": "2"}
    done, calls = run_resolve_python(resolve_scene(media), env, installed, tmp_path)
    assert done.returncode == 2 and calls == []
    assert done.stdout.strip().splitlines()[-1].startswith("cuesmith: no answer from cuesmith at 127.0.0.1:")


def test_resolve_python_reports_a_clip_the_engine_cannot_read(engine, media, installed, tmp_path):
    scene = resolve_scene(media)
    scene["tracks"][0][1]["path"] = str(media / "missing.mp4")
    done, calls = run_resolve_python(scene, engine_env(engine), installed, tmp_path)
    assert done.returncode == 2 and calls == []
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("cuesmith: ") and "missing.mp4" in last


def engine_score(engine, request: dict) -> Path:
    """result.json of a score job run by `engine` (sent by the bridge's own client)."""
    client = engine.client()
    try:
        final = client.wait(client.submit("score", request), timeout=120)
    finally:
        client.close()
    assert final["event"] == "result", final
    return Path(final["result"])


def run_ableton(result_json: Path) -> tuple[subprocess.CompletedProcess, list]:
    """Run ableton_osc on `result_json` against a UDP port standing in for AbletonOSC; what it sent there."""
    import socket

    from pythonosc.osc_message import OscMessage

    live = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    live.bind(("127.0.0.1", 0))
    done = subprocess.run([sys.executable, "-m", "cuesmith.plugin_bridge.hosts.ableton_osc", str(result_json),
                           "--track", "2", "--slot", "1", "--port", str(live.getsockname()[1])],
                          capture_output=True, text=True, timeout=60)
    received = []
    live.settimeout(0.5)
    try:
        while True:
            message = OscMessage(live.recv(65536))
            received.append((message.address, message.params))
    except socket.timeout:
        pass
    live.close()
    return done, received


def test_ableton_osc_writes_each_part_as_a_clip(engine, media, tmp_path):
    import mido

    result_json = engine_score(engine, {"video": str(media / "a.mp4"), "start": 0.0, "end": 2.0, "stems": False})
    done, received = run_ableton(result_json)
    assert done.returncode == 0, done.stderr
    placement = json.loads(result_json.read_text())["placement"]
    midi = mido.MidiFile(placement["midi"])
    tempo = next(m.tempo for m in midi.tracks[0] if m.type == "set_tempo")
    parts = [(t.name, sum(m.type == "note_on" and m.velocity > 0 for m in t)) for t in midi.tracks]
    parts = [(name, n) for name, n in parts if n]
    assert {"melody", "accompaniment", "chords"} <= {name for name, _ in parts}
    assert received[0][0] == "/live/song/set/tempo"
    assert received[0][1][0] == pytest.approx(placement["tempo"], abs=1e-3) == pytest.approx(mido.tempo2bpm(tempo),
                                                                                              abs=1e-3)
    created = [p for a, p in received if a == "/live/clip_slot/create_clip"]
    assert [(p[0], p[1]) for p in created] == [(2 + k, 1) for k in range(len(parts))]
    names = [p[2] for a, p in received if a == "/live/clip/set/name"]
    assert names == [f"cuesmith {name}" for name, _ in parts]
    for k, (_, count) in enumerate(parts):
        notes = [p[2:] for a, p in received if a == "/live/clip/add/notes" and p[0] == 2 + k]
        flat = [v for values in notes for v in values]
        assert len(flat) == 5 * count
        ends = [flat[i + 1] + flat[i + 2] for i in range(0, len(flat), 5)]
        assert max(ends) <= created[k][2] and all(0 <= flat[i] <= 127 for i in range(0, len(flat), 5))


def test_ableton_osc_refuses_a_file_that_is_not_a_result(tmp_path):
    bogus = tmp_path / "result.json"
    bogus.write_text('{"variations": []}')
    done = subprocess.run([sys.executable, "-m", "cuesmith.plugin_bridge.hosts.ableton_osc", str(bogus)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not a cuesmith score result" in done.stderr


# --- a lost datagram: the UDP scripts ask for the job's state and still finish ------------------------

class LossyRelay:
    """A UDP relay between one script and the engine that drops the first /cuesmith/result it carries."""

    def __init__(self, engine):
        import socket
        import threading

        self.engine = (engine.host, engine.port)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.port, self.client, self.dropped, self.asked = self.front.getsockname()[1], None, [], []
        for target in (self._forward_requests, self._forward_replies):
            threading.Thread(target=target, daemon=True).start()

    def _forward_requests(self):
        from pythonosc.osc_message import OscMessage

        while True:
            try:
                data, self.client = self.front.recvfrom(65536)
            except OSError:
                return
            if OscMessage(data).address == "/cuesmith/status":
                self.asked.append(OscMessage(data).params)
            self.back.sendto(data, self.engine)

    def _forward_replies(self):
        from pythonosc.osc_message import OscMessage

        while True:
            try:
                data = self.back.recv(65536)
            except OSError:
                return
            message = OscMessage(data)
            if message.address == "/cuesmith/result" and not self.dropped:
                self.dropped.append(message.params)
                continue
            self.front.sendto(data, self.client)

    def close(self):
        self.front.close()
        self.back.close()


def test_resolve_python_recovers_a_lost_result_datagram(engine, media, installed, tmp_path):
    relay = LossyRelay(engine)
    try:
        env = {**engine_env(engine), "CUESMITH_PORT": str(relay.port), "CUESMITH_QUIET": "1"}
        done, calls = run_resolve_python(selected_scene(media), env, installed, tmp_path)
    finally:
        relay.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(relay.dropped) == 1 and relay.asked  # the result was lost, the script asked for the job's state
    check_resolve_calls(calls)
    result, _ = job_files([c for c in calls if c[0] == "ImportMedia"][0][1][0])
    assert request_clips(result) == [(c["file"], c["start"], c["end"]) for c in CLIPS]  # the selection only


def test_premiere_cep_recovers_a_lost_result_datagram(engine, media, installed, tmp_path):
    relay = LossyRelay(engine)
    try:
        env = {**engine_env(engine), "CUESMITH_PORT": str(relay.port), "CUESMITH_QUIET": "1"}
        logged = run_panel("cep", premiere_scene(media, select=True), installed, env, tmp_path)
    finally:
        relay.close()
    assert len(relay.dropped) == 1 and relay.asked
    check_premiere_plan(logged["plan"])


def test_a_request_over_a_datagram_travels_as_a_file_through_cuesmith_send(engine, media, installed, tmp_path):
    deep = tmp_path.joinpath(*[f"a-very-long-folder-name-for-a-very-long-path-{i:02d}" for i in range(14)])
    deep.mkdir(parents=True)
    for c in CLIPS:
        (deep / c["file"]).symlink_to(media / c["file"])
    assert len(json.dumps({"clips": [{"video": str(deep / c["file"])} for c in CLIPS]})) > 1400
    calls, _ = run_lua("reaper_fake.lua", reaper_scene(deep), installed / "reaper" / "cuesmith_score.lua",
                       engine_env(engine, CUESMITH_PLACE="mix"), tmp_path)
    result, _ = job_files([c for c in calls if c[0] == "InsertMedia"][1][1])
    assert [c["video"] for c in result["request"]["clips"]] == [str(deep / c["file"]) for c in CLIPS]


def test_resolve_python_sends_the_token_an_engine_asks_for(media, installed, tmp_path):
    scene = resolve_scene(media)
    scene["tracks"][0][1]["path"] = str(media / "missing.mp4")  # past the token check, refused at once
    with running_engine(tmp_path / "engine", token="s3cret") as guarded:
        runs = {}
        for token in ("", "wrong", "s3cret"):
            env = {**engine_env(guarded), "CUESMITH_TOKEN": token}
            runs[token], _ = run_resolve_python(scene, env, installed, tmp_path)
    assert "unauthorized" in runs[""].stdout and "unauthorized" in runs["wrong"].stdout
    assert "unauthorized" not in runs["s3cret"].stdout and "missing.mp4" in runs["s3cret"].stdout
    assert all(run.returncode == 2 for run in runs.values())


# --- an audio-only family (tests/families/fixed_audio.py): its audio is placed, no MIDI ---------------------

AUDIO_ONLY = {"CUESMITH_FAMILY": "fixed_audio"}


def check_audio_only(result: dict) -> None:
    placement = result["placement"]
    assert result["model"]["family"] == "fixed_audio" and placement["midi"] is None
    assert result["variations"][0]["midi"] is None and set(placement["audio"]["stems"]) == {"pad", "clicks"}


def test_resolve_python_places_an_audio_only_result(engine, media, installed, tmp_path):
    done, calls = run_resolve_python(resolve_scene(media), engine_env(engine, **AUDIO_ONLY), installed, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    check_audio_only(check_resolve_calls(calls))
    assert "no MIDI (audio only)" in done.stdout


def test_resolve_lua_places_an_audio_only_result(engine, media, installed, tmp_path):
    script = installed / "resolve" / "cuesmith_score_lua.lua"
    calls, console = run_lua("resolve_fake.lua", selected_scene(media), script, engine_env(engine, **AUDIO_ONLY),
                             tmp_path)
    check_audio_only(check_resolve_calls(calls))
    assert "no MIDI (audio only)" in console


def test_reaper_places_an_audio_only_result_without_a_midi_track(engine, media, installed, tmp_path):
    calls, _ = run_lua("reaper_fake.lua", reaper_scene(media), installed / "reaper" / "cuesmith_score.lua",
                       engine_env(engine, **AUDIO_ONLY), tmp_path)
    inserted = [c for c in calls if c[0] == "InsertMedia"]
    result, placement = job_files(inserted[0][1])
    check_audio_only(result)
    assert [(c[1], c[4]) for c in inserted] == [(placement["audio"]["stems"][name], f"cuesmith {name}")
                                               for name in ("clicks", "pad")]  # no MIDI track
    assert all(c[3] == pytest.approx(10.0) for c in inserted)
    check_reaper_markers(calls, placement)


@pytest.mark.parametrize("kind", ["uxp", "cep"])
def test_premiere_places_an_audio_only_result(kind, engine, media, installed, tmp_path):
    env = engine_env(engine, CUESMITH_WS_URL=f"ws://{engine.host}:{engine.ws_port}/", **AUDIO_ONLY)
    logged = run_panel(kind, premiere_scene(media, select=True), installed, env, tmp_path)
    result, _ = check_premiere_plan(logged["plan"])
    check_audio_only(result)
    assert logged["plan"]["midi"] is None and any("no MIDI (audio only)" in line for line in logged["lines"])


def test_ableton_osc_sets_the_tempo_of_an_audio_only_result_and_names_its_audio(engine, media):
    result_json = engine_score(engine, {"video": str(media / "a.mp4"), "family": "fixed_audio"})
    result = json.loads(result_json.read_text())
    check_audio_only(result)
    done, received = run_ableton(result_json)
    assert done.returncode == 0, done.stderr
    assert received == [("/live/song/set/tempo", [pytest.approx(result["placement"]["tempo"], abs=1e-3)])]
    audio = result["placement"]["audio"]
    assert f"drag these into Live at the video's start: {audio['mix']}, " in done.stdout
    assert all(path in done.stdout for path in audio["stems"].values())


# --- a result written before the placement (schema version 1): one line, nothing placed -------------------

def test_each_host_says_a_result_without_a_placement_is_too_old(installed, tmp_path):
    old = tmp_path / "result.json"
    old.write_text(json.dumps({"schema_version": 1, "variations": [{"midi": "/x/score.mid", "stems": {}}]}))
    script = load_installed_resolve(installed)
    with pytest.raises(script.ScriptError, match=r"no placement \(schema_version 1\): update cuesmith"):
        script.placement_of(script.read_json(str(old)))
    lua = (f'local lib = dofile({json.dumps(str(installed / "reaper" / "cuesmith_lib.lua"))}) '
           f'local ok, why = pcall(lib.placement, lib.read_json({json.dumps(str(old))})) io.write(why)')
    assert "no placement (schema_version 1)" in subprocess.run(["lua5.4", "-e", lua], capture_output=True,
                                                               text=True, check=True).stdout
    node = (f'require({json.dumps(str(installed / "premiere-cep" / "core.js"))}).readResult('
            f'{json.dumps(str(old))}, (p) => require("fs").promises.readFile(p, "utf8"))'
            '.catch((e) => console.log(e.message));')
    assert "no placement (schema_version 1)" in subprocess.run(["node", "-e", node], capture_output=True,
                                                               text=True, check=True).stdout
    done, _ = run_ableton(old)
    assert done.returncode == 2 and "not a cuesmith score result (schema version 2)" in done.stderr
