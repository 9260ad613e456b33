import json

import mir_eval
import numpy as np
import pytest

from cuesmith.engine.music import key, pop909
from cuesmith.engine.music.score import Key, Note, Part, Song

Q = 480
MAJOR_SCALE = [0, 2, 4, 5, 7, 9, 11]


from pop909_marks import needs_data  # noqa: E402


def cadence_song(tonic: int, minor: bool = False) -> Song:
    """A scale tune over I-IV-V-I (i-iv-V-i in harmonic minor), one bar each, in the key of `tonic`."""
    third = 3 if minor else 4
    scale = [0, 2, 3, 5, 7, 8, 11] if minor else MAJOR_SCALE
    chords = [(0, third, 7), (5, 5 + third, 12), (7, 11, 14), (0, third, 7)]
    notes = []
    for bar, chord in enumerate(chords):
        notes += [Note(bar * 4 * Q, (bar + 1) * 4 * Q, 48 + tonic + p) for p in chord]
    tune = scale + [12, 11 if minor else 11, 7, 0] + [third, 0, 7, 0, 0]
    notes += [Note(i * Q, (i + 1) * Q, 72 + tonic + p) for i, p in enumerate(tune[:16])]
    return Song(parts=[Part("piano", notes)])


@pytest.mark.parametrize("detect", [key.detect_key_ks, key.detect_key])
@pytest.mark.parametrize("tonic", range(12))
def test_major_cadence_in_every_key(detect, tonic):
    assert detect(cadence_song(tonic)) == Key(tonic, "major")


@pytest.mark.parametrize("detect", [key.detect_key_ks, key.detect_key])
@pytest.mark.parametrize("tonic", [9, 2, 4])
def test_harmonic_minor_cadence(detect, tonic):
    assert detect(cadence_song(tonic, minor=True)) == Key(tonic, "minor")


def test_krumhansl_scores_are_correlations():
    histogram = np.roll(key.KK_MINOR, 9)  # A minor's own profile
    scores = key.key_scores(histogram, key.KK_MAJOR, key.KK_MINOR)
    assert scores.shape == (2, 12) and scores[1, 9] == pytest.approx(1.0)
    assert np.all(scores <= 1.0 + 1e-12)


def test_no_notes_gives_c_major():
    assert key.detect_key(Song()) == Key(0, "major") == key.detect_key_ks(Song())


def test_main_key_is_longest_section():
    sections = [(0.0, 10.0, "Gb:maj"), (10.0, 100.0, "Eb:min"), (100.0, 120.0, "Gb:maj")]
    assert key.main_key(sections) == Key(3, "minor")


def test_stored_model_says_how_it_was_fitted():
    data = json.loads(key.PROFILE_PATH.read_text())
    assert "001-700" in data["fitted_on"] and data["command"].endswith("--fit")
    weights, bias = key.fitted_model()
    assert weights.shape == (2, 24) and bias.shape == (2,)


@needs_data
def test_fitted_beats_krumhansl_on_a_few_validation_songs():
    numbers = range(781, 801)
    songs = [pop909.load_song(n).song for n in numbers]
    ours = np.mean([mir_eval.key.weighted_score(s.key.name, key.detect_key(s).name) for s in songs])
    ks = np.mean([mir_eval.key.weighted_score(s.key.name, key.detect_key_ks(s).name) for s in songs])
    assert ours >= 0.85 and ours >= ks
