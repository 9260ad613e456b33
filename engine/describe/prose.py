"""The description's words: a template, or a local GGUF model held to the analysis by a fact check.

The LLM writes the overview paragraph and one visual idea per section, from
the measured facts only, under a JSON grammar (`critique.prose.ask_json`, the
one LLM path cuesmith has). `check_description` then reads every text of the
description (the template's too): each time it names (mm:ss.s or mm:ss) must be
a window edge, section edge, beat, cut or lyric time; each tempo ("N BPM") the
analysed tempo to ±0.5; each key ("A minor") the analysed key; each numbered
section ("verse 2") an analysed section, and each unnumbered intro, outro,
verse, chorus or refrain a kind the song has. Any failure keeps the template
and says why in `prose_note`.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Optional

from ..critique.moments import clock, harmonyset_clock
from .describe import SUBJECTS, Description, density_word, energy_word

LLM_TIME_LIMIT_S = 90.0
LLM_MAX_TOKENS = 900
TIME = re.compile(r"\b(\d{1,2}):(\d{2}(?:\.\d+)?)\b")
TEMPO = re.compile(r"(\d+(?:\.\d+)?)\s*(?:BPM|bpm|beats per minute)")
KEY = re.compile(r"\b([A-G])([#b♯♭]?)[\s-]+([Mm]ajor|[Mm]inor)\b")
SECTION = re.compile(r"\b(intro|outro|verse|chorus|bridge|refrain|part)(?:\s+(\d+))?\b", re.I)
LOOSE_KINDS = ("bridge", "part")  # ordinary English words: only their numbered forms are checked
NATURALS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


# -- template ------------------------------------------------------------------

def template_texts(d: Description) -> None:
    a, o = d.analysis, d.overview
    d.overview.text = overview_text(d)
    d.section_ideas = {s.name: section_idea(s, o.mv_type) for s in a.sections}
    for w in d.windows:
        w.music = window_music(w)
        w.text = window_text(w)
    d.prose_source = "template"


def overview_text(d: Description) -> str:
    a, o = d.analysis, d.overview
    tempo = f"at {a.tempo:.0f} BPM" if a.tempo else "without a steady beat"
    sound = ", ".join(a.instruments[:4]) if a.instruments else ", ".join(a.texture)
    guess = "tagged" if o.genre_source == "tags" else f"a guess, confidence {o.genre_confidence:.2f}"
    parts = [f"A {o.genre} piece ({guess}) {tempo} in {a.key or 'an unclear key'}, {clock(a.duration)} long: {sound}.",
             f"Its mood reads as {o.mood} (valence {o.valence:.2f}, arousal {o.arousal:.2f}) and moves "
             + " → ".join(s.mood for s in a.sections) + f" over {len(a.sections)} sections ("
             + ", ".join(f"{s.name} at {clock(s.start)}" for s in a.sections) + ").",
             f"Suggested music video: {o.mv_type} ({o.mv_type_reason}); visual style: {o.visual_style}."]
    if o.themes:
        parts.append(f"The lyrics turn on {', '.join(o.themes)}.")
    if o.tags:
        parts.append(f"Tags: {', '.join(o.tags)}.")
    return " ".join(parts)


def section_idea(section, mv_type: str) -> str:
    subject = SUBJECTS.get(mv_type, "the subject")
    level = energy_word(section.energy)
    return (f"{section.name} ({clock(section.start)}–{clock(section.end)}), {level} and {section.mood}: "
            + ("keep the frame calm and let " + subject + " breathe" if section.energy < 0.55
               else "open up movement and colour; cut with the pulse around " + subject))


def window_music(w) -> str:
    text = f"{w.section}: {energy_word(w.energy)}, {w.trend}; {density_word(w.onsets_per_second)} " \
           f"({w.onsets_per_second:.1f} onsets/s), {w.beats} beats"
    if w.section_starts:
        text += f"; {', '.join(w.section_starts)} begins"
    if w.chords:
        text += f"; chords {' '.join(w.chords[:4])}"
    return text


def window_text(w) -> str:
    text = f"{clock(w.start)}–{clock(w.end)} {w.music}. {w.shot[:1].upper()}{w.shot[1:]}; camera: {w.camera}."
    if w.cuts:
        text += " Cut at " + ", ".join(clock(c) for c in w.cuts) + "."
    if w.lyrics:
        text += " Lyrics: " + " / ".join(f"“{line}”" for line in w.lyrics)
    return text


# -- the fact check --------------------------------------------------------------

def known_times(d: Description) -> set[str]:
    a = d.analysis
    times = [a.duration, *a.beats, *a.downbeats, *(c.time for c in d.cuts)]
    times += [t for s in a.sections for t in (s.start, s.end)] + [t for w in d.windows for t in (w.start, w.end)]
    if d.lyrics:
        times += [line.time for line in d.lyrics.lines]
    return {form(t) for t in times for form in (clock, harmonyset_clock)}


def pitch_class(letter: str, accidental: str) -> int:
    return (NATURALS[letter.upper()] + {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(accidental, 0)) % 12


def check_text(d: Description, text: str, where: str, times: set[str]) -> Optional[str]:
    a = d.analysis
    for minutes, seconds in TIME.findall(text):
        if f"{minutes}:{seconds}" not in times and f"{int(minutes):02d}:{seconds}" not in times:
            return f"{where}: time {minutes}:{seconds} is not a measured time"
    for value in TEMPO.findall(text):
        if a.tempo is None or abs(float(value) - a.tempo) > 0.51:
            return f"{where}: tempo {value} BPM, the analysis says {a.tempo}"
    for letter, accidental, mode in KEY.findall(text):
        if a.key is None:
            return f"{where}: names a key ({letter}{accidental} {mode}) where none was found"
        tonic, analysed_mode = a.key.split()
        if (pitch_class(letter, accidental) != pitch_class(tonic[0], tonic[1:]) or mode.lower() != analysed_mode):
            return f"{where}: key {letter}{accidental} {mode}, the analysis says {a.key}"
    names = {s.name.lower() for s in a.sections}
    kinds = {n.split()[0] for n in names}
    for kind, number in SECTION.findall(text):
        kind = kind.lower()
        if number and f"{kind} {number}" not in names:
            return f"{where}: section {kind} {number} is not in the analysis"
        if not number and kind not in LOOSE_KINDS and kind not in kinds:
            return f"{where}: the song has no {kind}"
    return None


def check_description(d: Description) -> Optional[str]:
    """None when every time, tempo, key and section named anywhere in `d` matches the analysis."""
    times = known_times(d)
    texts = [("overview", d.overview.text)] + [(f"section idea {k}", v) for k, v in d.section_ideas.items()]
    texts += [(f"window {w.index}", f"{w.music} {w.text}") for w in d.windows]
    for where, text in texts:
        if not isinstance(text, str) or not text.strip():
            return f"{where}: no text"
        problem = check_text(d, text, where, times)
        if problem:
            return problem
    return None


def wordless(d: Description) -> Optional[str]:
    """The model's overview or a section idea that says nothing (`critique.prose.says_nothing`)."""
    from ..critique.prose import says_nothing

    texts = [("overview", d.overview.text)] + [(f"section idea {k}", v) for k, v in d.section_ideas.items()]
    for where, text in texts:
        if says_nothing(text):
            return f"{where}: fewer than three words"
    return None


