"""Timelines (EDL, FCP7 XML, FCPXML, .otio) scored as one piece, and the score written back as a timeline."""
import json
import os
import subprocess
from pathlib import Path

import opentimelineio as otio
import pytest
from opentimelineio import opentime, schema

from cuesmith.engine import Engine
from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.schema import ScoreRequest, ScoreResult
from cuesmith.plugin_bridge.timeline import clips_for_timeline, read_timeline, write_scored_timeline
from media import Shot, make_video
from vmusprod_helpers import shipped_model

RATE = 30
FRAME = 1 / RATE
# name -> shots of the file, and the (start, end) seconds of it the timeline uses
CLIPS = {"a": ([Shot(1.5, "warm", 0.3), Shot(1.5, "cold", 0.8)], (0.5, 3.0)),  # inner cut at 1.0 of the clip
         "b": ([Shot(2.0, "forest", 0.2)], (0.0, 2.0)),  # the whole file
         "c": ([Shot(1.0, "dusk", 0.4), Shot(2.0, "neon", 0.6)], (0.0, 2.5))}  # inner cut at 1.0, tail unused
BOUNDARIES = [2.5, 4.5]  # on the timeline, from the first clip's start
INNER_CUTS = [1.0, 5.5]
DURATION = 7.0
HOUR = 3600.0


def rt(seconds: float) -> opentime.RationalTime:
    return opentime.RationalTime(round(seconds * RATE), RATE)


def span(start: float, end: float) -> opentime.TimeRange:
    return opentime.TimeRange(rt(start), rt(end - start))


def otio_timeline(media: Path, absolute: bool, gap_before_c: float = 0.0) -> schema.Timeline:
    timeline = schema.Timeline(name="cuesmith test", global_start_time=rt(HOUR))
    track = schema.Track(name="V1", kind=schema.TrackKind.Video)
    for name, (shots, (start, end)) in CLIPS.items():
        path = (media / f"{name}.mp4").resolve()
        url = otio.url_utils.url_from_filepath(str(path)) if absolute else f"media/{name}.mp4"
        reference = schema.ExternalReference(target_url=url, available_range=span(0, sum(s.duration for s in shots)))
        if name == "c" and gap_before_c:
            track.append(schema.Gap(source_range=span(0, gap_before_c)))
        track.append(schema.Clip(name=name, media_reference=reference, source_range=span(start, end)))
    timeline.tracks.append(track)
    return timeline


EDL = """TITLE: cuesmith test
FCM: NON-DROP FRAME

001  A        V     C        00:00:00:15 00:00:03:00 01:00:00:00 01:00:02:15
* FROM CLIP NAME:  a.mp4
002  REELB    V     C        00:00:00:00 00:00:02:00 01:00:02:15 01:00:04:15
* SOURCE FILE: b.mp4
003  c        V     C        00:00:00:00 00:00:02:15 01:00:04:15 01:00:07:00
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Three clip files in media/ and the same three-clip edit as .otio, FCP7 .xml, .fcpxml and .edl."""
    folder = tmp_path_factory.mktemp("timeline")
    media = folder / "media"
    for name, (shots, _) in CLIPS.items():
        make_video(media / f"{name}.mp4", shots)
    otio.adapters.write_to_file(otio_timeline(media, absolute=False), str(folder / "edit.otio"))
    absolute = otio_timeline(media, absolute=True)
    otio.adapters.write_to_file(absolute, str(folder / "edit.xml"), adapter_name="fcp_xml")
    otio.adapters.write_to_file(absolute, str(folder / "edit.fcpxml"), adapter_name="fcpx_xml")
    (folder / "edl").mkdir()
    (folder / "edl" / "edit.edl").write_text(EDL)  # names only: found through media_dir
    return folder


def timeline_file(project: Path, suffix: str) -> Path:
    return project / ("edl/edit.edl" if suffix == ".edl" else f"edit{suffix}")


def media_dir(project: Path, suffix: str):
    return project / "media" if suffix == ".edl" else None


