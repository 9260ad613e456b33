"""The LLM prose path with a tiny GGUF built here (no download): grammar, time limit, fact check, fallback."""
import json
import time

import pytest

from critique_media import clip_shots, locked_song
from cuesmith.engine import Engine
from cuesmith.engine.critique import apply_llm, assess, prose
from cuesmith.engine.planning import plan
from media import make_video
from tiny_gguf import write_tiny_gguf

llama_cpp = pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def critique(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llm")
    analysis = Engine(use_cache=False).analyze(
        make_video(folder / "clip.mp4", clip_shots(11), size=(128, 72), fps=24).path)
    return assess(analysis, locked_song(plan(analysis), shift_beats=0.5))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def test_template_prose_passes_its_own_fact_check(critique):
    assert prose.check_prose(critique, critique.prose) is None
    first = critique.key_moments[0]
    assert first.clock in critique.prose["rhythm"] and f"grade {first.grade}" in critique.prose["rhythm"]


def test_fact_check_catches_invented_times_and_grades(critique):
    good = dict(critique.prose)
    assert "not a measured moment" in prose.check_prose(critique, {**good, "emotion": "The swell at 00:59.9 is lovely."})
    graded = {m.grade for m in critique.key_moments}
    wrong = next(g for g in "ABC" if g not in graded)
    assert "grade" in prose.check_prose(critique, {**good, "rhythm": f"Every cut earns grade {wrong}."})
    first = critique.key_moments[0]
    other = next(g for g in "ABC" if g != first.grade)
    assert prose.check_prose(critique, {**good, "rhythm": f"{first.clock},{other}"}) is not None
    assert "no text" in prose.check_prose(critique, {**good, "culture": " "})


def test_tiny_model_runs_under_the_grammar_and_falls_back(critique, tiny_model):
    started = time.monotonic()
    result = apply_llm(critique, tiny_model, time_limit=20.0, max_tokens=24)
    assert time.monotonic() - started < 30
    assert result.prose_source == "template"
    # the model ran: it wrote (random) JSON that stopped at max_tokens, so it is refused
    assert "not complete JSON" in result.prose_note or "fact check" in result.prose_note, result.prose_note
    assert prose.check_prose(result, result.prose) is None


def test_time_limit_stops_the_model(critique, tiny_model):
    started = time.monotonic()
    text, note = prose.llm_prose(critique, tiny_model, time_limit=0.3, max_tokens=5000)
    assert text is None and "limit" in note
    assert time.monotonic() - started < 15


def test_checked_model_prose_is_used(critique, tiny_model, monkeypatch):
    """A model answer that keeps to the facts replaces the template."""
    answer = {name: f"{text} (reworded)" for name, text in critique.prose.items()}
    monkeypatch.setattr(prose, "generate_json", lambda llm, prompt, limit, tokens, schema=None: json.dumps(answer))
    result = apply_llm(critique, tiny_model)
    assert result.prose_source == "llm" and result.prose["rhythm"].endswith("(reworded)")
    assert "tiny.gguf" in result.prose_note


def test_bad_or_missing_model_keeps_the_template(critique, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    for path, expected in ((broken, "the model failed"), (tmp_path / "none.gguf", "not found")):
        text, note = prose.llm_prose(critique, path)
        assert text is None and expected in note