# -- LLM ------------------------------------------------------------------------

def facts_prompt(d: Description) -> str:
    a, o = d.analysis, d.overview
    lines = ["You describe a music video for a piece of music: an overview paragraph, and a visual idea for each "
             "section. Use ONLY these measured facts; quote times exactly as written (mm:ss.s); never invent "
             "times, tempos, keys or section names.",
             f"Tempo: {a.tempo:.0f} BPM" if a.tempo else "Tempo: no steady beat",
             f"Key: {a.key or 'unclear'}; length {clock(a.duration)}; sound: "
             + ", ".join(a.instruments or a.texture),
             f"Genre: {o.genre} ({o.genre_source}); MV type: {o.mv_type}; mood: {o.mood}; "
             f"visual style: {o.visual_style}",
             "Sections: " + "; ".join(f"{s.name} {clock(s.start)}-{clock(s.end)} energy {energy_word(s.energy)} "
                                      f"mood {s.mood}" for s in a.sections)]
    if o.themes:
        lines.append("Lyric themes: " + ", ".join(o.themes))
    if o.tags:
        lines.append("Tags: " + ", ".join(o.tags))
    lines.append('Answer as JSON: {"overview": "...", "sections": {' +
                 ", ".join(f'"{s.name}": "..."' for s in a.sections) + "}}")
    return "\n".join(lines)


def prose_schema(d: Description) -> dict:
    names = [s.name for s in d.analysis.sections]
    sections = {"type": "object", "properties": {n: {"type": "string"} for n in names}, "required": names}
    return {"type": "object", "properties": {"overview": {"type": "string"}, "sections": sections},
            "required": ["overview", "sections"]}


def apply_llm(d: Description, model_path, time_limit: float = LLM_TIME_LIMIT_S,
              max_tokens: int = LLM_MAX_TOKENS) -> Description:
    """Reword the overview and section ideas with a local GGUF model; keep the template on any failure."""
    from dataclasses import replace

    from ..critique.prose import ask_json

    started = time.monotonic()
    path = Path(model_path)
    answer, failure = ask_json(path, facts_prompt(d), prose_schema(d), time_limit, max_tokens)
    if failure:
        d.prose_note = f"{failure}: template prose"
        return d
    sections = answer.get("sections") if isinstance(answer.get("sections"), dict) else {}
    trial = replace(d, overview=replace(d.overview, text=str(answer.get("overview", "")).strip()),
                    section_ideas={s.name: str(sections.get(s.name, "")).strip() for s in d.analysis.sections})
    problem = check_description(trial) or wordless(trial)
    if problem:
        d.prose_note = f"the model's prose failed the fact check ({problem}): template prose"
        return d
    d.overview.text, d.section_ideas = trial.overview.text, trial.section_ideas
    d.prose_source = "llm"
    d.prose_note = f"written by {path.name} in {time.monotonic() - started:.1f} s"
    return d
