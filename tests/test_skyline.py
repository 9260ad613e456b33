from cuesmith.engine.music.score import TICKS_PER_16TH, Note, Part, Song
from cuesmith.engine.music.skyline import quantize_note, skyline, split_melody

S = TICKS_PER_16TH  # 120 ticks


def test_quantize_rounds_to_sixteenths_and_keeps_a_length():
    assert quantize_note(Note(50, 170, 60)) == Note(0, 120, 60)
    assert quantize_note(Note(70, 100, 60)) == Note(120, 240, 60)  # would vanish: one 16th kept
    assert quantize_note(Note(61, 479, 60, 90)) == Note(120, 480, 60, 90)


def test_highest_note_per_onset_is_melody():
    chord = [Note(0, 4 * S, p) for p in (48, 55, 64, 72)]
    line = [Note(4 * S, 6 * S, 74), Note(4 * S, 8 * S, 60)]
    melody, accompaniment = skyline(chord + line)
    assert [n.pitch for n in melody] == [72, 74]
    assert sorted(n.pitch for n in accompaniment) == [48, 55, 60, 64]


def test_overlapping_melody_notes_are_trimmed_at_the_next_onset():
    melody, _ = skyline([Note(0, 8 * S, 72), Note(2 * S, 4 * S, 76), Note(2 * S, 4 * S, 50)])
    assert melody == [Note(0, 2 * S, 72), Note(2 * S, 4 * S, 76)]
    assert all(a.end <= b.start for a, b in zip(melody, melody[1:]))


def test_jittered_onsets_are_grouped_before_choosing():
    # A played chord with 20-tick spread counts as one onset; only its top note is melody.
    notes = [Note(0, 480, 60), Note(10, 480, 64), Note(20, 480, 67)]
    melody, accompaniment = skyline(notes)
    assert melody == [Note(0, 480, 67)] and len(accompaniment) == 2


def test_doubled_note_keeps_one_copy_in_each_part():
    melody, accompaniment = skyline([Note(0, S, 72), Note(0, S, 72)])
    assert melody == [Note(0, S, 72)] and accompaniment == [Note(0, S, 72)]


def test_split_melody_on_a_song_ignores_drums_and_unnamed_parts():
    song = Song(parts=[Part("piano", [Note(0, 480, 60), Note(0, 480, 67)], program=4),
                       Part("strings", [Note(0, 480, 79)]),
                       Part("drums", [Note(0, 480, 90)], channel=9, is_drum=True)])
    melody, accompaniment = split_melody(song)
    assert (melody.name, [n.pitch for n in melody.notes]) == ("melody", [79])
    assert sorted(n.pitch for n in accompaniment.notes) == [60, 67]
    melody, _ = split_melody(song, parts=["piano"])
    assert [n.pitch for n in melody.notes] == [67] and melody.program == 4
    assert split_melody(Song())[0].notes == []
