import math

import muspy
import numpy as np
import pretty_midi
import pytest

from cuesmith.engine.music import metrics, pop909
from cuesmith.engine.music.midi_io import read_midi
from cuesmith.engine.music.score import TICKS_PER_BEAT, Note, Part, Song, TempoChange


from pop909_marks import needs_data  # noqa: E402
Q = TICKS_PER_BEAT


def song_of(notes, bpm=120.0, drums=()):
    parts = [Part("piano", list(notes))]
    if drums:
        parts.append(Part("drums", list(drums), channel=9, is_drum=True))
    return Song(parts=parts, tempos=[TempoChange(0, bpm)])


def test_c_major_scale():
    scale = [60, 62, 64, 65, 67, 69, 71]
    song = song_of(Note(i * Q, (i + 1) * Q, p) for i, p in enumerate(scale))
    assert metrics.scale_consistency(song) == 1.0
    assert metrics.pitch_entropy(song) == pytest.approx(math.log2(7))
    assert metrics.pitch_class_entropy(song) == pytest.approx(math.log2(7))
    assert metrics.empty_beat_rate(song) == 0.0
    assert metrics.mean_inter_onset_interval(song) == pytest.approx(0.5)  # a quarter at 120 BPM


def test_out_of_scale_notes_and_octaves():
    # C, C#, D, D#: at most 3 of 4 fit one scale; octave doubling splits PE but not PCE.
    song = song_of([Note(0, Q, 60), Note(Q, 2 * Q, 61), Note(2 * Q, 3 * Q, 62), Note(3 * Q, 4 * Q, 63),
                    Note(0, Q, 72)])
    assert metrics.scale_consistency(song) == pytest.approx(4 / 5)  # C, D, D#, C5 in C minor
    assert metrics.pitch_entropy(song) == pytest.approx(math.log2(5))
    assert metrics.pitch_class_entropy(song) > metrics.pitch_class_entropy(song_of([Note(0, Q, 60)]))


def test_empty_beats_and_chord_onsets():
    # Beats 0 and 4 sound, 1-3 are silent: 3 of 5 empty. A note ending on a beat line touches it (MusPy).
    song = song_of([Note(0, Q - 1, 60), Note(0, Q - 1, 64), Note(4 * Q, 5 * Q - 1, 67)])
    assert metrics.empty_beat_rate(song) == pytest.approx(3 / 5)
    assert metrics.empty_beat_rate(song_of([Note(0, Q, 60), Note(2 * Q, 3 * Q, 60)])) == pytest.approx(0.0)
    # Onsets 0, 0, 4 beats: gaps 0 and 2 s at 120 BPM, so the mean is 1 s.
    assert metrics.mean_inter_onset_interval(song) == pytest.approx(1.0)


def test_drums_count_for_empty_beats_only():
    song = song_of([Note(0, Q - 1, 60)], drums=[Note(2 * Q, 3 * Q - 1, 36)])
    assert metrics.empty_beat_rate(song) == pytest.approx(1 / 3)  # beat 1 of 0..2 is silent
    assert metrics.empty_beat_rate(song_of([Note(0, Q - 1, 60)])) == 0.0
    assert metrics.pitch_entropy(song) == 0.0  # the drum's pitch is not counted


def test_no_notes_is_nan():
    assert all(math.isnan(v) for v in metrics.quality_metrics(song_of([])).values())


def muspy_music(song: Song) -> muspy.Music:
    tracks = [muspy.Track(is_drum=p.is_drum, notes=[muspy.Note(n.start, n.pitch, n.duration, n.velocity)
                                                      for n in p.notes]) for p in song.parts]
    return muspy.Music(resolution=TICKS_PER_BEAT, tracks=tracks)


@needs_data
@pytest.mark.parametrize("number", [701, 742, 788])
def test_agrees_with_muspy_and_pretty_midi(number):
    path = pop909.data_root() / f"{number:03d}" / f"{number:03d}.mid"
    song = read_midi(path)
    ours = metrics.quality_metrics(song)
    music = muspy_music(song)
    assert ours["SC"] == pytest.approx(muspy.scale_consistency(music), abs=1e-12)
    assert ours["PE"] == pytest.approx(muspy.pitch_entropy(music), abs=1e-12)
    assert ours["PCE"] == pytest.approx(muspy.pitch_class_entropy(music), abs=1e-12)
    assert ours["EBR"] == pytest.approx(muspy.empty_beat_rate(music), abs=1e-12)
    # Yang & Lerch's avg_IOI on the file itself.
    onsets = pretty_midi.PrettyMIDI(str(path)).get_onsets()
    assert ours["IOI"] == pytest.approx(np.mean(np.diff(onsets)), rel=1e-6)
    assert 0.5 < ours["SC"] <= 1.0 and 0.05 < ours["IOI"] < 0.3
