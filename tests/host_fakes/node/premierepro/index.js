// A fake of the UXP `premierepro` module for the cuesmith UXP panel, built from the scene JSON named by
// $CUESMITH_FAKE_SCENE: {"clips": [{"path", "start", "end", "in", "out", "video", "selected"}], "audio_tracks": N}
// (seconds). Calls that change the project are recorded in module.exports.calls.
"use strict";
const fs = require("fs");

const scene = JSON.parse(fs.readFileSync(process.env.CUESMITH_FAKE_SCENE, "utf8"));
const calls = [];
const seconds = (s) => ({ seconds: s });

function trackItem(spec) {
  const item = {
    getName: async () => spec.path.split("/").pop(),
    getStartTime: async () => seconds(spec.start),
    getEndTime: async () => seconds(spec.end),
    getInPoint: async () => seconds(spec.in),
    getOutPoint: async () => seconds(spec.out),
    getProjectItem: async () => ({ path: spec.path }),
  };
  if (spec.video) item.createAddVideoTransitionAction = () => ({});
  return item;
}

const items = scene.clips.map(trackItem);
const imported = [];
const root = { getItems: async () => imported.slice() };

const sequence = {
  getSelection: async () => ({ getTrackItems: async () => items.filter((_, i) => scene.clips[i].selected) }),
  getVideoTrackCount: async () => 1,
  getVideoTrack: async () => ({
    getTrackItems: async (type, includeEmpty) => items.filter((_, i) => scene.clips[i].video),
  }),
  getAudioTrackCount: async () => scene.audio_tracks,
};

const project = {
  getActiveSequence: async () => sequence,
  getRootItem: async () => root,
  importFiles: async (paths, suppressUI, bin, asStills) => {
    calls.push(["importFiles", paths, bin === root]);
    for (const path of paths) if (fs.existsSync(path)) imported.push({ path });
    return true;
  },
  lockedAccess: (fn) => fn(),
  executeTransaction: (fn, name) => {
    const actions = [];
    fn({ addAction: (action) => actions.push(action) });
    calls.push(["executeTransaction", name, actions]);
    return true;
  },
};

module.exports = {
  calls,
  Project: { getActiveProject: async () => project },
  ClipProjectItem: { cast: (item) => ({ getMediaFilePath: async () => item.path }) },
  Constants: { TrackItemType: { CLIP: 1 } },
  TickTime: { createWithSeconds: (s) => seconds(s) },
  SequenceEditor: {
    getEditor: () => ({
      createInsertProjectItemAction: (item, time, videoTrack, audioTrack, limitShift) =>
        ({ action: "insert", path: item.path, seconds: time.seconds, videoTrack, audioTrack, limitShift }),
    }),
  },
  Markers: {
    getMarkers: async () => ({
      createAddMarkerAction: (name, type, start, duration, comments) =>
        ({ action: "marker", name, type, seconds: start.seconds, duration: duration.seconds, comments }),
    }),
  },
};
