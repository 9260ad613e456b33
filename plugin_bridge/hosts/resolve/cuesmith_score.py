"""cuesmith for DaVinci Resolve (Studio; Workspace > Scripts > cuesmith_score).

Scores the selected video clips of the current timeline (all clips of its video
tracks when none is selected, or on Resolve before 21.0.4, which cannot report
the selection) with a running `cuesmith serve`, shows the job's progress in the
console, then puts the stems (or the mix) on new audio tracks at the first
clip's record frame and the result's placement markers on the timeline: the
critique's key moments (Green A, Yellow B, Red C) and the section starts (Blue).
Every time and file comes from result.json's `placement` (schema version 2).

Settings come from the environment: CUESMITH_HOST (127.0.0.1), CUESMITH_PORT
(9470), CUESMITH_TOKEN (default: the token in cuesmith's user config),
CUESMITH_PLACE ("stems" or "mix"), CUESMITH_FAMILY (the model family;
default: the engine's), CUESMITH_TIMEOUT (seconds, 1800),
CUESMITH_QUIET (seconds without an event before the script asks for the
job's state, 10: a UDP datagram can be lost).

Resolve's bundled Python has no python-osc and a script cannot pip-install into
it, so this file carries its own tiny OSC 1.0 codec: strings, int32 and
float32 are all the cuesmith protocol uses (docs/osc.md).
"""
import json
import os
import socket
import struct
import sys
import tempfile
import time

HOST = os.environ.get("CUESMITH_HOST", "127.0.0.1")
PORT = int(os.environ.get("CUESMITH_PORT", "9470"))


def config_token():
    """The token the first `cuesmith serve` stored in cuesmith's user config ("" when there is none)."""
    if sys.platform == "win32":
        folder = os.path.join(os.environ.get("LOCALAPPDATA", ""), "cuesmith", "cuesmith")
    elif sys.platform == "darwin":
        folder = os.path.expanduser("~/Library/Application Support/cuesmith")
    else:
        folder = os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "cuesmith")
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            return str(json.load(f).get("token") or "")
    except (OSError, ValueError, AttributeError):
        return ""


TOKEN = os.environ.get("CUESMITH_TOKEN") or config_token()
PLACE = os.environ.get("CUESMITH_PLACE", "stems")
FAMILY = os.environ.get("CUESMITH_FAMILY", "")
TIMEOUT_S = float(os.environ.get("CUESMITH_TIMEOUT", "1800"))
ACCEPT_S = 10.0  # no /cuesmith/accepted within this: no engine there
QUIET_S = float(os.environ.get("CUESMITH_QUIET", "10"))  # no event for this long: ask for the job's state
MAX_INLINE_JSON = 1400  # docs/osc.md: longer requests travel as a .json file path
MARKER_COLOURS = {"green": "Green", "yellow": "Yellow", "red": "Red", "blue": "Blue"}  # placement -> Resolve


class ScriptError(Exception):
    pass


# --- OSC 1.0, the subset the protocol uses ------------------------------------------------------

def _osc_string(text):
    data = text.encode("utf-8") + b"\0"
    return data + b"\0" * (-len(data) % 4)


def osc_message(address, *args):
    tags, payload = ",", b""
    for arg in args:
        if isinstance(arg, bool) or not isinstance(arg, (int, float, str)):
            raise TypeError("OSC argument must be int, float or str: %r" % (arg,))
        if isinstance(arg, int):
            tags, payload = tags + "i", payload + struct.pack(">i", arg)
        elif isinstance(arg, float):
            tags, payload = tags + "f", payload + struct.pack(">f", arg)
        else:
            tags, payload = tags + "s", payload + _osc_string(arg)
    return _osc_string(address) + _osc_string(tags) + payload


def _read_string(data, pos):
    end = data.index(b"\0", pos)
    return data[pos:end].decode("utf-8"), end + 1 + (-(end + 1) % 4)


def osc_parse(data):
    """(address, [args]) of one OSC message; bundles are not used by the engine's replies."""
    address, pos = _read_string(data, 0)
    tags, pos = _read_string(data, pos)
    args = []
    for tag in tags[1:]:
        if tag == "s":
            value, pos = _read_string(data, pos)
        elif tag in "if":
            value = struct.unpack(">" + tag, data[pos:pos + 4])[0]
            pos += 4
        else:
            raise ValueError("unexpected OSC type tag %r" % tag)
        args.append(value)
    return address, args


