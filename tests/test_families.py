"""Families are plug-ins; a score lives in memory until saved; the engine imports no bridge, GUI or torch.

The test-only family tests/families/fixed_audio.py (audio, no Song) is registered through
$CUESMITH_FAMILIES only: it flows through score -> save -> critique -> a `cuesmith serve` job.
"""
import ast
import json
import subprocess
import sys
from pathlib import Path

import mido
import pretty_midi
import pytest

from bridge_helpers import running_engine, short_clip
from cuesmith.engine import Engine
from cuesmith.engine.critique import Critique
from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.pipelines import FAMILIES, families
from cuesmith.engine.schema import FAMILIES as SCHEMA_FAMILIES, ScoreRequest, ScoreResult
from vmusprod_helpers import shipped_model

ROOT = Path(__file__).resolve().parent.parent
FIXED_AUDIO = Path(__file__).resolve().parent / "families" / "fixed_audio.py"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return short_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=3.0)


@pytest.fixture
def fixed_audio(monkeypatch):
    monkeypatch.setenv("CUESMITH_FAMILIES", f"fixed_audio={FIXED_AUDIO}")
    return "fixed_audio"


def test_the_schema_takes_its_families_from_the_table(fixed_audio, monkeypatch):
    assert SCHEMA_FAMILIES is FAMILIES and "vmusprod" in FAMILIES
    assert set(families()) == set(FAMILIES) | {"fixed_audio"}
    assert ScoreRequest(video="a.mp4", family="fixed_audio").validate().family == "fixed_audio"
    monkeypatch.delenv("CUESMITH_FAMILIES")
    with pytest.raises(CuesmithError, match="unknown model family 'fixed_audio'"):
        ScoreRequest(video="a.mp4", family="fixed_audio").validate()


def test_an_audio_only_family_is_scored_in_memory_then_saved(fixed_audio, clip, tmp_path):
    out = tmp_path / "out"
    score = Engine(use_cache=False).score(video=str(clip), family=fixed_audio, out_dir=str(out), seed=1)
    assert not out.exists()  # score writes nothing
    assert score.music[0].song is None and set(score.music[0].stems) == {"pad", "clicks"}
    assert score.critique.music_kind == "audio" and score.critique.key_moments
    assert score.placement.midi is None and score.placement.beats and score.placement.markers
    result = Engine().save(score)
    saved = ScoreResult.from_dict(json.loads(Path(result.result_json).read_text()))
    assert saved == result and saved.model["family"] == "fixed_audio"
    assert saved.variations[0].midi is None and saved.placement.midi is None
    mix = Path(saved.placement.audio["mix"])
    assert mix.parent == out / "stems" and mix.read_bytes()[:4] == b"RIFF"
    assert set(saved.placement.audio["stems"]) == {"pad", "clicks"}
    critique = Critique.from_dict(json.loads(Path(saved.critique["json"]).read_text()))
    assert critique == score.critique


def test_an_audio_only_family_runs_as_a_serve_job(fixed_audio, clip, tmp_path):
    with running_engine(tmp_path / "engine") as engine, engine.client("udp") as client:
        final = client.wait(client.submit("score", {"video": str(clip), "family": fixed_audio}), timeout=180)
    assert final["event"] == "result", final
    result = json.loads(Path(final["result"]).read_text())
    assert result["schema_version"] == 2 and result["variations"][0]["midi"] is None
    assert Path(result["placement"]["audio"]["mix"]).is_file()
    assert json.loads(Path(result["critique"]["json"]).read_text())["music_kind"] == "audio"


def test_score_mid_has_melody_accompaniment_and_a_voiced_chord_part(clip, tmp_path):
    shipped_model()
    result = Engine(use_cache=False).score_and_save(video=str(clip), out_dir=str(tmp_path), seed=2, stems=False)
    midi = pretty_midi.PrettyMIDI(result.variations[0].midi)
    parts = {i.name: i.notes for i in midi.instruments}
    assert set(parts) == {"melody", "accompaniment", "chords"} and all(parts.values())
    named = [t.name for t in mido.MidiFile(result.variations[0].midi).tracks]
    assert {"melody", "accompaniment", "chords"} <= set(named)
    chords = sorted(parts["chords"], key=lambda n: (n.start, n.pitch))
    onsets = sorted({round(n.start, 4) for n in chords})
    assert len(onsets) == len(result.placement.chords) and all(31 <= n.pitch <= 76 for n in chords)
    for start in onsets:  # the lowest note of each block is the chord's root, in C3..B3 or lower (under a low melody)
        block = [n.pitch for n in chords if round(n.start, 4) == start]
        assert 3 <= len(block) <= 4 and 31 <= min(block) <= 59
        melody = [n.pitch for n in parts["melody"] if n.start <= start + 1e-3 and n.end > start + 1e-3]
        assert not melody or max(block) < min(melody), (start, block, melody)  # under the melody
    spans = [(c["start"], c["end"]) for c in result.placement.chords]
    assert all(end > start for start, end in spans)
    for note in chords:  # released before the chord after it starts
        assert not any(start < note.end <= end and abs(start - note.start) > 1e-3 for start, end in spans
                       if start > note.start)


