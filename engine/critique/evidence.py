"""Theme & content and culture, judged only from words the engine has been given.

Evidence: the clip's file name (generic camera/export names such as
"clip_003", "IMG_1234" or "final v2" say nothing and are ignored), the user's
notes (`--notes`), editor markers, and the music's title and tags (MIDI track
name and markers, audio metadata). Nothing is inferred from pixels or sound.

A word list per HarmonySet category (`THEMES`) and per cultural area
(`CULTURES`, with HarmonySet's element kinds) is matched word by word.
Theme: when both picture and music evidence name a category, the same
category is "strongly related", different ones "unrelated"; otherwise the
dimension is "not assessed". Culture works the same way ("related" /
"unrelated"); "misuse" would need knowledge we do not have and is never said.
Narrative supplement is always "not assessed": it needs to know the story.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

THEMES = {
    "Life & Emotions": {"family", "wedding", "love", "birthday", "baby", "kids", "friends", "memories", "romance",
                        "romantic", "nostalgia", "pet", "dog", "cat", "vlog", "home"},
    "Arts & Performance": {"dance", "dancing", "concert", "art", "painting", "theatre", "theater", "performance",
                           "ballet", "singing", "band", "drawing", "film", "cinematic"},
    "Travel & Events": {"travel", "trip", "festival", "city", "beach", "mountain", "holiday", "vacation", "tour",
                        "road", "parade", "party", "sunset", "ocean", "nature"},
    "Sports & Outdoors": {"sport", "sports", "football", "soccer", "basketball", "running", "run", "gym", "workout",
                          "fitness", "ski", "skiing", "surf", "surfing", "skate", "bike", "cycling", "race",
                          "hiking", "climbing", "epic", "energetic", "motivation"},
    "Knowledge": {"tutorial", "lecture", "science", "history", "howto", "explainer", "lesson", "documentary",
                  "education", "study", "corporate"},
    "Tech & Fashion": {"tech", "phone", "gadget", "fashion", "outfit", "makeup", "style", "unboxing", "review",
                       "product", "runway", "electronic", "edm"},
}
CULTURES = {  # area -> element kind -> words
    "Japan": {"clothing": {"kimono", "yukata"}, "customs": {"matsuri", "hanami"}, "cuisines": {"sushi", "ramen"},
              "landmarks": {"tokyo", "kyoto", "fuji"}, "music": {"jpop", "j-pop", "koto", "shamisen", "enka"}},
    "Korea": {"clothing": {"hanbok"}, "customs": {"chuseok"}, "cuisines": {"kimchi", "bibimbap"},
              "landmarks": {"seoul", "busan"}, "music": {"kpop", "k-pop", "gayageum"}},
    "China": {"clothing": {"qipao", "hanfu"}, "customs": {"lunar", "lantern"}, "cuisines": {"dumplings", "dimsum"},
              "landmarks": {"beijing", "shanghai"}, "music": {"guzheng", "erhu", "cpop", "c-pop", "pipa"}},
    "India": {"clothing": {"sari", "saree", "kurta"}, "customs": {"diwali", "holi"}, "cuisines": {"curry", "biryani"},
              "landmarks": {"taj", "mumbai", "delhi"}, "music": {"bollywood", "sitar", "tabla", "raga"}},
    "Latin America & Spain": {"clothing": {"poncho", "sombrero"}, "customs": {"carnaval", "fiesta"},
                              "cuisines": {"tacos", "paella", "tapas"}, "landmarks": {"madrid", "rio", "mexico"},
                              "music": {"flamenco", "salsa", "reggaeton", "samba", "tango", "mariachi", "latin"}},
    "Ireland & Scotland": {"clothing": {"kilt", "tartan"}, "customs": {"ceilidh"}, "cuisines": {"haggis"},
                           "landmarks": {"dublin", "edinburgh", "highlands"}, "music": {"celtic", "bagpipes", "jig"}},
    "Middle East": {"clothing": {"keffiyeh"}, "customs": {"ramadan", "eid"}, "cuisines": {"falafel", "hummus"},
                    "landmarks": {"dubai", "istanbul", "cairo"}, "music": {"oud", "arabic", "darbuka"}},
}
GENERIC_NAME = re.compile(r"^(clip|video|img|vid|mov|dsc|gopr|pxl|export|final|untitled|take|shot|render|"
                          r"output|test|demo|sequence|timeline|scene|cut|v|a|b|c|\d+)$")


@dataclass
class Evidence:
    picture: list[str] = field(default_factory=list)  # the texts, as given
    music: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"picture": self.picture, "music": self.music}


def words(texts: list[str]) -> set[str]:
    found = set()
    for text in texts:
        for w in re.split(r"[^a-z0-9\-]+", text.lower()):
            w = w.strip("-")
            if w and not GENERIC_NAME.match(w):
                found.add(w)
    return found


def name_text(path: str) -> str:
    """A file name as words, or '' when every word of it is generic."""
    stem = Path(path).stem if path else ""
    return stem if words([stem]) else ""


def gather(video_path: str, notes: str, markers: list[str], music_title: str, music_tags: list[str],
           music_path: str = "") -> Evidence:
    picture = [t for t in [name_text(video_path), notes, *markers] if t and t.strip()]
    music = [t for t in [music_title, *music_tags, name_text(music_path)] if t and t.strip() and words([t])]
    return Evidence(picture, music)


def themes_of(texts: list[str]) -> list[str]:
    w = words(texts)
    return [name for name, vocab in THEMES.items() if w & vocab]


def cultures_of(texts: list[str]) -> dict[str, list[str]]:
    """Area -> the element kinds named for it."""
    w = words(texts)
    found = {}
    for area, kinds in CULTURES.items():
        named = [kind for kind, vocab in kinds.items() if w & vocab]
        if named:
            found[area] = named
    return found


def theme_judgement(evidence: Evidence) -> tuple[Optional[str], dict, list[str]]:
    """(content alignment label or None, labels, facts)."""
    pic, mus = themes_of(evidence.picture), themes_of(evidence.music)
    facts = [f"picture evidence: {', '.join(evidence.picture) or 'none'} → {', '.join(pic) or 'no theme'}",
             f"music evidence: {', '.join(evidence.music) or 'none'} → {', '.join(mus) or 'no theme'}"]
    if not pic or not mus:
        return None, {"content alignment": "not assessed", "narrative supplement": "not assessed"}, facts
    verdict = "strongly related" if set(pic) & set(mus) else "unrelated"
    return verdict, {"content alignment": verdict, "narrative supplement": "not assessed",
                     "picture theme": pic[0], "music theme": mus[0]}, facts


def culture_judgement(evidence: Evidence) -> tuple[Optional[str], dict, list[str]]:
    pic, mus = cultures_of(evidence.picture), cultures_of(evidence.music)
    elements = sorted({k for kinds in pic.values() for k in kinds if k != "music"})
    named = ", ".join(f"{area} ({'/'.join(kinds)})" for area, kinds in pic.items())
    facts = [f"picture: {named or 'no cultural element named'}",
             f"music: {', '.join(mus) or 'no cultural reference named'}"]
    if not pic or not mus:
        return None, {"elements": ", ".join(elements) or "not assessed", "cultural relevance": "not assessed"}, facts
    verdict = "related" if set(pic) & set(mus) else "unrelated"
    return verdict, {"elements": ", ".join(elements) or "none", "cultural relevance": verdict}, facts