# --- the request, from Resolve's timeline items --------------------------------------------------

def timeline_fps(timeline):
    return float(timeline.GetSetting("timelineFrameRate"))


def clip_of(item, fps):
    """One clip of the request: the item's file and its source range in seconds, plus its record frames."""
    media = item.GetMediaPoolItem()
    path = media.GetClipProperty("File Path") if media else ""
    if not path:
        raise ScriptError("the clip %r has no media file (a generator, title or compound clip?)" % item.GetName())
    frames = item.GetDuration()
    try:
        clip_fps = float(media.GetClipProperty("FPS") or fps)
        start = item.GetSourceStartFrame() / clip_fps
    except (AttributeError, TypeError, ValueError):
        start = item.GetLeftOffset() / fps
    return {"video": path, "start": round(start, 4), "end": round(start + frames / fps, 4),
            "record_start": item.GetStart(), "record_end": item.GetStart() + frames}


def video_items(timeline):
    """The selected video items (Resolve 21.0.4+), else every item of every video track; timeline order."""
    every = [item for track in range(1, int(timeline.GetTrackCount("video")) + 1)
             for item in _listed(timeline.GetItemListInTrack("video", track))]
    video_ids = {item.GetUniqueId() for item in every}
    try:
        chosen = [i for i in _listed(timeline.GetSelectedClips()) if i.GetUniqueId() in video_ids]
    except (AttributeError, TypeError):  # before 21.0.4
        chosen = []
    return sorted(chosen or every, key=lambda i: i.GetStart())


def _listed(items):
    """Resolve answers lists, and sometimes dicts keyed 1..n."""
    return list(items.values()) if isinstance(items, dict) else list(items or [])


def build_request(clips, family=FAMILY):
    """The score request: clips in timeline order, each boundary a cut (the engine scores them as one piece)."""
    request = {"clips": [{"video": c["video"], "start": c["start"], "end": c["end"]} for c in clips],
               "stems": True, "variations": 1}
    if family:
        request["family"] = family
    return request


