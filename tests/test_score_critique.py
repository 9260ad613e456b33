"""`score` plans with the cut-locked planner and critiques its own result."""
import json
import wave
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from cuesmith.engine import Engine
from cuesmith.engine.music.midi_io import read_midi
from media import Shot, make_video
from vmusprod_helpers import shipped_model


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    shipped_model()
    folder = tmp_path_factory.mktemp("score")
    shots = [Shot(2.3, "warm", 0.3), Shot(1.7, "cold", 0.8), Shot(2.6, "forest", 0.2)]
    truth = make_video(folder / "clip.mp4", shots)
    result = Engine(use_cache=False).score_and_save({"video": str(truth.path), "out_dir": str(folder / "out"),
                                            "seed": 3, "stems": False})
    return truth, result, folder / "out"


def test_cuts_fall_on_beats_of_the_written_midi(scored):
    truth, result, _ = scored
    song = read_midi(result.variations[0].midi)
    beats = np.array([song.tick_to_seconds(t) for t, _ in song.beats(song.end_tick)])
    for cut in truth.cuts:
        assert np.abs(beats - cut).min() <= 1 / 30, f"no beat within a frame of the cut at {cut} s"


def test_score_writes_its_critique(scored):
    _, result, out = scored
    critique = json.loads((out / "critique.json").read_text())
    assert critique["schema"] == "cuesmith.critique"
    assert (out / "critique.md").read_text().startswith("# Critique")
    assert result.critique["json"] == str(out / "critique.json")
    assert set(result.critique["scores"]) == {d["name"] for d in critique["dimensions"]}
    saved = json.loads((out / "result.json").read_text())
    assert saved["critique"]["overall"] == critique["overall"]


def test_a_second_score_keeps_the_first_critique(scored, tmp_path):
    truth, result, out = scored
    before = (out / "critique.json").read_bytes()
    again = Engine(use_cache=False).score_and_save({"video": str(truth.path), "out_dir": str(out), "seed": 4,
                                           "stems": False})
    assert (out / "critique.json").read_bytes() == before
    assert again.critique["json"] == str(out / "critique-2.json")


def test_vmusprod_ignores_a_description(scored, tmp_path):
    """`describe` is for text-prompted families: V-MusProd writes the same MIDI with it, and no description."""
    truth, result, _ = scored
    asked = Engine(use_cache=False).score_and_save({"video": str(truth.path), "out_dir": str(tmp_path / "out"),
                                                    "seed": 3, "stems": False, "describe": "slow sad piano"})
    assert Path(asked.variations[0].midi).read_bytes() == Path(result.variations[0].midi).read_bytes()
    saved = json.loads(Path(asked.result_json).read_text())
    assert saved["request"]["describe"] == "slow sad piano"
    assert saved["variations"][0]["description"] is None and result.variations[0].description is None


def test_the_score_ends_with_the_picture(tmp_path):
    """6.6 s, one cut at 3.0 s: the MIDI ends by the clip's end, the stems add only the release tail."""
    shipped_model()
    truth = make_video(tmp_path / "clip.mp4", [Shot(3.0, "warm", 0.3), Shot(3.6, "cold", 0.6)])
    result = Engine(use_cache=False).score_and_save({"video": str(truth.path), "out_dir": str(tmp_path / "out"),
                                            "seed": 4, "stems": True})
    clip_end = 6.6
    midi = pretty_midi.PrettyMIDI(result.variations[0].midi)
    beat = 60.0 / midi.get_tempo_changes()[1][-1]
    notes = [n for instrument in midi.instruments for n in instrument.notes]
    assert notes and max(n.end for n in notes) <= clip_end + 1e-3  # held notes are cut at the last bar line
    assert midi.get_end_time() <= clip_end + beat
    assert max(n.start for n in notes) > clip_end - 4 * beat  # the music plays into the last bar
    sounding = {name for name, count in result.variations[0].parts.items() if count}
    assert "chords" in sounding and set(result.variations[0].stems) == {"mix"} | sounding  # a stem per part played
    assert result.placement.audio["mix"] == result.variations[0].stems["mix"]
    with wave.open(result.variations[0].stems["mix"]) as mix:
        seconds = mix.getnframes() / mix.getframerate()
    assert clip_end <= seconds <= clip_end + beat  # render.py's release tail is half a beat
