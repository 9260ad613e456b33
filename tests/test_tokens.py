import numpy as np
import pytest

from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.music.score import (TICKS_PER_16TH, Chord, Note, Part, Song, TempoChange,
                                         TimeSignature)
from cuesmith.engine.music.tokens import (FIELDS, N_FIELDS, PITCH, ROOT, STAGES, TYPE, VOCAB,
                                          TokenType, decode, encode, metrical_context, quantize,
                                          stage_notes, transpose_tokens)

Q = TICKS_PER_16TH
BAR_3_4, BAR_4_4 = 12 * Q, 16 * Q


def waltz_then_march() -> Song:
    """Two bars of 3/4 then 4/4, a tempo change inside bar 2, off-grid and overlong notes."""
    return Song(
        parts=[Part("melody", [Note(0, 470, 60, 100), Note(481, 1000, 64, 30),
                               Note(BAR_3_4 * 2 + 7, BAR_3_4 * 2 + 80 * Q, 67, 127)]),
               Part("accompaniment", [Note(10, 2000, 48), Note(10, 900, 48), Note(Q, 4 * Q, 52, 64)]),
               Part("drums", [Note(0, Q, 36)], is_drum=True)],
        chords=[Chord(0, BAR_3_4, 0, "M"), Chord(BAR_3_4, 2 * BAR_3_4, None),
                Chord(2 * BAR_3_4, 2 * BAR_3_4 + 7 * BAR_4_4, 9, "m7")],
        tempos=[TempoChange(0, 90.0), TempoChange(BAR_3_4 + 5, 133.0), TempoChange(2 * BAR_3_4, 150.0)],
        time_signatures=[TimeSignature(0, 3, 4), TimeSignature(2 * BAR_3_4, 4, 4)])


def assert_round_trip(song: Song, stage: str) -> None:
    tokens = encode(song, stage)
    back = decode(tokens, stage)
    assert back.time_signatures == song.time_signatures
    if STAGES[stage].parts:
        assert back.parts[0].name == STAGES[stage].parts[0]
        assert back.parts[0].notes == stage_notes(song, stage)
    if STAGES[stage].chords:
        assert back.chords == song.chords
    assert len(back.bars()) <= len(song.bars())


def test_quantize_snaps_caps_and_bins():
    q = quantize(waltz_then_march())
    melody = q.part("melody").notes
    assert [(n.start, n.end) for n in melody[:2]] == [(0, 480), (480, 960)]
    long_note = melody[2]
    assert long_note.start == 2 * BAR_3_4 and long_note.duration == VOCAB.max_duration * Q
    assert all(n.velocity == VOCAB.velocity_value(VOCAB.velocity_bin(n.velocity)) for n in melody)
    # same onset and pitch: the longest stays
    accompaniment = q.part("accompaniment").notes
    assert [(n.start, n.end, n.pitch) for n in accompaniment] == [(0, 2040, 48), (Q, 4 * Q, 52)]
    # a chord longer than the duration cap is split, back to back
    last = [c for c in q.chords if c.root == 9]
    assert len(last) == 2 and last[0].end == last[1].start and last[1].end == 2 * BAR_3_4 + 7 * BAR_4_4
    assert quantize(q) == q  # idempotent


def test_quantize_separates_overlapping_notes_of_one_pitch():
    q = quantize(Song(parts=[Part("melody", [Note(0, 8 * Q, 60), Note(4 * Q, 6 * Q, 60), Note(0, 2 * Q, 62)])]))
    assert [(n.start, n.end, n.pitch) for n in q.part("melody").notes] == [(0, 2 * Q, 62), (0, 4 * Q, 60), (4 * Q, 6 * Q, 60)]


@pytest.mark.parametrize("stage", list(STAGES))
def test_round_trip_3_4_with_meter_and_tempo_changes(stage):
    assert_round_trip(quantize(waltz_then_march()), stage)


def test_tokens_layout_of_a_waltz():
    q = quantize(waltz_then_march())
    tokens = encode(q, "chord+melody")
    assert tokens.dtype == np.int64 and tokens.shape[1] == N_FIELDS == len(FIELDS)
    kinds = tokens[:, TYPE].tolist()
    assert kinds[0] == TokenType.BOS and kinds[-1] == TokenType.EOS
    assert kinds.count(TokenType.BAR) == len(q.bars())
    assert kinds[1:7] == [TokenType.BAR, TokenType.POSITION, TokenType.CHORD, TokenType.NOTE,
                          TokenType.POSITION, TokenType.NOTE]
    assert (tokens.max(axis=0) < np.array(VOCAB.sizes)).all() and (tokens >= 0).all()
    # every stage of a song has the same bars
    bar_counts = {s: int((encode(q, s)[:, TYPE] == TokenType.BAR).sum()) for s in STAGES}
    assert len(set(bar_counts.values())) == 1


