import numpy as np
import pytest

from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.music import dataset
from cuesmith.engine.music.dataset import (Example, allowed_shifts, augmented, build_split, cache_key,
                                           every_transposition, song_tokens, transpose_song)
from cuesmith.engine.music.score import Chord, Key, Note, Part, Song
from cuesmith.engine.music.tokens import (PITCH, STAGES, TYPE, TokenType, TokenVocab, decode, encode,
                                          quantize)


from pop909_marks import needs_data  # noqa: E402


def small_song() -> Song:
    return Song(parts=[Part("melody", [Note(0, 480, 60), Note(480, 960, 120)]),
                       Part("accompaniment", [Note(0, 1920, 40), Note(0, 1920, 47)])],
                chords=[Chord(0, 960, 0, "M"), Chord(960, 1920, None), Chord(1920, 3840, 10, "m7")],
                key=Key(0, "major"))


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("shift", [-5, -1, 3, 6])
def test_transposing_tokens_equals_encoding_the_transposed_song(stage, shift):
    song = quantize(small_song())
    moved = transpose_song(song, shift)
    assert moved.key.tonic == shift % 12 and moved.chords[1].root is None
    assert (encode(moved, stage) == dataset.transpose_tokens(encode(song, stage), shift)).all()


def test_transpositions_that_leave_the_midi_range_are_skipped():
    song = quantize(small_song())  # highest pitch 120
    assert transpose_song(song, 8) is None
    sequences = [encode(song, "melody"), encode(song, "accompaniment")]
    assert allowed_shifts(sequences, range(-5, 7)) == (-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6)
    assert allowed_shifts(sequences, range(0, 12)) == tuple(range(0, 8))
    assert allowed_shifts([encode(song, "chord")], (-5, 6)) == (-5, 6)  # chords have no pitch limit
    example = Example(1, sequences[1], sequences[0], allowed_shifts(sequences, range(0, 12)))
    with pytest.raises(ValueError):
        example.transposed(9)
    up = example.transposed(7)
    assert up.shift == 7 and up.shifts == (0,)
    assert decode(up.target, "melody").parts[0].notes[-1].pitch == 127


@needs_data
def test_cache_is_written_once_reused_and_rebuilt_when_stale(tmp_path, monkeypatch):
    sequences = song_tokens(701, tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert [f.name for f in files] == [f"pop909-701-{cache_key()}.npz"]
    assert set(sequences) == set(STAGES) and all(s.dtype == np.int16 for s in sequences.values())
    assert not list(tmp_path.glob(".*"))  # no temporary files left

    def no_loading(*args, **kwargs):
        raise AssertionError("loaded the song again")

    with monkeypatch.context() as patch:
        patch.setattr(dataset.pop909, "load_song", no_loading)
        again = song_tokens(701, tmp_path)
    assert all((again[s] == sequences[s]).all() for s in STAGES)

    files[0].write_bytes(b"damaged")
    assert (song_tokens(701, tmp_path)["melody"] == sequences["melody"]).all()
    monkeypatch.setattr(dataset, "_fingerprint", lambda folder: "changed")
    calls = []
    original = dataset.pop909.load_song
    monkeypatch.setattr(dataset.pop909, "load_song", lambda *a: calls.append(a) or original(*a))
    song_tokens(701, tmp_path)
    assert len(calls) == 1
    # another vocabulary is another cache entry
    song_tokens(701, tmp_path, vocab=TokenVocab(velocity_bins=8))
    assert len(list(tmp_path.glob("*.npz"))) == 2


@needs_data
def test_build_split_pairs_sources_and_targets(tmp_path):
    fractions = []
    by_stage = {stage: build_split("valid", stage, songs=[701, 702], cache=tmp_path,
                                   progress=lambda name, f: fractions.append(f))
                for stage in ("chord", "melody", "accompaniment")}
    assert fractions[-1] == 1.0 and len(fractions) == 6
    chord, melody, accompaniment = by_stage["chord"], by_stage["melody"], by_stage["accompaniment"]
    assert [e.song for e in melody] == [701, 702]
    assert chord[0].source is None
    assert (melody[0].source == chord[0].target).all()
    assert (accompaniment[0].source[:, TYPE] == TokenType.NOTE).sum() == (melody[0].target[:, TYPE] == TokenType.NOTE).sum()
    for example in melody + accompaniment:
        assert example.shifts == (0,)
        bars = [(seq[:, TYPE] == TokenType.BAR).sum() for seq in (example.source, example.target)]
        assert bars[0] == bars[1] > 10


@needs_data
def test_train_split_transposes_on_the_fly(tmp_path):
    examples = build_split("train", "accompaniment", songs=[1, 2], cache=tmp_path)
    assert all(set(e.shifts) <= set(range(-5, 7)) and len(e.shifts) >= 10 for e in examples)
    rng = np.random.default_rng(0)
    for plain, moved in zip(examples, augmented(examples, rng)):
        notes = plain.target[:, TYPE] == TokenType.NOTE
        assert (moved.target[notes, PITCH] - plain.target[notes, PITCH] == moved.shift).all()
        assert moved.shift in plain.shifts
    assert len(list(every_transposition(examples))) == sum(len(e.shifts) for e in examples)


def test_bad_split_or_stage():
    with pytest.raises(CuesmithError, match="split"):
        build_split("test", "melody")
    with pytest.raises(CuesmithError, match="stage"):
        build_split("train", "drums")


@needs_data
def test_default_cache_follows_the_cache_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv("CUESMITH_CACHE_DIR", str(tmp_path))
    assert dataset.cache_dir() == tmp_path / "tokens"
    song_tokens(703)
    assert [p.name for p in (tmp_path / "tokens").iterdir()] == [f"pop909-703-{cache_key()}.npz"]
