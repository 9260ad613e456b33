"""`cuesmith describe`: POP909 validation songs and a rendered excerpt, fact-checked; 2 s windows end to end;
cuts on beats through OpenTimelineIO; lyrics; bad input; the OSC job and the panel tab."""
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import panel_helpers  # noqa: F401  (Qt offscreen, before pytest-qt makes the QApplication)
from pop909_marks import needs_data
from cuesmith.engine.describe import WINDOW_S, check_description, describe
from cuesmith.engine.describe.lyrics import load_lyrics, parse_lrc
from cuesmith.engine.describe.prose import wordless
from cuesmith.engine.describe.tags import read_tags
from cuesmith.engine.errors import CuesmithError

VALIDATION_SONGS = (701, 745)


@pytest.fixture(scope="module")
def pop909_descriptions():
    from cuesmith.engine.music import pop909

    return {n: describe(pop909.song_dir(n) / f"{n:03d}.mid") for n in VALIDATION_SONGS}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The first 25 s of song 702 rendered to WAV (the one render of this module)."""
    from cuesmith.engine.music import pop909
    from cuesmith.engine.music.render import render_audio, write_wav

    song = pop909.load_song(702).song
    end = int(song.seconds_to_tick(25.0))
    parts = [replace(p, notes=[n for n in p.notes if n.end <= end]) for p in song.parts]
    audio = render_audio(replace(song, parts=parts, chords=[]))
    return write_wav(audio.mix, tmp_path_factory.mktemp("render") / "excerpt.wav", audio.sample_rate)


def assert_windows_cover(d):
    bounds = [(w.start, w.end) for w in d.windows]
    assert bounds[0][0] == 0.0 and bounds[-1][1] == pytest.approx(d.analysis.duration, abs=1e-3)
    assert all(b[1] == pytest.approx(c[0]) for b, c in zip(bounds, bounds[1:]))
    assert all(e - s == pytest.approx(WINDOW_S) for s, e in bounds[:-1])
    assert 0 < bounds[-1][1] - bounds[-1][0] <= WINDOW_S
    assert [w.index for w in d.windows] == list(range(len(d.windows)))


def assert_cuts_on_beats(d):
    beats = np.array(d.analysis.beats)
    assert d.cuts and all(np.min(np.abs(beats - c.time)) < 1e-3 for c in d.cuts)
    assert sorted(c.time for c in d.cuts) == [c.time for c in d.cuts]
    assert [c for w in d.windows for c in w.cuts] == [c.time for c in d.cuts]  # each cut in its window
    assert [s.start for s in d.shots] == [0.0] + [c.time for c in d.cuts]  # a shot from each cut to the next
    starts = [s.start for s in d.shots]
    running = [d.shots[int(np.searchsorted(starts, w.start, "right")) - 1] for w in d.windows]
    assert all(w.shot.startswith(f"shot {shot.number}: {shot.framing}") for w, shot in zip(d.windows, running))


def assert_facts_match(d):
    a = d.analysis
    assert check_description(d) is None
    assert f"{a.tempo:.0f} BPM" in d.overview.text and a.key in d.overview.text
    for s in a.sections:
        assert f"{s.name} at " in d.overview.text
    assert {w.section for w in d.windows} <= {s.name for s in a.sections}


@needs_data
@pytest.mark.parametrize("number", VALIDATION_SONGS)
def test_pop909_descriptions_match_the_analysis(pop909_descriptions, number):
    d = pop909_descriptions[number]
    from cuesmith.engine.music import pop909

    annotated = np.array([t for t, _ in pop909.read_beats(pop909.song_dir(number) / "beat_midi.txt")])
    assert d.analysis.tempo == pytest.approx(60 / np.median(np.diff(annotated)), rel=0.02)  # the file's own tempo
    assert_facts_match(d)
    assert_windows_cover(d)
    assert_cuts_on_beats(d)
    assert len(d.analysis.sections) >= 3 and d.analysis.sections[0].start == 0.0
    data = d.to_dict()
    assert (data["schema"], data["schema_version"]) == ("cuesmith.description", 1)
    json.dumps(data, allow_nan=False)


@needs_data
def test_the_fact_check_catches_invented_facts(pop909_descriptions):
    d = pop909_descriptions[701]
    a = d.analysis
    base = d.overview.text
    wrong_key = "F# minor" if a.key != "F# minor" else "C major"
    for text, expected in ((f"{base} It peaks at 00:00.7.", "not a measured time"),
                           (f"{base} A pulse of {a.tempo + 12:.0f} BPM.", "tempo"),
                           (f"{base} Written in {wrong_key}.", "key"),
                           (f"{base} The verse 9 soars.", "section verse 9")):
        trial = replace(d, overview=replace(d.overview, text=text))
        problem = check_description(trial)
        assert problem and expected in problem, (text, problem)


def test_a_model_answer_without_words_is_refused(pop909_descriptions):
    # Gemma 3 270M (base) answered "..." everywhere: no wrong fact, and nothing said
    d = pop909_descriptions[701]
    assert wordless(d) is None  # the template says something
    for text in ("...", "", "1 2 3", "ok"):
        problem = wordless(replace(d, overview=replace(d.overview, text=text)))
        assert problem and "overview" in problem, (text, problem)
    ideas = dict(d.section_ideas, **{next(iter(d.section_ideas)): "..."})
    assert "section idea" in wordless(replace(d, section_ideas=ideas))


@needs_data
def test_rendered_audio_is_described_and_fact_checked(rendered):
    d = describe(rendered)
    assert d.analysis.kind == "audio" and d.analysis.tempo and d.analysis.key
    assert_facts_match(d)
    assert_windows_cover(d)
    assert_cuts_on_beats(d)


@needs_data
def test_saved_cuts_import_with_opentimelineio_on_beats(pop909_descriptions, tmp_path):
    otio = pytest.importorskip("opentimelineio")
    d = pop909_descriptions[745]
    files = d.save(tmp_path, fps=25)
    beats = np.array(d.analysis.beats)
    for path, adapter in ((files.otio, "otio_json"), (files.edl, "cmx_3600")):
        options = {"rate": 25} if adapter == "cmx_3600" else {}
        timeline = otio.adapters.read_from_file(str(path), adapter_name=adapter, **options)
        video = next(t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video)
        starts = [clip.range_in_parent().start_time.to_seconds() for clip in video.find_clips()]
        cuts = starts[1:]
        assert len(cuts) == len(d.cuts)
        assert all(np.min(np.abs(beats - c)) <= 0.5 / 25 + 1e-6 for c in cuts), path  # on a beat, to the frame
        if adapter == "otio_json":
            assert [c.metadata["cuesmith"]["framing"] for c in video.find_clips()] == [s.framing for s in d.shots]
    saved = json.loads(files.json.read_text())
    assert saved["files"]["otio"] == "cuts.otio" and len(saved["windows"]) == len(d.windows)
    assert "## Sections" in files.markdown.read_text()
    again = d.save(tmp_path, fps=25)  # never replaces
    assert again.json.name == "description-2.json" and again.otio.name == "cuts-2.otio"
    assert json.loads(files.json.read_text()) == saved


@needs_data
def test_lrc_lines_land_in_their_windows_and_plain_lyrics_spread_over_sections(pop909_descriptions, tmp_path):
    d = pop909_descriptions[701]
    lrc = tmp_path / "song.lrc"
    lrc.write_text("[ti:test]\n[offset:+500]\n[00:10.50]I hold your heart tonight\n[00:33.20][01:05.00]the city lights "
                   "in the rain, my love\n", encoding="utf-8")
    lyrics = load_lyrics(lrc, d.analysis.sections, d.analysis.duration)
    assert lyrics.timed and [line.time for line in lyrics.lines] == [10.0, 32.7, 64.5]
    described = describe(d.analysis.source, lyrics=lrc)
    by_window = {w.index: w.lyrics for w in described.windows if w.lyrics}
    assert by_window == {5: ["I hold your heart tonight"], 16: ["the city lights in the rain, my love"],
                         32: ["the city lights in the rain, my love"]}
    assert "love" in described.overview.themes and check_description(described) is None
    plain = tmp_path / "plain.txt"
    plain.write_text("\n".join(f"line {i}" for i in range(12)), encoding="utf-8")
    spread = load_lyrics(plain, d.analysis.sections, d.analysis.duration)
    times = [line.time for line in spread.lines]
    assert not spread.timed and len(times) == 12 and times == sorted(times)
    sung = [s for s in d.analysis.sections if s.name not in ("intro", "outro")]
    assert all(any(s.start <= t < s.end for s in sung) for t in times)
    assert parse_lrc("just words\nno times") == []


def test_tags_name_the_genre_and_mv_type():
    reading = read_tags("Ballad, mv: story narrative, rainy night")
    assert (reading.genre, reading.mv_type, reading.other) == ("ballad", "Story Narrative", ["rainy night"])
    assert read_tags("dance performance").mv_type == "Dance Performance"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "cuesmith.engine.cli", "describe", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name,content", [("missing.mid", None), ("noise.wav", b"RIFF not really a wave"),
                                          ("empty.mid", b""), ("text.mp3", b"hello")])
def test_bad_music_files_exit_2_with_one_line_and_write_nothing(tmp_path, name, content):
    music = tmp_path / name
    if content is not None:
        music.write_bytes(content)
    out = tmp_path / "out"
    done = run_cli(music, "--out", out)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and str(music) in done.stderr
    assert not out.exists()


def test_files_without_music_exit_2_and_a_single_note_is_still_described(tmp_path):
    import mido

    from cuesmith.engine.music.render import write_wav

    silent = write_wav(np.zeros((44100 * 3, 2), np.float32), tmp_path / "silent.wav", 44100)
    empty = tmp_path / "no-notes.mid"
    midi = mido.MidiFile()
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    midi.save(empty)
    for music, reason in ((silent, "silent"), (empty, "no notes")):
        done = run_cli(music, "--out", tmp_path / "out")
        assert done.returncode == 2 and reason in done.stderr and not (tmp_path / "out").exists()
    one = tmp_path / "one.mid"
    midi.tracks[0] += [mido.Message("note_on", note=60, velocity=80), mido.Message("note_off", note=60, time=480)]
    midi.save(one)
    d = describe(one)
    assert d.analysis.tempo is None and "without a steady beat" in d.overview.text and check_description(d) is None
    assert_windows_cover(d)


@needs_data
def test_cli_describes_with_lyrics_and_tags(tmp_path):
    from cuesmith.engine.music import pop909

    lyrics = tmp_path / "words.txt"
    lyrics.write_text("we drive all night\nunder the stars\n", encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00bad")
    music = pop909.song_dir(745) / "745.mid"
    refused = run_cli(music, "--lyrics", bad, "--out", tmp_path / "never")
    assert refused.returncode == 2 and "UTF-8" in refused.stderr and not (tmp_path / "never").exists()
    done = run_cli(music, "--lyrics", lyrics, "--tags", "pop, lyric video", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "genre: pop (tags" in done.stdout and "MV type: Lyric Video" in done.stdout
    saved = json.loads((tmp_path / "out" / "description.json").read_text())
    assert saved["overview"]["genre_source"] == "tags" and saved["lyrics"]["lines"][0]["text"] == "we drive all night"


@needs_data
def test_a_tiny_gguf_cannot_replace_the_template(pop909_descriptions, tmp_path):
    pytest.importorskip("llama_cpp")
    from tiny_gguf import write_tiny_gguf

    from cuesmith.engine.describe import apply_llm

    d = pop909_descriptions[745]
    template = d.overview.text
    trial = replace(d, overview=replace(d.overview), section_ideas=dict(d.section_ideas))
    apply_llm(trial, write_tiny_gguf(tmp_path / "tiny.gguf"), time_limit=20, max_tokens=120)
    assert trial.prose_source == "template" and trial.overview.text == template
    assert trial.prose_note.endswith("template prose")
    missing = replace(d, overview=replace(d.overview), section_ideas=dict(d.section_ideas))
    apply_llm(missing, tmp_path / "none.gguf")
    assert "not found" in missing.prose_note


@needs_data
def test_describe_over_osc_runs_a_job(tmp_path):
    from bridge_helpers import short_clip  # noqa: F401  (the bridge tests' helpers import cleanly)
    from cuesmith.engine.music import pop909
    from cuesmith.engine.service import JobService
    from cuesmith.plugin_bridge.protocol import CollectingChannel, Dispatcher, encode_message

    service = JobService(journal=tmp_path / "journal.sqlite", output_root=tmp_path / "jobs")
    try:
        channel = CollectingChannel("memory:1")
        request = json.dumps({"music": str(pop909.song_dir(701) / "701.mid"), "tags": "ballad"})
        Dispatcher(service).handle_packet(encode_message("/cuesmith/describe", ["d1", request]), channel)
        assert [m.address for m in channel.replies] == ["/cuesmith/accepted"]
        job_id = channel.replies[0].args[1]
        service.start()
        done = service.wait(job_id, timeout=120)
        assert done.state == "done", done.error
        assert done.kind == "describe" and done.result.endswith("description.json")
        assert json.loads(Path(done.result).read_text())["overview"]["genre"] == "ballad"
    finally:
        service.stop(wait=True)


def test_the_panel_tab_submits_a_describe_request(qtbot, tmp_path):
    from cuesmith.gui.describe_view import DescribeView

    view = DescribeView()
    qtbot.addWidget(view)
    music, lyrics = tmp_path / "a.wav", tmp_path / "a.lrc"
    view.set_music(str(music))
    view.set_lyrics(str(lyrics))
    view.tags.setText("rock")
    with qtbot.waitSignal(view.submit_requested) as signal:
        view.button.click()
    kind, request, title, origin = signal.args
    assert (kind, origin) == ("describe", "describe")
    assert request == {"music": str(music.resolve()), "lyrics": str(lyrics.resolve()), "tags": "rock"}
    (tmp_path / "description.md").write_text("# Music-video description: a.wav\n\nhello\n")
    view.show_result(str(tmp_path / "description.json"))
    assert "hello" in view.view.toPlainText()
