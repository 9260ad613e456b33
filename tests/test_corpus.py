"""The audio corpus and its paired videos: deterministic, aligned, and cut where planned."""
from dataclasses import replace

import numpy as np
import pytest

from cuesmith.engine.corpus.audio import (CorpusConfig, Variant, available_soundfonts, build, corpus_dir,
                                          load_excerpts, parse_phrases, parse_song_range, plan_variants,
                                          variant_song)
from cuesmith.engine.music.pop909 import load_song
from cuesmith.engine.corpus.video import VideoConfig, build_paired, plan_video
from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.video.analysis import analyze

from pop909_marks import needs_data

SHORT = replace(CorpusConfig(), seconds=12.0)


def test_phrase_labels_parse():
    assert parse_phrases("i4A4B8o3") == [("i", 4), ("A", 4), ("B", 8), ("o", 3)]
    assert parse_song_range("1-3,701") == [1, 2, 3, 701]
    with pytest.raises(CuesmithError):
        parse_song_range("1-x")


@needs_data
def test_variants_are_seeded_and_vary():
    first = plan_variants(range(1, 21), 2, SHORT)
    assert first == plan_variants(range(1, 21), 2, SHORT)
    assert first != plan_variants(range(1, 21), 2, replace(SHORT, seed=SHORT.seed + 1))
    assert len({v.soundfont for v in first}) == len(available_soundfonts()) > 1
    assert len({v.transpose for v in first}) > 3 and len({v.melody_program for v in first}) > 3
    assert {v.split for v in plan_variants([700, 701], 1, SHORT)} == {"train", "valid"}


@needs_data
def test_a_phrase_label_past_the_last_note_is_not_an_excerpt_start():
    """Songs 173 and 231 label phrases after their MIDI ends; their variants start inside the music."""
    for number in (173, 231):
        variant = replace(plan_variants([number], 1, SHORT)[0], start_phrase=99)
        song, start, end, _ = variant_song(load_song(number), variant, SHORT.seconds)
        assert start < end and any(part.notes for part in song.parts)


@needs_data
def test_excerpt_renders_into_the_cache_with_its_structure(tmp_path):
    [variant] = plan_variants([3], 1, SHORT, soundfonts=["timgm6mb"])
    result = build([variant], SHORT)
    [excerpt] = result.excerpts
    assert str(corpus_dir()) in excerpt.audio_path and load_excerpts("train")[0].id == excerpt.id
    audio = excerpt.audio()
    assert excerpt.sample_rate == 32_000 and len(audio) == pytest.approx(excerpt.seconds * 32_000, abs=1)
    assert SHORT.seconds <= excerpt.seconds < SHORT.seconds + 8  # whole bars, plus the release tail
    assert abs(excerpt.loudness_lufs - (-16.0)) < 1.5 and np.abs(audio).max() < 1.0
    downbeats = [t for t, down in excerpt.beats if down]
    assert downbeats[0] == 0.0 and excerpt.phrases[0][0] == 0.0  # starts on a phrase's first downbeat
    assert all(any(abs(t - d) < 1e-3 for d in downbeats) for t, _ in excerpt.phrases)
    assert result.rate_per_cpu_hour() > 0
    again = build([variant], SHORT).excerpts[0]  # read back, not rendered again
    assert again.audio_path == excerpt.audio_path and again.cpu_seconds == excerpt.cpu_seconds


@needs_data
def test_paired_video_is_cut_where_planned_and_deterministic():
    [variant] = plan_variants([10], 1, SHORT, soundfonts=["timgm6mb"])
    [excerpt] = build([variant], SHORT).excerpts
    config = VideoConfig(size=(160, 96))
    video, plan = build_paired(excerpt, config)
    assert len(plan.cuts) >= 3
    again = plan_video(excerpt, excerpt.audio(), config)
    assert again.cuts == plan.cuts and again.shots == plan.shots and again.speed == plan.speed
    detected = [c.frame for c in analyze(video).cuts]
    for frame in plan.cut_frames():  # every planned cut found within a frame ...
        assert min(abs(frame - d) for d in detected) <= 1, (plan.cut_frames(), detected)
    assert len(detected) == len(plan.cuts)  # ... and nothing else read as a cut
    downbeats = [t for t, down in excerpt.beats if down]
    assert all(min(abs(t - d) for d in downbeats) < 1e-3 for t in plan.cuts)
    # motion follows onset density: the fastest frames sit where the music is busiest
    assert max(plan.speed) > 2 * min(plan.speed)
