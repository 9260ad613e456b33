"""Form: phrases inside the shots, and which bars repeat the rhythm of an earlier bar.

Songs repeat themselves: in POP909 about half of the melody bars and 55-61% of
the accompaniment bars have an onset rhythm found elsewhere in the song
(issue 12), because phrases come back (A A' B A) and a comping pattern holds
for a phrase. Nets of this size, trained for an hour, do not plan that far, so
the plan says it, bar by bar:

- phrases: each section (shot) is cut into phrases of `PHRASE_BARS` bars; a
  remainder of one bar joins the phrase before it, and so does a shot of one
  bar (a phrase spans quick cuts).
- melody: a phrase whose role (verse/chorus) came before repeats that
  phrase's rhythm bar by bar, all but the last bar of a phrase of 3 bars or
  more (the cadence varies); in the first phrase of a role each bar but the
  last repeats the bar two before it (idea, continuation, idea, continuation
  ..., close: a b a c, a b a b c), a phrase of 2-3 bars its first bar in its
  second.
- accompaniment: a comping rhythm holds while the role does: every bar
  repeats the latest earlier bar of its length and role; it changes where
  the role changes (verse to chorus) and at the first bar.

A bar never repeats one of another length, and the last bar of the cue is
free (it closes). Bars the planner shortened to put a cut on a bar line (a
3/4 among 4/4s) get a source the same way when they have none: the latest
earlier shortened bar of their length in their phrase or the one before, so
a motif holds through a run of quick cuts. The decoder takes the repeated onsets as a constraint and
the nets choose every pitch, duration and velocity.
"""
from __future__ import annotations

PHRASE_BARS = 4
STAGES = ("melody", "accompaniment")


def phrases(section_flags: list[bool]) -> list[tuple[int, int]]:
    """(first bar, end bar) of every phrase."""
    n = len(section_flags)
    starts = [i for i, flag in enumerate(section_flags) if flag or i == 0]
    spans: list[tuple[int, int]] = []
    for a, b in zip(starts, starts[1:] + [n]):
        if b - a == 1 and spans:
            spans[-1] = (spans[-1][0], b)
            continue
        cuts = list(range(a, b, PHRASE_BARS))
        if len(cuts) > 1 and b - cuts[-1] == 1:
            cuts.pop()
        spans += list(zip(cuts, cuts[1:] + [b]))
    return spans


def rhythm_sources(section_flags: list[bool], roles: list[str], bar_lengths: list[int]) -> dict[str, list[int]]:
    """stage -> per bar, the earlier bar whose onset rhythm it repeats, or -1."""
    spans = phrases(section_flags)
    melody, accompaniment = [-1] * len(roles), [-1] * len(roles)
    first_of_role: dict[str, tuple[int, int]] = {}
    for a, b in spans:
        earlier = first_of_role.get(roles[a])
        if earlier is None:
            first_of_role[roles[a]] = (a, b)
            if b - a in (2, 3):
                melody[a + 1] = a
            for i in range(a + 2, b - 1):
                melody[i] = i - 2
        else:
            shared = min(b - a, earlier[1] - earlier[0])
            for i in range(shared - 1 if shared >= 3 else shared):
                melody[a + i] = earlier[0] + i
    for i in range(1, len(roles)):  # (a role's first bar finds none: the texture changes there)
        accompaniment[i] = next((k for k in range(i - 1, -1, -1)
                                 if roles[k] == roles[i] and bar_lengths[k] == bar_lengths[i]), -1)
    sources = {"melody": melody, "accompaniment": accompaniment}
    phrase_of = {i: k for k, (a, b) in enumerate(spans) for i in range(a, b)}
    full = max(set(bar_lengths), key=bar_lengths.count)
    for bars in sources.values():
        for i, j in enumerate(bars):
            if j >= 0 and bar_lengths[i] != bar_lengths[j]:
                bars[i] = j = -1
            if j < 0 and bar_lengths[i] != full:
                bars[i] = next((k for k in range(i - 1, -1, -1) if bar_lengths[k] == bar_lengths[i]
                                and phrase_of[i] - phrase_of[k] <= 1), -1)
        bars[-1] = -1
    return sources