@pytest.mark.parametrize("suffix", [".otio", ".xml", ".fcpxml", ".edl"])
def test_reads_the_clips_media_and_ranges(project, suffix):
    timeline = read_timeline(timeline_file(project, suffix), media_dir=media_dir(project, suffix))
    assert timeline.rate == RATE
    assert [c.media for c in timeline.clips] == [(project / "media" / f"{n}.mp4").resolve() for n in CLIPS]
    for clip, (_, (start, end)) in zip(timeline.clips, CLIPS.values()):
        assert clip.source_start == pytest.approx(start, abs=FRAME / 2)
        assert clip.source_end == pytest.approx(end, abs=FRAME / 2)
    records = [c.record_start - timeline.start for c in timeline.clips]
    assert records == pytest.approx([0.0, *BOUNDARIES], abs=FRAME / 2)
    assert timeline.duration == pytest.approx(DURATION, abs=FRAME / 2)
    # the .otio's global start, the EDL's record timecode 01:00:00:00; the FCPXML adapter keeps no tcStart
    assert timeline.start == pytest.approx(0.0 if suffix == ".fcpxml" else HOUR, abs=FRAME / 2)


def score(project: Path, suffix: str, out: Path, stems: bool = False) -> ScoreResult:
    shipped_model()
    path = timeline_file(project, suffix)
    request = ScoreRequest(clips=clips_for_timeline(path, media_dir(project, suffix)), timeline=str(path),
                           out_dir=str(out), seed=2, stems=stems)
    return Engine(cache_dir=project / "cache").score_and_save(request)


@pytest.fixture(scope="module")
def scored(project):
    """The .otio (with stems: the mix goes on the timeline) and the FCP7 XML, scored through the Engine."""
    return {".otio": score(project, ".otio", project / "out-otio", stems=True),
            ".xml": score(project, ".xml", project / "out-xml")}


