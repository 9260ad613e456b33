// cuesmith CEP panel, the ExtendScript side (ES3: no JSON object in older Premiere, so a tiny writer).
// cuesmith.selection(): the selected video clips (none selected: every clip of the video tracks) as JSON
//   [{video, start, end, recordStart, recordEnd}] in sequence order, seconds.
// cuesmith.place(plan): imports plan.audio into the project, overwrites each onto an empty audio track (a new
//   one when the sequence has none free) at its time, and adds plan.markers; answers {audio, markers}.
var cuesmith = (function () {
  function quote(text) {
    var out = '"', i, c, code;
    for (i = 0; i < text.length; i++) {
      c = text.charAt(i);
      code = text.charCodeAt(i);
      if (c === '"' || c === "\\") out += "\\" + c;
      else if (code < 32) out += "\\u" + ("000" + code.toString(16)).slice(-4);
      else out += c;
    }
    return out + '"';
  }

  function write(value) {
    var parts = [], key, i;
    if (value === null || value === undefined) return "null";
    if (typeof value === "string") return quote(value);
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    if (value instanceof Array) {
      for (i = 0; i < value.length; i++) parts.push(write(value[i]));
      return "[" + parts.join(",") + "]";
    }
    for (key in value) if (value.hasOwnProperty(key)) parts.push(quote(key) + ":" + write(value[key]));
    return "{" + parts.join(",") + "}";
  }

  function fail(message) {
    return write({ error: message });
  }

  function clipOf(item) {
    return { video: item.projectItem.getMediaPath(), start: item.inPoint.seconds, end: item.outPoint.seconds,
             recordStart: item.start.seconds, recordEnd: item.end.seconds };
  }

  function videoItems(sequence) {
    var chosen = [], selection = sequence.getSelection(), t, c, i;
    for (i = 0; i < selection.length; i++) if (selection[i].mediaType === "Video") chosen.push(selection[i]);
    if (chosen.length === 0) {
      for (t = 0; t < sequence.videoTracks.numTracks; t++) {
        for (c = 0; c < sequence.videoTracks[t].clips.numItems; c++) chosen.push(sequence.videoTracks[t].clips[c]);
      }
    }
    return chosen;
  }

  function selection() {
    var sequence = app.project.activeSequence, items, clips = [], i;
    if (!sequence) return fail("open a sequence first");
    items = videoItems(sequence);
    for (i = 0; i < items.length; i++) {
      if (!items[i].projectItem || !items[i].projectItem.getMediaPath()) {
        return fail("the clip " + items[i].name + " has no media file");
      }
      clips.push(clipOf(items[i]));
    }
    clips.sort(function (a, b) { return a.recordStart - b.recordStart; });
    return write(clips);
  }

  function findItem(folder, path) {
    var i, child, found;
    for (i = 0; i < folder.children.numItems; i++) {
      child = folder.children[i];
      if (child.type === ProjectItemType.BIN) {
        found = findItem(child, path);
        if (found) return found;
      } else if (child.getMediaPath && child.getMediaPath() === path) {
        return child;
      }
    }
    return null;
  }

  function emptyAudioTrack(sequence, taken) {
    var t;
    for (t = 0; t < sequence.audioTracks.numTracks; t++) {
      if (sequence.audioTracks[t].clips.numItems === 0 && !taken[t]) return t;
    }
    app.enableQE();  // the classic DOM cannot add tracks; the QE DOM can
    qe.project.getActiveSequence().addTracks(0, 0, 1, 1, sequence.audioTracks.numTracks, 0, 0);
    return sequence.audioTracks.numTracks - 1;
  }

  function place(plan) {
    var sequence = app.project.activeSequence, i, item, track, marker, taken = {}, paths = [];
    if (!sequence) return fail("open a sequence first");
    for (i = 0; i < plan.audio.length; i++) paths.push(plan.audio[i].path);
    if (paths.length) app.project.importFiles(paths, true, app.project.getInsertionBin(), false);
    for (i = 0; i < plan.audio.length; i++) {
      item = findItem(app.project.rootItem, plan.audio[i].path);
      if (!item) return fail("Premiere did not import " + plan.audio[i].path);
      track = emptyAudioTrack(sequence, taken);
      taken[track] = true;
      sequence.audioTracks[track].overwriteClip(item, plan.audio[i].seconds);
    }
    for (i = 0; i < plan.markers.length; i++) {
      marker = sequence.markers.createMarker(plan.markers[i].seconds);
      marker.name = plan.markers[i].name;
      marker.comments = plan.markers[i].note;
      marker.setColorByIndex(plan.markers[i].colourIndex);
    }
    return write({ audio: plan.audio.length, markers: plan.markers.length });
  }

  function guarded(fn) {
    return function (arg) {
      try {
        return fn(arg);
      } catch (error) {
        return fail("Premiere: " + error.toString());
      }
    };
  }

  return { selection: guarded(selection), place: guarded(place) };
})();
