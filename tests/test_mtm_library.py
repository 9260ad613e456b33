"""MTM's music bridge: items analysed from their audio, broad and target retrieval, the index on disk."""
import numpy as np
import pytest

from cuesmith.engine.codec.runtime import Codec
from cuesmith.engine.pipelines.mtm.describe import Attributes
from cuesmith.engine.pipelines.mtm.library import Library, embedding_dim, item_from_audio
from cuesmith.engine.pipelines.mtm.text import HashedText

from mtm_helpers import RATE, piece

PIECES = {"fast-a": (125, "major", 220.0), "fast-b": (130, "major", 262.0),  # the tracker halves 128 and 135
          "slow": (75, "minor", 220.0), "medium": (105, "major", 196.0)}


@pytest.fixture(scope="module")
def library():
    codec = Codec.load(threads=1)
    items = [item_from_audio(name, piece(bpm, mode, root=root), RATE, codec)
             for name, (bpm, mode, root) in PIECES.items()]
    return Library(items, HashedText())


def test_items_carry_the_attributes_of_their_audio(library):
    by_name = {item.path: item for item in library.items}
    assert [by_name[n].tempo for n in PIECES] == ["fast", "fast", "slow", "medium"]
    assert by_name["slow"].mood in ("sad", "anxious")  # minor reads negative
    assert by_name["fast-a"].embedding.shape == (embedding_dim(128),)
    assert by_name["fast-a"].latent.shape == (400, 128)  # 8 s at 50 Hz


def test_target_retrieval_returns_the_partition(library):
    fast = library.items[0].attributes
    found = library.target(fast, "fast music", k=5)
    assert {item.path for item in found} == {"fast-a", "fast-b"}
    assert all(item.attributes == fast for item in found)
    assert library.target(Attributes("slow", "happy"), k=5) == []


def test_broad_retrieval_follows_the_description(library):
    slow = next(i for i in library.items if i.path == "slow")
    assert library.broad(slow.caption, k=1)[0].path == "slow"
    assert library.broad("medium tempo relaxed", k=1)[0].tempo == "medium"


def test_index_round_trips(library, tmp_path):
    library.save(tmp_path)
    again = Library.load(tmp_path, HashedText())
    assert [i.caption for i in again.items] == [i.caption for i in library.items]
    np.testing.assert_allclose(again.items[2].latent, library.items[2].latent, rtol=2e-3, atol=1e-3)  # float16


def test_captions_and_video_descriptions_share_the_partition_words():
    from cuesmith.engine.music import mood
    from cuesmith.engine.pipelines.mtm.describe import caption, tempo_class

    assert [tempo_class(b) for b in (60, 89.9, 90, 119.9, 120)] == ["slow", "slow", "medium", "medium", "fast"]
    words = caption(126, 0.8, 0.7, "major").split()
    assert words[:3] == ["fast", mood.label(0.8, 0.7), "major"] and "126" in words


def test_builds_from_a_folder_of_the_users_music(tmp_path):
    from scipy.io import wavfile

    files = []
    for name, bpm in (("a.wav", 75), ("b.wav", 105)):
        wavfile.write(tmp_path / name, RATE, piece(bpm, "minor"))
        files.append(tmp_path / name)
    seen = []
    built = Library.build(files, Codec.load(threads=1), HashedText(), progress=lambda s, f: seen.append(f))
    assert [i.path for i in built.items] == [str(f) for f in files] and seen[-1] == 1.0
    assert [i.tempo for i in built.items] == ["slow", "medium"]


def test_a_users_description_names_its_own_partition():
    from cuesmith.engine.pipelines.mtm.describe import attributes_of

    video = Attributes("fast", "happy")
    assert attributes_of("slow sad piano", video) == Attributes("slow", "sad")
    assert attributes_of("calm strings, 72 bpm", video) == Attributes("slow", "happy")  # the mood left to the video
    assert attributes_of("something anxious", video) == Attributes("fast", "anxious")
    assert attributes_of("anything at all", None) is None


def test_annotations_win_over_the_analysis(library):
    codec = Codec.load(threads=1)
    item = item_from_audio("told", piece(75, "minor"), RATE, codec, bpm=132.0, mode="major",
                           instruments="flute and strings")
    assert item.tempo == "fast" and item.bpm == 132.0
    assert item.caption.startswith("fast ") and " major " in item.caption and item.caption.endswith("flute and strings")