def test_tempo_is_per_bar_and_binned():
    q = quantize(waltz_then_march())
    back = decode(encode(q, "melody"), "melody")
    # the change inside bar 2 shows from bar 3; the bar-3 change is kept
    assert [t.tick for t in back.tempos] == [0, 2 * BAR_3_4]
    for decoded, bpm in zip(back.tempos, (90.0, 150.0)):
        assert abs(decoded.bpm / bpm - 1) < 0.02
    assert back.tempos[0].bpm == VOCAB.tempo_value(VOCAB.tempo_bin(90.0))


def test_metrical_context_counts_bars_and_beats():
    q = quantize(waltz_then_march())
    tokens = encode(q, "melody")
    context = metrical_context(tokens)
    kinds = tokens[:, TYPE]
    notes = np.flatnonzero(kinds == TokenType.NOTE)
    # notes at (bar 0, beat 0), (bar 0, beat 1), (bar 2, beat 0)
    assert context["bar"][notes].tolist() == [0, 0, 2]
    assert context["beat"][notes].tolist() == [0, 1, 0]
    assert context["tempo"][notes].tolist() == [1 + VOCAB.tempo_bin(90.0)] * 2 + [1 + VOCAB.tempo_bin(150.0)]
    assert context["bar"][-1] == len(q.bars()) - 1


def test_eighth_note_metre_and_beats():
    song = quantize(Song(parts=[Part("melody", [Note(6 * Q, 8 * Q, 70), Note(12 * Q, 13 * Q, 72)])],
                         time_signatures=[TimeSignature(0, 6, 8)]))
    assert_round_trip(song, "melody")
    context = metrical_context(encode(song, "melody"))
    tokens = encode(song, "melody")
    notes = np.flatnonzero(tokens[:, TYPE] == TokenType.NOTE)
    assert context["bar"][notes].tolist() == [0, 1] and context["beat"][notes].tolist() == [3, 0]


def test_encode_refuses_unquantised_or_unsupported():
    with pytest.raises(CuesmithError, match="quantize"):
        encode(Song(parts=[Part("melody", [Note(0, 100, 60)])]), "melody")
    with pytest.raises(CuesmithError, match="5/8"):
        encode(Song(time_signatures=[TimeSignature(0, 5, 8)]), "chord")
    with pytest.raises(CuesmithError, match="stage"):
        encode(Song(), "drums")
    with pytest.raises(CuesmithError, match="before the song"):
        encode(Song(parts=[Part("melody", [Note(-120, 0, 60)])]), "melody")


def test_decode_skips_nonsense_from_a_model():
    q = quantize(waltz_then_march())
    tokens = encode(q, "melody")
    garbage = np.array([[TokenType.NOTE, 0, 0, 0, 0, 0, 61, 4, 5],  # note before any bar
                        [TokenType.BAR, 0, 0, 0, 0, 0, 0, 0, 0],  # bar without a metre
                        [99, 0, 0, 0, 0, 0, 0, 0, 0]])
    noisy = np.concatenate([tokens[:1], garbage, tokens[1:], tokens[1:3]])  # content after EOS
    back = decode(noisy, "melody")
    assert back.parts[0].notes == q.part("melody").notes
    # a position beyond a 3/4 bar drops its notes
    bad = tokens.copy()
    bad[2, 3] = 1 + 13
    assert len(decode(bad, "melody").parts[0].notes) == len(q.part("melody").notes) - 1


def test_transpose_tokens_moves_notes_and_roots():
    q = quantize(waltz_then_march())
    tokens = encode(q, "chord+melody")
    up = transpose_tokens(tokens, 3)
    back = decode(up, "chord+melody")
    assert [n.pitch for n in back.parts[0].notes] == [n.pitch + 3 for n in q.part("melody").notes]
    assert [c.root for c in back.chords] == [None if c.root is None else (c.root + 3) % 12 for c in q.chords]
    assert transpose_tokens(tokens, 0).tolist() == tokens.tolist()
    assert transpose_tokens(tokens, 61) is None  # 67 + 61 > 127
    assert transpose_tokens(tokens, -61) is None
    untouched = tokens[:, [c for c in range(N_FIELDS) if c not in (PITCH, ROOT)]]
    assert (up[:, [c for c in range(N_FIELDS) if c not in (PITCH, ROOT)]] == untouched).all()


def test_empty_song_is_one_empty_bar():
    tokens = encode(Song(), "accompaniment")
    assert tokens[:, TYPE].tolist() == [TokenType.BOS, TokenType.BAR, TokenType.EOS]
    assert decode(tokens, "accompaniment").parts[0].notes == []