def request_argument(request):
    """Inline JSON when it fits a datagram, else the path of a .json file holding it."""
    text = json.dumps(request, separators=(",", ":"))
    if len(text.encode("utf-8")) <= MAX_INLINE_JSON:
        return text
    fd, path = tempfile.mkstemp(prefix="cuesmith-request-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path


# --- talking to the engine -----------------------------------------------------------------------

def options():
    return ["token=" + TOKEN] if TOKEN else []


def submit_and_wait(request, host=HOST, port=PORT, timeout=TIMEOUT_S, say=print):
    """Send /cuesmith/score and return the result.json path; progress goes to `say`."""
    tag = "resolve-%d" % os.getpid()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1" if host in ("127.0.0.1", "localhost") else "", 0))
    try:
        sock.sendto(osc_message("/cuesmith/score", tag, request_argument(request), *options()), (host, port))
        return _wait(sock, (host, port), tag, timeout, say)
    finally:
        sock.close()


def _wait(sock, engine, tag, timeout, say):
    job_id, last_said, deadline = None, "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(min(ACCEPT_S if job_id is None else QUIET_S, max(0.1, deadline - time.monotonic())))
        try:
            address, args = osc_parse(sock.recvfrom(65536)[0])
        except socket.timeout:
            if job_id is None:
                raise ScriptError("no answer from cuesmith at %s:%d: is `cuesmith serve` running?" % engine)
            sock.sendto(osc_message("/cuesmith/status", tag, job_id, *options()), engine)  # a datagram may be lost
            continue
        if address == "/cuesmith/error" and args[0] == tag:
            raise ScriptError("cuesmith refused the request (%s): %s" % (args[1], args[2]))
        if address == "/cuesmith/accepted" and args[0] == tag:
            job_id = args[1]
            say("cuesmith: job %s accepted" % job_id)
        elif job_id is None or job_id not in args[:2]:
            continue
        elif address == "/cuesmith/progress":
            line = "cuesmith: %s %3d%%" % (args[1], round(args[2] * 100))
            if line != last_said:
                say(line)
                last_said = line
        elif address == "/cuesmith/result":
            return args[2]
        elif address == "/cuesmith/failed":
            raise ScriptError("cuesmith could not score the clips: %s" % args[1])
        elif address == "/cuesmith/cancelled":
            raise ScriptError("the cuesmith job %s was cancelled" % job_id)
        elif address == "/cuesmith/job" and args[3] in ("done", "failed", "cancelled"):
            if args[3] == "done":
                return args[6]
            raise ScriptError("the cuesmith job %s ended %s" % (job_id, args[3]))
    raise ScriptError("cuesmith did not finish within %d s (job %s)" % (timeout, job_id))


# --- placing the result --------------------------------------------------------------------------

def placement_of(result):
    """result.json's placement: every time (seconds of the score) and file the script puts on the timeline."""
    placement = result.get("placement")
    if not placement:
        raise ScriptError("the result has no placement (schema_version %s): update cuesmith and score again"
                          % result.get("schema_version", 1))
    return placement


def audio_to_place(placement, place=PLACE):
    """[(name, audio path)]: the stems without the mix, or the mix alone."""
    audio = placement.get("audio") or {}
    stems = audio.get("stems") or {}
    if place == "mix" or not stems:
        return [("mix", audio["mix"])] if audio.get("mix") else []
    return sorted(stems.items())


def timeline_frame(clips, seconds, fps):
    """The absolute record frame of `seconds` into the score: the clips play back to back in the score,
    so a moment inside clip k lands inside clip k on the timeline even when the clips have gaps."""
    elapsed = 0.0
    for clip in clips:
        length = clip["end"] - clip["start"]
        if seconds < elapsed + length or clip is clips[-1]:
            return clip["record_start"] + int(round((seconds - elapsed) * fps))
        elapsed += length
    return clips[0]["record_start"] + int(round(seconds * fps))


def markers_for(placement, clips, fps, timeline_start):
    """[(frame from the timeline start, colour, name, note)] of the placement's markers, for AddMarker."""
    return [(timeline_frame(clips, m["time"], fps) - timeline_start, MARKER_COLOURS.get(m["colour"], "Blue"),
             "cuesmith " + m["name"], m.get("note") or m["name"]) for m in placement["markers"]]


def place_audio(project, timeline, audio, record_frame):
    pool = project.GetMediaPool()
    for name, path in audio:
        imported = pool.ImportMedia([path]) or []
        if not imported:
            raise ScriptError("Resolve could not import %s" % path)
        timeline.AddTrack("audio", "stereo")
        track = int(timeline.GetTrackCount("audio"))
        placed = pool.AppendToTimeline([{"mediaPoolItem": imported[0], "mediaType": 2, "trackIndex": track,
                                         "recordFrame": record_frame}])
        if not placed:
            raise ScriptError("Resolve could not place %s on audio track %d" % (path, track))
        print("cuesmith: %s on audio track %d at frame %d" % (name, track, record_frame))


def add_markers(timeline, marks):
    taken = set((timeline.GetMarkers() or {}).keys())
    for frame, colour, name, note in marks:
        while frame in taken:  # Resolve keeps one marker per frame
            frame += 1
        if timeline.AddMarker(frame, colour, name, note, 1, "cuesmith"):
            taken.add(frame)


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def resolve_app():
    app = globals().get("resolve")  # set when Resolve runs the script from its menu
    if app is None and "bmd" in globals():
        app = globals()["bmd"].scriptapp("Resolve")
    if app is None:
        import DaVinciResolveScript as dvr  # run from outside Resolve (Studio's external scripting)
        app = dvr.scriptapp("Resolve")
    if app is None:
        raise ScriptError("cannot reach DaVinci Resolve (is it running, with external scripting allowed?)")
    return app


def main():
    project = resolve_app().GetProjectManager().GetCurrentProject()
    timeline = project.GetCurrentTimeline() if project else None
    if timeline is None:
        raise ScriptError("open a timeline first")
    fps = timeline_fps(timeline)
    clips = [clip_of(item, fps) for item in video_items(timeline)]
    if not clips:
        raise ScriptError("the timeline has no video clips")
    print("cuesmith: scoring %d clip(s), %.1f s" % (len(clips), sum(c["end"] - c["start"] for c in clips)))
    placement = placement_of(read_json(submit_and_wait(build_request(clips))))
    place_audio(project, timeline, audio_to_place(placement), clips[0]["record_start"])
    marks = markers_for(placement, clips, fps, timeline.GetStartFrame())
    add_markers(timeline, marks)
    midi = placement.get("midi")
    print("cuesmith: done: %d marker(s); %s" % (len(marks), "MIDI at " + midi if midi else "no MIDI (audio only)"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ScriptError as error:
        print("cuesmith: " + str(error))
        sys.exit(2)
