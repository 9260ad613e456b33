"""Prose for the critique: a deterministic template, or a local GGUF model that must stick to the facts.

The LLM path (`llm_prose`): llama-cpp-python loads the model in a child process
(`llm_child.py`, so a crash in native code — "Illegal instruction", a segfault —
ends the child, not the engine; the parent kills it past its time limit), the
prompt gives only the measured facts (key moments with their times and grades,
labels, scores), and generation runs under a JSON grammar (an object with one
string per dimension), with `max_tokens` and a wall-clock deadline enforced by
a stopping criterion. The child runs on this Python, or on the interpreter in
$CUESMITH_LLM_PYTHON (one with another llama-cpp-python build). The answer is
then checked (`check_prose`): every time (mm:ss.s or mm:ss) and every grade
("grade A", "A grade", ",A") it mentions must be one the critique measured, and
every dimension must have text. Any failure
— no llama_cpp, an unreadable model, a crashed child, the deadline, broken JSON,
an invented time or grade — keeps the template prose and says why in `prose_note`.

Models: any small instruction-tuned GGUF works; `cuesmith critique --llm-help`
prints suggestions. Nothing is downloaded by cuesmith.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from .moments import clock, harmonyset_clock

DIMENSIONS = ("rhythm", "theme", "emotion", "culture")
TITLES = {"rhythm": "Rhythm & synchronization", "theme": "Theme & content", "emotion": "Emotion",
          "culture": "Culture"}
LLM_TIME_LIMIT_S = 60.0
LLM_MAX_TOKENS = 700
LLM_LOAD_S = 30.0  # on top of the generation limit: starting the child and loading the model
LLM_CHILD = Path(__file__).with_name("llm_child.py")

LLM_HELP = """\
cuesmith writes the critique's prose with a template. To let a local language model write it
instead, download a small instruction-tuned model in GGUF format yourself and pass its path:

    cuesmith critique clip.mp4 --llm ~/models/qwen2.5-1.5b-instruct-q4_k_m.gguf

Good fits on a laptop CPU (search for these names on the Hugging Face hub; pick a Q4_K_M file):
  - Qwen2.5 1.5B / 3B Instruct (GGUF)       ~1-2 GB, fast
  - Llama 3.2 1B / 3B Instruct (GGUF)       ~1-2 GB
  - Phi-3.5 mini instruct (GGUF)            ~2.4 GB, slower, careful prose
  - Gemma 2 2B it (GGUF)                    ~1.6 GB