def test_the_placement_has_the_times_hosts_need(clip, tmp_path):
    shipped_model()
    result = Engine(use_cache=False).score_and_save(video=str(clip), out_dir=str(tmp_path), seed=2, stems=False)
    placement = json.loads(Path(result.result_json).read_text())["placement"]
    assert placement["midi"] == result.variations[0].midi
    assert placement["sections"][0] == {"bar": 0, "time": 0.0, "label": "section 1"}
    cuts = [m for m in placement["markers"] if m["kind"] == "cut"]
    assert len(cuts) == len(result.cut_times) and all(m["grade"] in "ABC" for m in cuts)
    assert {m["colour"] for m in placement["markers"] if m["kind"] == "section"} == {"blue"}
    assert all(abs(min(abs(b - m["time"]) for b in placement["beats"])) <= 1 / 30 for m in cuts)


def engine_imports(tree: Path) -> list[tuple[str, str]]:
    """(file, module) of every import statement under `tree` that names plugin_bridge or gui."""
    found = []
    for path in sorted(tree.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [("." * node.level) + (node.module or "")] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                parts = name.lstrip(".").split(".")
                bad = ("plugin_bridge" in parts or parts[:2] == ["cuesmith", "gui"]
                       or (name.startswith("..") and parts[:1] == ["gui"]))
                if bad:
                    found.append((str(path.relative_to(tree)), name))
    return found


def test_nothing_in_the_engine_imports_the_bridge_or_the_gui():
    assert engine_imports(ROOT / "engine") == []


def test_the_scan_sees_a_bridge_import(tmp_path):
    (tmp_path / "a.py").write_text("from ..plugin_bridge.timeline import read_timeline\nimport cuesmith.gui.panel\n")
    assert [m for _, m in engine_imports(tmp_path)] == ["..plugin_bridge.timeline", "cuesmith.gui.panel"]


def test_a_full_score_run_imports_no_torch_bridge_or_gui(clip, tmp_path):
    shipped_model()
    code = ("import sys, json; from cuesmith.engine import Engine; "
            f"r = Engine(use_cache=False).score_and_save(video={str(clip)!r}, out_dir={str(tmp_path)!r}); "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' "
            "or m.startswith(('cuesmith.plugin_bridge', 'cuesmith.gui')))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_a_request_object_a_dict_and_keywords_make_the_same_request():
    from cuesmith.engine.schema import TimelineRequest, coerce

    made = ScoreRequest(video="a.mp4", seed=3)
    assert coerce(ScoreRequest, made) == coerce(ScoreRequest, {"video": "a.mp4", "seed": 3}) == \
        coerce(ScoreRequest, video="a.mp4", seed=3) == made
    assert coerce(ScoreRequest, made, seed=4).seed == 4 and made.seed == 3
    assert coerce(TimelineRequest, timeline="reel.edl").rate is None
    with pytest.raises(CuesmithError, match="a timeline request needs a timeline file"):
        coerce(TimelineRequest, {})
    with pytest.raises(CuesmithError, match="expected a ScoreRequest or a dict"):
        coerce(ScoreRequest, "a.mp4")


@pytest.mark.parametrize("values, message", [
    ({"video": "a.mp4", "int8": "yes"}, "int8 must be true or false or null, got 'yes'"),
    ({"video": "a.mp4", "stems": "no"}, "stems must be true or false, got 'no'"),
    ({"video": "a.mp4", "seed": 1.5}, "seed must be an integer"),
    ({"video": "a.mp4", "variations": True}, "variations must be an integer"),
    ({"video": "a.mp4", "start": "0"}, "start must be a number or null"),
    ({"video": "a.mp4", "tempo": "x" * 10_000}, "tempo must be a number or null, got 'xxx"),
])
def test_a_request_given_to_the_api_is_type_checked_like_one_sent_to_the_service(values, message):
    """Engine.score(dict) takes the same checks as a job sent over the bridge; the error stays short."""
    from cuesmith.engine.schema import coerce

    with pytest.raises(CuesmithError, match=message) as refused:
        coerce(ScoreRequest, values)
    assert str(refused.value).startswith("score request:") and len(str(refused.value)) < 120


def test_a_result_reads_back_where_its_family_is_not_registered():
    """A panel or host without $CUESMITH_FAMILIES still reads what such a family wrote; a new request is checked."""
    values = ScoreResult(request=ScoreRequest(video="a.mp4", family="fixed_audio"), duration=1.0, tempo=120.0,
                         key="C major", n_bars=1, cut_times=[], section_bars=[0], variations=[], model={},
                         providers={}, timings={}).to_dict()
    assert ScoreResult.from_dict(values).request.family == "fixed_audio"
    with pytest.raises(CuesmithError, match="unknown model family 'fixed_audio'"):
        ScoreRequest.from_dict(values["request"])
