import numpy as np
import pytest

from cuesmith.engine.music import chords
from cuesmith.engine.music.pop909 import parse_harte
from cuesmith.engine.music.score import CHORD_QUALITIES, NO_CHORD, Chord, Note, Part, Song, TimeSignature

Q = 480
BAR = 4 * Q
SHAPES = {"M": (0, 4, 7), "m": (0, 3, 7), "7": (0, 4, 7, 10), "m7": (0, 3, 7, 10), "M7": (0, 4, 7, 11)}


def block_song(progression, beats_each=4, signature=4):
    """One block chord (bass + close voicing) per `beats_each` beats."""
    notes = []
    for i, (root, quality) in enumerate(progression):
        a, b = i * beats_each * Q, (i + 1) * beats_each * Q
        notes.append(Note(a, b, 36 + root))
        notes += [Note(a, b, 60 + root + step) for step in SHAPES[quality]]
    return Song(parts=[Part("piano", notes)], time_signatures=[TimeSignature(0, signature, 4)])


@pytest.mark.parametrize("chord, label", [
    (Chord(0, 1, 9, "m7"), "A:min7"), (Chord(0, 1, 0, "M"), "C:maj"), (Chord(0, 1, 7, "7"), "G:7"),
    (Chord(0, 1, 11, "o"), "B:dim"), (Chord(0, 1, 11, "o7"), "B:dim7"), (Chord(0, 1, 2, "sus2"), "D:sus2"),
    (Chord(0, 1, 4, "+"), "E:aug"), (Chord(0, 1, 10, "M7"), "Bb:maj7"), (Chord(0, 1, None, NO_CHORD), "N"),
])
def test_harte_labels(chord, label):
    assert chords.harte_label(chord) == label


def test_every_chord_survives_harte_and_parse_harte():
    for quality in CHORD_QUALITIES:
        for root in range(12):
            assert parse_harte(chords.harte_label(Chord(0, 1, root, quality))) == (root, quality)
    assert chords.chord_from_harte("Bb:min7/b7", 5, 9) == Chord(5, 9, 10, "m7")


def test_class_index_round_trip():
    for index in range(chords.N_CLASSES):
        assert chords.chord_to_class(chords.class_to_chord(index, 0, 1)) == index


def test_pop_progression_per_bar_is_recognised_and_merged():
    progression = [(0, "M"), (0, "M"), (9, "m"), (5, "M"), (7, "M"), (4, "m")]
    found = chords.recognize_chords(block_song(progression))
    assert [(c.root, c.quality) for c in found] == [(0, "M"), (9, "m"), (5, "M"), (7, "M"), (4, "m")]
    assert found[0] == Chord(0, 2 * BAR, 0, "M")  # two equal bars merged
    assert all(a.end == b.start for a, b in zip(found, found[1:]))


def test_roots_of_all_shapes_in_all_keys():
    for quality in SHAPES:
        for root in range(12):
            found = chords.recognize_chords(block_song([(root, quality)]))
            assert len(found) == 1 and found[0].root == root, (root, quality)


def test_half_bar_windows_follow_the_time_signature():
    song = block_song([(0, "M"), (7, "M"), (9, "m"), (5, "M")], beats_each=2)
    assert [(a, b) for a, b, _ in chords.windows(song, "half_bar")] == [(i * 2 * Q, (i + 1) * 2 * Q) for i in range(4)]
    found = chords.recognize_chords(song, per="half_bar")
    assert [(c.root, c.quality) for c in found] == [(0, "M"), (7, "M"), (9, "m"), (5, "M")]
    waltz = block_song([(0, "M")], beats_each=3, signature=3)
    assert [s for _, _, s in chords.windows(waltz, "beat")] == [True, False, False]
    with pytest.raises(ValueError):
        chords.windows(song, "bar")


def test_silence_is_no_chord_and_parts_can_be_chosen():
    song = block_song([(0, "M"), (0, "M"), (0, "M"), (0, "M")])
    song.parts[0].notes = [n for n in song.parts[0].notes if not BAR <= n.start < 3 * BAR]
    song.parts.append(Part("lead", [Note(BAR, 3 * BAR, 66)]))
    found = chords.recognize_chords(song, parts=["piano"])
    assert [(c.root, c.quality) for c in found] == [(0, "M"), (None, NO_CHORD), (0, "M")]
    assert chords.recognize_chords(Song()) == []


def test_viterbi_change_cost_smooths_a_flicker():
    log_probs = np.log(np.array([[0.9, 0.1], [0.4, 0.6], [0.9, 0.1]]))
    strong = np.array([True, False, False])
    assert chords.viterbi(log_probs, strong, (0.0, 0.0)).tolist() == [0, 1, 0]
    assert chords.viterbi(log_probs, strong, (0.0, 2.0)).tolist() == [0, 0, 0]


def test_stored_model_shapes():
    model = chords._stored_model()
    assert model["weights"].shape == (len(CHORD_QUALITIES), 36) and len(model["change_cost"]) == 2