It needs the `llm` extra: pip install 'cuesmith[llm]' (llama-cpp-python).
The model only rewords measured facts; if it invents a time or grade, cuesmith keeps the template.
"""


# -- template ------------------------------------------------------------------

def template_prose(critique) -> dict[str, str]:
    return {name: TEMPLATES[name](critique) for name in DIMENSIONS}


def _moment_text(m) -> str:
    if m.grade == "A":
        return f"the {m.kind} at {clock(m.time)} lands on a musical change (grade A)"
    if m.grade == "B":
        side = "after" if m.offset > 0 else "before"
        return (f"the {m.kind} at {clock(m.time)} has a change {abs(m.offset):.2f} s {side} it (grade B)")
    return f"the {m.kind} at {clock(m.time)} has no musical change near it (grade C)"


def rhythm_text(c) -> str:
    d = c.dimension("rhythm")
    lines = [f"Music pace is {d.labels['music pace']} against a {d.labels['picture pace']} picture; "
             f"rhythm alignment: {d.labels['rhythm alignment']}."]
    if c.key_moments:
        shown = c.key_moments[:8]
        lines.append("Key moments: " + "; ".join(_moment_text(m) for m in shown)
                     + (f"; and {len(c.key_moments) - len(shown)} more." if len(c.key_moments) > len(shown) else "."))
    else:
        lines.append("The clip has no cuts, transitions or motion peaks to align with.")
    if d.score is not None:
        lines.append(f"Score {d.score:.1f}/10.")
    return " ".join(lines)


def emotion_text(c) -> str:
    d = c.dimension("emotion")
    if not d.assessed:
        return "Emotion not assessed: " + "; ".join(d.facts) + "."
    return (f"The picture reads as {d.labels['video emotions']}; the music as {d.labels['music emotion']}. "
            f"Emotion alignment: {d.labels['emotion alignment']}; emotional richness: "
            f"{d.labels['emotional richness']}. ({'; '.join(d.facts)}.) Score {d.score:.1f}/10.")


def evidence_text(c, name: str) -> str:
    d = c.dimension(name)
    if not d.assessed:
        return (f"{TITLES[name]} not assessed: the engine has no evidence about it "
                f"({'; '.join(d.facts)}). Add notes with --notes or tag the music to have it judged.")
    labels = ", ".join(f"{k}: {v}" for k, v in d.labels.items())
    return f"{labels}. ({'; '.join(d.facts)}.) Score {d.score:.1f}/10."


def soundness_text(soundness: dict) -> str:
    """One paragraph on the soundness facts (soundness.py), beside the four dimensions."""
    facts = ", ".join(f"{k} {v:.2f}" for k, v in soundness["facts"].items())
    text = f"The music {soundness['verdict']} (soundness {soundness['score']:.2f}; {facts})."
    if soundness["out"]:
        text += (" Unlike real songs: " if soundness.get("judged", True) else " ") + "; ".join(soundness["out"]) + "."
    return text


TEMPLATES = {"rhythm": rhythm_text, "emotion": emotion_text,
             "theme": lambda c: evidence_text(c, "theme"), "culture": lambda c: evidence_text(c, "culture")}


# -- checking ------------------------------------------------------------------

TIME_PATTERN = re.compile(r"\b(\d{1,2}):(\d{2}(?:\.\d+)?)\b")
GRADE_PATTERNS = (re.compile(r"\bgrade\s*\(?([A-Z])\b", re.I), re.compile(r"\b([A-Z])\s+grade\b"),
                  re.compile(r"\d,([A-Z])\b"))


def allowed_times(critique) -> set[str]:
    times = set()
    for m in critique.key_moments:
        times |= {clock(m.time), harmonyset_clock(m.time)}
    for p in critique.problems:  # times quoted in the problems (e.g. where the music ends)
        times |= {f"{a}:{b}" for a, b in TIME_PATTERN.findall(p)}
    return times


WORD = re.compile(r"[^\W\d_]{2,}")  # a word of two letters or more, any script


def says_nothing(text) -> bool:
    """Fewer than three words: a base model may answer "...", which names no wrong fact but says nothing."""
    return not isinstance(text, str) or len(WORD.findall(text)) < 3


def check_prose(critique, prose: dict) -> Optional[str]:
    """None when every time and grade in `prose` is a measured one; else what is wrong."""
    missing = [d for d in DIMENSIONS if says_nothing(prose.get(d))]
    if missing:
        return f"no text for {', '.join(missing)}"
    times = allowed_times(critique)
    by_time = {}
    for m in critique.key_moments:
        by_time.setdefault(clock(m.time), set()).add(m.grade)
        by_time.setdefault(harmonyset_clock(m.time), set()).add(m.grade)
    grades = {m.grade for m in critique.key_moments}
    for name in DIMENSIONS:
        text = prose[name]
        for minutes, seconds in TIME_PATTERN.findall(text):
            if f"{minutes}:{seconds}" not in times:
                return f"{name}: time {minutes}:{seconds} is not a measured moment"
        for pattern in GRADE_PATTERNS:
            for letter in pattern.findall(text):
                if letter.upper() not in grades:
                    return f"{name}: grade {letter} was not given to any moment"
        for stamp, letter in re.findall(r"(\d{1,2}:\d{2}(?:\.\d+)?)\s*,\s*([ABC])\b", text):
            if letter not in by_time.get(stamp, set()):
                return f"{name}: {stamp} is graded {sorted(by_time.get(stamp, set()))}, not {letter}"
    return None


# -- LLM ------------------------------------------------------------------------

def facts_prompt(critique) -> str:
    lines = ["You write a short critique of how a piece of music fits a video, in four fields.",
             "Use ONLY these measured facts. Quote times exactly as written (mm:ss.s). Do not invent times or grades.",
             f"Key moments (time, kind, grade): " + ("; ".join(f"{clock(m.time)} {m.kind} grade {m.grade}"
                                                              for m in critique.key_moments) or "none")]
    for d in critique.dimensions:
        labels = ", ".join(f"{k}={v}" for k, v in d.labels.items())
        score = "not assessed" if d.score is None else f"{d.score:.1f}/10"
        lines.append(f"{TITLES[d.name]}: {labels}; score {score}; facts: {'; '.join(d.facts)}")
    if critique.soundness:
        lines.append("Soundness (is it music at all): " + soundness_text(critique.soundness))
    lines.append('Answer as JSON: {"rhythm": "...", "theme": "...", "emotion": "...", "culture": "..."}')
    return "\n".join(lines)


PROSE_SCHEMA = {"type": "object", "properties": {d: {"type": "string"} for d in DIMENSIONS},
                "required": list(DIMENSIONS)}


class ModelFailed(Exception):
    """The model gave no text; the message says why (and ends up in `prose_note`)."""


def run_model(path: Path, prompt: str, schema: dict, time_limit: float, max_tokens: int, seed: int = 0) -> str:
    """The model's text for `prompt` under `schema`'s grammar, generated in a child process that is killed
    past the time limit; a ModelFailed saying why when there is none."""
    job = {"model": str(path), "prompt": prompt, "schema": schema, "time_limit": time_limit,
           "max_tokens": max_tokens, "seed": seed}
    python = os.environ.get("CUESMITH_LLM_PYTHON") or sys.executable
    try:
        done = subprocess.run([python, str(LLM_CHILD)], input=json.dumps(job), capture_output=True, text=True,
                              timeout=time_limit + LLM_LOAD_S)
    except subprocess.TimeoutExpired:
        raise ModelFailed(f"the model ran past its {time_limit:g} s limit (stopped)") from None
    except OSError as error:
        raise ModelFailed(f"the model process could not start ({error.strerror or error})") from None
    if done.returncode < 0:
        raise ModelFailed(f"the model process died ({signal_name(-done.returncode)})")
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
        raise ModelFailed(f"the model process ended without an answer (exit {done.returncode}: {last})") from None
    if answer.get("missing"):
        raise ModelFailed("llama-cpp-python is not installed (pip install 'cuesmith[llm]')")
    if "error" in answer:
        raise ModelFailed(answer["error"] if answer.get("timeout") else f"the model failed ({answer['error']})")
    return answer["text"]


def signal_name(number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
    if name == "SIGILL":
        return ("SIGILL, illegal instruction: llama-cpp-python was built for another CPU; rebuild it with "
                "`make setup`, which builds it portable")
    return name


def llm_prose(critique, model_path: str | Path, time_limit: float = LLM_TIME_LIMIT_S,
              max_tokens: int = LLM_MAX_TOKENS) -> tuple[Optional[dict], str]:
    """(prose, note): prose is None when the template must stay; note says what happened."""
    path = Path(model_path)
    started = time.monotonic()
    prose, failure = ask_json(path, facts_prompt(critique), PROSE_SCHEMA, time_limit, max_tokens)
    if failure:
        return None, f"{failure}: template prose"
    problem = check_prose(critique, prose)
    if problem:
        return None, f"the model's prose failed the fact check ({problem}): template prose"
    return {d: prose[d].strip() for d in DIMENSIONS}, f"written by {path.name} in {time.monotonic() - started:.1f} s"


def ask_json(model_path: Path, prompt: str, schema: dict, time_limit: float,
             max_tokens: int) -> tuple[Optional[dict], Optional[str]]:
    """The one way cuesmith asks a local GGUF model for a JSON object (the critique's and the music-video
    description's prose): (the object, None), or (None, what went wrong in words). Plain data in and out.
    The model runs in a child process (`run_model`): a crash or a hang there is a failure here."""
    if not model_path.is_file():
        return None, f"LLM model {model_path} not found"
    try:
        text = run_model(model_path, prompt, schema, time_limit, max_tokens)
    except ModelFailed as error:
        return None, str(error)
    try:
        answer = json.loads(text)
    except ValueError:
        return None, "the model's answer is not complete JSON"
    if not isinstance(answer, dict):
        return None, "the model's answer is not a JSON object"
    return answer, None


def apply_llm(critique, model_path, time_limit: float = LLM_TIME_LIMIT_S, max_tokens: int = LLM_MAX_TOKENS):
    prose, note = llm_prose(critique, model_path, time_limit, max_tokens)
    critique.prose_note = note
    if prose is not None:
        critique.prose, critique.prose_source = prose, "llm"
    return critique
