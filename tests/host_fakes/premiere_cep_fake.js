// A fake of Premiere's ExtendScript DOM (the part host.jsx uses), for a vm context; same scene as the UXP fake.
"use strict";

function fakeApp(scene) {
  const calls = [];
  const seconds = (s) => ({ seconds: s });
  const items = scene.clips.map((c) => ({
    name: c.path.split("/").pop(), mediaType: c.video ? "Video" : "Audio",
    start: seconds(c.start), end: seconds(c.end), inPoint: seconds(c.in), outPoint: seconds(c.out),
    projectItem: { getMediaPath: () => c.path },
  }));
  const collection = (list) => Object.assign(list, { numItems: list.length, numTracks: list.length });
  const audioTrack = (i) => ({
    clips: collection(i === 0 ? [{}] : []), // A1 holds the production sound; the others are free
    overwriteClip: (item, time) => calls.push(["overwriteClip", i, item.getMediaPath(), time]),
  });
  const audioTracks = collection(Array.from({ length: scene.audio_tracks }, (_, i) => audioTrack(i)));
  const markers = [];
  const children = collection([]);
  const rootItem = { type: 3, children };
  const sequence = {
    getSelection: () => items.filter((_, i) => scene.clips[i].selected),
    videoTracks: collection([{ clips: collection(items.filter((it) => it.mediaType === "Video")) }]),
    audioTracks,
    markers: {
      createMarker: (time) => {
        const marker = { start: seconds(time), setColorByIndex(index) { this.colour = index; } };
        markers.push(marker);
        return marker;
      },
    },
  };
  const app = {
    project: {
      activeSequence: sequence,
      rootItem,
      getInsertionBin: () => rootItem,
      importFiles: (paths, suppressUI, bin, asStills) => {
        calls.push(["importFiles", paths]);
        for (const path of paths) children.push({ type: 1, getMediaPath: () => path });
        children.numItems = children.length;
        return true;
      },
    },
    enableQE: () => true,
  };
  const qe = {
    project: {
      getActiveSequence: () => ({
        addTracks: (...args) => {
          calls.push(["addTracks", ...args]);
          audioTracks.push(audioTrack(audioTracks.length));
          audioTracks.numTracks = audioTracks.length;
        },
      }),
    },
  };
  return { app, qe, ProjectItemType: { CLIP: 1, BIN: 2, ROOT: 3, FILE: 4 }, calls, markers };
}

module.exports = { fakeApp };
