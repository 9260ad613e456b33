"""A fake of Resolve's scripting module: the object model cuesmith_score.py touches, built from a scene
(JSON file named by $CUESMITH_FAKE_SCENE); every call that changes the project is recorded and written to
$CUESMITH_FAKE_LOG when the script exits.

Scene: {"fps": 30, "start_frame": 108000, "audio_tracks": 1, "selected": [ids] (optional; absent: Resolve
before 21.0.4, no GetSelectedClips), "tracks": [[{"id", "name", "path", "start", "duration", "source_start",
"left_offset", "clip_fps"}, ...], ...]}
"""
import atexit
import json
import os

SCENE = json.load(open(os.environ["CUESMITH_FAKE_SCENE"], encoding="utf-8"))
CALLS = []
atexit.register(lambda: json.dump(CALLS, open(os.environ["CUESMITH_FAKE_LOG"], "w", encoding="utf-8"), indent=1))


class MediaPoolItem:
    def __init__(self, path, fps):
        self.path, self.fps = path, fps

    def GetClipProperty(self, name):
        return {"File Path": self.path, "FPS": str(self.fps)}.get(name, "")


class TimelineItem:
    def __init__(self, spec):
        self.spec = spec
        self.media = MediaPoolItem(spec["path"], spec.get("clip_fps", SCENE["fps"])) if spec.get("path") else None

    def GetName(self):
        return self.spec["name"]

    def GetUniqueId(self):
        return self.spec["id"]

    def GetStart(self):
        return self.spec["start"]

    def GetEnd(self):
        return self.spec["start"] + self.spec["duration"]

    def GetDuration(self):
        return self.spec["duration"]

    def GetLeftOffset(self):
        return self.spec["left_offset"]

    def GetSourceStartFrame(self):
        return self.spec["source_start"]

    def GetMediaPoolItem(self):
        return self.media


class Timeline:
    def __init__(self):
        self.video = [[TimelineItem(s) for s in track] for track in SCENE["tracks"]]
        self.audio_tracks = SCENE.get("audio_tracks", 1)
        self.markers = {}
        if "selected" in SCENE:
            self.GetSelectedClips = self._selected

    def _selected(self):
        return [i for track in self.video for i in track if i.GetUniqueId() in SCENE["selected"]]

    def GetSetting(self, name):
        return {"timelineFrameRate": str(SCENE["fps"])}[name]

    def GetStartFrame(self):
        return SCENE["start_frame"]

    def GetTrackCount(self, kind):
        return len(self.video) if kind == "video" else self.audio_tracks

    def GetItemListInTrack(self, kind, index):
        return list(self.video[index - 1]) if kind == "video" else []

    def AddTrack(self, kind, sub_type=None):
        CALLS.append(["AddTrack", kind, sub_type])
        self.audio_tracks += kind == "audio"
        return True

    def GetMarkers(self):
        return dict(self.markers)

    def AddMarker(self, frame, colour, name, note, duration, custom=""):
        CALLS.append(["AddMarker", frame, colour, name, note, duration, custom])
        if frame in self.markers:
            return False
        self.markers[frame] = name
        return True


class MediaPool:
    def __init__(self, timeline):
        self.timeline = timeline

    def ImportMedia(self, paths):
        CALLS.append(["ImportMedia", list(paths)])
        return [MediaPoolItem(p, SCENE["fps"]) for p in paths if os.path.isfile(p)]

    def AppendToTimeline(self, clips):
        infos = [{**c, "mediaPoolItem": c["mediaPoolItem"].path} for c in clips]
        CALLS.append(["AppendToTimeline", infos])
        if any(i["trackIndex"] > self.timeline.audio_tracks for i in infos):
            return []
        return [object() for _ in clips]


class Project:
    def __init__(self):
        self.timeline = Timeline()
        self.pool = MediaPool(self.timeline)

    def GetCurrentTimeline(self):
        return self.timeline

    def GetMediaPool(self):
        return self.pool


class Resolve:
    def __init__(self):
        self.project = Project()

    def GetProjectManager(self):
        return self

    def GetCurrentProject(self):
        return self.project


def scriptapp(name):
    return Resolve() if name == "Resolve" else None