def run_cli(cli: str, project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUESMITH_CACHE_DIR": str(project / "cache")}
    return subprocess.run([cli, "score", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def scored_edl(project):
    """The EDL through the CLI: `cuesmith score --timeline edit.edl --media-dir media --out DIR`."""
    from conftest import CLI

    shipped_model()
    out = project / "out-edl"
    run = run_cli(str(CLI) if CLI.exists() else "cuesmith", project, "--timeline", str(project / "edl/edit.edl"),
                  "--media-dir", str(project / "media"), "--out", str(out), "--no-stems", "--seed", "2")
    assert run.returncode == 0, run.stderr
    return ScoreResult.from_dict(json.loads((out / "result.json").read_text())), out, run.stdout


def results(scored, scored_edl) -> dict:
    return {**scored, ".edl": scored_edl[0]}


@pytest.mark.parametrize("suffix", [".otio", ".xml", ".edl"])
def test_one_score_cut_at_every_clip_boundary(scored, scored_edl, suffix):
    result = results(scored, scored_edl)[suffix]
    assert result.duration == pytest.approx(DURATION, abs=FRAME)
    for boundary in BOUNDARIES + INNER_CUTS:
        assert min(abs(t - boundary) for t in result.cut_times) <= FRAME, (boundary, result.cut_times)
    assert len(result.cut_times) == len(BOUNDARIES + INNER_CUTS)  # no cut counted twice
    assert len(result.request.clips) == 3 and result.request.timeline.endswith(f"edit{suffix}")


def test_the_cli_names_the_scored_timeline(scored_edl):
    _, out, stdout = scored_edl
    assert f"wrote {out / 'edit-scored.edl'}" in stdout
    assert (out / "edit-scored.edl").is_file()


def reopen(path: Path) -> schema.Timeline:
    return otio.adapters.read_from_file(str(path), **({"rate": RATE} if path.suffix == ".edl" else {}))


def score_clip(timeline: schema.Timeline) -> schema.Clip:
    clips = [c for t in timeline.audio_tracks() for c in t.find_clips() if c.name.endswith("score")]
    assert len(clips) == 1, [c.name for c in timeline.find_clips()]
    return clips[0]


def record_start(clip: schema.Clip, timeline: schema.Timeline) -> float:
    start = clip.transformed_time_range(clip.trimmed_range(), timeline.tracks).start_time.to_seconds()
    return start + (timeline.global_start_time.to_seconds() if timeline.global_start_time else 0.0)


def check_written(written: Path, result: ScoreResult, media: Path) -> None:
    timeline = reopen(written)
    clip = score_clip(timeline)
    first_video = next(c for c in timeline.video_tracks()[0].find_clips())
    assert record_start(clip, timeline) == pytest.approx(record_start(first_video, timeline), abs=FRAME / 2)
    assert record_start(clip, timeline) == pytest.approx(0.0 if written.suffix == ".fcpxml" else HOUR, abs=FRAME / 2)
    assert clip.trimmed_range().duration.to_seconds() == pytest.approx(result.duration, abs=FRAME)
    assert Path(otio.url_utils.filepath_from_url(clip.media_reference.target_url)) == media
    markers = {(m.name.lower(), round(m.marked_range.start_time.to_seconds() - clip.trimmed_range()
                                      .start_time.to_seconds(), 2)) for m in clip.markers}
    moments = json.loads(Path(result.critique["json"]).read_text())["key_moments"]
    assert moments
    for moment in moments:
        near = [t for name, t in markers if name == f"{moment['kind']} {moment['grade']}".lower()]
        assert near and min(abs(t - moment["time"]) for t in near) <= FRAME, (moment, sorted(markers))
    assert any(name.startswith("section") for name, _ in markers)


@pytest.mark.parametrize("suffix", [".otio", ".xml", ".edl", ".fcpxml"])
def test_written_back_timeline_has_the_score_and_its_markers(project, scored, scored_edl, suffix, tmp_path):
    result = scored[".otio"] if suffix == ".fcpxml" else results(scored, scored_edl)[suffix]
    if suffix == ".edl":
        written = scored_edl[1] / "edit-scored.edl"
    else:
        written = write_scored_timeline(timeline_file(project, suffix), result, tmp_path)
        assert written == tmp_path / f"edit-scored{suffix}"
    variation = result.variations[0]
    media = Path(variation.stems["mix"] if variation.stems else variation.midi).resolve()
    check_written(written, result, media)


def test_written_timeline_never_replaces_a_file(project, scored):
    source = timeline_file(project, ".otio")
    before = source.read_bytes()
    first = write_scored_timeline(source, scored[".otio"], project)
    second = write_scored_timeline(source, scored[".otio"], project)
    assert (first.name, second.name) == ("edit-scored.otio", "edit-scored-2.otio")
    assert source.read_bytes() == before


def test_written_timeline_finds_the_media_from_its_new_folder(project, scored, tmp_path):
    written = write_scored_timeline(timeline_file(project, ".otio"), scored[".otio"], tmp_path)  # relative media
    assert [c.media for c in read_timeline(written).clips] == [c.media for c in read_timeline(
        timeline_file(project, ".otio")).clips]


def test_the_top_video_track_wins(project, tmp_path):
    timeline = otio_timeline(project / "media", absolute=True)
    top = schema.Track(name="V2", kind=schema.TrackKind.Video)
    top.append(schema.Gap(source_range=span(0, 3.0)))
    reference = schema.ExternalReference(target_url=str((project / "media" / "c.mp4").resolve()))
    top.append(schema.Clip(name="insert", media_reference=reference, source_range=span(2.0, 3.0)))
    timeline.tracks.append(top)
    path = tmp_path / "two.otio"
    otio.adapters.write_to_file(timeline, str(path))
    clips = read_timeline(path).clips
    assert [c.name for c in clips] == ["a", "b", "insert", "b", "c"]
    assert [round(c.record_start - HOUR, 3) for c in clips] == [0.0, 2.5, 3.0, 4.0, 4.5]
    assert (clips[3].source_start, clips[3].source_end) == pytest.approx((1.5, 2.0))  # b after the insert


def test_a_gap_is_held_and_the_next_clip_is_a_cut(project, tmp_path):
    path = tmp_path / "gap.otio"
    otio.adapters.write_to_file(otio_timeline(project / "media", absolute=True, gap_before_c=1.0), str(path))
    clips = clips_for_timeline(path)
    assert [c["record_start"] for c in clips] == pytest.approx([0.0, 2.5, 5.5], abs=FRAME / 2)
    from cuesmith.engine.video.sequence import analyze_clips

    engine = Engine(cache_dir=project / "cache")
    analysis = analyze_clips(clips, lambda v, s, e, p: engine.analyze(v, s, e, p), name=str(path))
    assert analysis.duration == pytest.approx(DURATION + 1.0, abs=FRAME)
    cuts = [c.time for c in analysis.cuts]
    assert cuts == pytest.approx([1.0, 2.5, 5.5, 6.5], abs=FRAME)
    assert analysis.motion.times == sorted(analysis.motion.times)
    assert analysis.info.path == str(path)


def with_timecode(source: Path, target: Path, timecode: str) -> Path:
    """`source` re-encoded into a QuickTime file with a start timecode (a tmcd track), as cameras write them."""
    import av

    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        out = dst.add_stream("libx264", rate=RATE)
        out.width, out.height, out.pix_fmt = src.streams.video[0].width, src.streams.video[0].height, "yuv420p"
        out.metadata["timecode"] = timecode
        for i, frame in enumerate(src.decode(video=0)):
            picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            picture.pts = i
            dst.mux(out.encode(picture))
        dst.mux(out.encode(None))
    return target


def test_edl_source_timecode_counts_from_the_media_start_timecode(project, tmp_path):
    with_timecode(project / "media" / "a.mp4", tmp_path / "a.mov", "01:00:00:00")
    edl = tmp_path / "camera.edl"
    edl.write_text(EDL.splitlines(keepends=True)[0] + "\n001  A        V     C        "
                   "01:00:00:15 01:00:03:00 01:00:00:00 01:00:02:15\n* FROM CLIP NAME:  a.mov\n")
    clip, = read_timeline(edl).clips
    assert (clip.source_start, clip.source_end) == pytest.approx((0.5, 3.0), abs=FRAME / 2)


# -- bad input: one line, exit 2, nothing written --------------------------------------------------------

def write_otio(path: Path, clips: list[schema.Clip]) -> Path:
    timeline = schema.Timeline(name="bad")
    timeline.tracks.append(schema.Track(kind=schema.TrackKind.Video, children=clips))
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_cli_missing_media_names_the_clip_and_path(project, cli, tmp_path):
    edl = tmp_path / "missing.edl"
    edl.write_text(EDL.replace("b.mp4", "gone.mp4"))
    run = run_cli(cli, project, "--timeline", str(edl), "--media-dir", str(project / "media"),
                  "--out", str(tmp_path / "out"))
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1
    assert "'002'" in run.stderr and str(tmp_path / "gone.mp4") in run.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["empty", "unsupported", "unreadable"])
def test_cli_bad_timeline_is_one_line_and_exit_2(project, cli, tmp_path, case):
    path = {"empty": lambda: write_otio(tmp_path / "empty.otio", []),
            "unsupported": lambda: tmp_path / "cut.txt",
            "unreadable": lambda: tmp_path / "broken.xml"}[case]()
    if case != "empty":
        path.write_text("<xmeml><sequence>" if case == "unreadable" else "not a timeline")
    run = run_cli(cli, project, "--timeline", str(path), "--out", str(tmp_path / "out"))
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and str(path) in run.stderr
    assert {"empty": "no video clips", "unsupported": "not a timeline", "unreadable": "cannot be read"}[case] \
        in run.stderr
    assert not (tmp_path / "out").exists()


def test_non_file_media_is_refused(tmp_path):
    remote = schema.ExternalReference(target_url="https://example.com/clip.mp4")
    path = write_otio(tmp_path / "remote.otio", [schema.Clip(name="web", media_reference=remote,
                                                             source_range=span(0, 1))])
    with pytest.raises(CuesmithError, match="'web' refers to https://example.com/clip.mp4; only local files"):
        read_timeline(path)
    bars = schema.GeneratorReference(generator_kind="SMPTEBars")
    path = write_otio(tmp_path / "bars.otio", [schema.Clip(name="bars", media_reference=bars,
                                                           source_range=span(0, 1))])
    with pytest.raises(CuesmithError, match="'bars' is a GeneratorReference"):
        read_timeline(path)


def test_a_relative_path_that_is_missing_names_the_path_tried(tmp_path):
    reference = schema.ExternalReference(target_url="shots/nothere.mp4")
    path = write_otio(tmp_path / "rel.otio", [schema.Clip(name="one", media_reference=reference,
                                                          source_range=span(0, 1))])
    with pytest.raises(CuesmithError, match=r"clip 'one': media not found \(tried .*shots/nothere.mp4\)"):
        read_timeline(path)


def test_a_timeline_job_over_osc_writes_the_scored_timeline_beside_its_result(project, tmp_path):
    from bridge_helpers import running_engine

    from cuesmith.plugin_bridge.client import BridgeClient

    with running_engine(tmp_path) as engine, BridgeClient(port=engine.port) as client:
        job = client.submit("score", {"timeline": str(project / "edit.otio"), "stems": False})
        final = client.wait(job, timeout=180)
        assert final["event"] == "result", final
        written = Path(final["result"]).parent / "edit-scored.otio"
        engine.wait_for(rf"job {job} wrote .*edit-scored\.otio", 30)
    result = ScoreResult.from_dict(json.loads(Path(final["result"]).read_text()))
    check_written(written, result, Path(result.variations[0].midi).resolve())  # stems off: the MIDI is the audio
