// cuesmith UXP panel for Premiere Pro (25.6+). UXP panels cannot send UDP, so this one talks to
// `cuesmith serve` over WebSocket (ws://127.0.0.1:9471) with the JSON text-frame form of the protocol
// (docs/osc.md). Score: the selected video clips (none selected: every clip of the video tracks) as one
// piece; then the stems (or the mix) go on new audio tracks at the first clip's start and the placement's
// markers (key moments and section starts) become sequence markers.
"use strict";

const core = require("./core.js");

const DEFAULT_URL = "ws://127.0.0.1:9471/";

function isVideoItem(item) {
  return typeof item.createAddVideoTransitionAction === "function"; // only VideoClipTrackItem has it
}

async function clipOf(ppro, item) {
  const projectItem = await item.getProjectItem();
  const path = await ppro.ClipProjectItem.cast(projectItem).getMediaFilePath();
  if (!path) throw new Error(`the clip ${await item.getName()} has no media file`);
  const [start, end, inPoint, outPoint] = await Promise.all(
    [item.getStartTime(), item.getEndTime(), item.getInPoint(), item.getOutPoint()]);
  return { video: path, start: inPoint.seconds, end: outPoint.seconds, recordStart: start.seconds,
           recordEnd: end.seconds };
}

async function chosenItems(ppro, sequence) {
  const selection = await sequence.getSelection();
  let items = ((await selection.getTrackItems()) || []).filter(isVideoItem);
  if (items.length === 0) {
    for (let i = 0; i < (await sequence.getVideoTrackCount()); i++) {
      const track = await sequence.getVideoTrack(i);
      items = items.concat(await track.getTrackItems(ppro.Constants.TrackItemType.CLIP, false));
    }
  }
  return items;
}

async function selectedClips(ppro, sequence) {
  const clips = [];
  for (const item of await chosenItems(ppro, sequence)) clips.push(await clipOf(ppro, item));
  return clips.sort((a, b) => a.recordStart - b.recordStart);
}

// Send one request as a JSON text frame and follow its job to the end; resolves with the final event.
function runJob(WebSocketImpl, url, address, args, say) {
  const tracker = new core.JobTracker(args[0]);
  return new Promise((resolve, reject) => {
    const socket = new WebSocketImpl(url);
    const finish = (fn, value) => {
      socket.onclose = null;
      socket.close();
      fn(value);
    };
    socket.onopen = () => socket.send(JSON.stringify({ address, args }));
    socket.onerror = () => finish(reject, new Error(`cannot reach cuesmith at ${url}: is \`cuesmith serve\` running?`));
    socket.onclose = () => reject(new Error("cuesmith closed the connection before the job ended"));
    socket.onmessage = (message) => {
      const { address: replyAddress, args: replyArgs } = JSON.parse(message.data);
      const event = tracker.handle(replyAddress, replyArgs);
      if (!event) return;
      if (event.event === "accepted") say(`cuesmith: job ${event.job_id} accepted`);
      if (event.event === "progress") say(core.progressLine(event));
      if (core.isFinal(event)) finish(resolve, event);
    };
  });
}

async function findProjectItem(ppro, folder, path) {
  for (const item of (await folder.getItems()) || []) {
    if (typeof item.getItems === "function") {
      const found = await findProjectItem(ppro, item, path);
      if (found) return found;
    } else if ((await ppro.ClipProjectItem.cast(item).getMediaFilePath()) === path) {
      return item;
    }
  }
  return null;
}

async function placeOnSequence(ppro, project, sequence, plan) {
  const root = await project.getRootItem();
  await project.importFiles(plan.audio.map((a) => a.path), true, root, false);
  const editor = ppro.SequenceEditor.getEditor(sequence);
  const firstNewTrack = await sequence.getAudioTrackCount(); // an index past the last track makes a new one
  const actions = [];
  for (const [i, a] of plan.audio.entries()) {
    const item = await findProjectItem(ppro, root, a.path);
    if (!item) throw new Error(`Premiere did not import ${a.path}`);
    actions.push(editor.createInsertProjectItemAction(item, ppro.TickTime.createWithSeconds(a.seconds), 0,
                                                      firstNewTrack + i, true));
  }
  const markers = await ppro.Markers.getMarkers(sequence);
  for (const m of plan.markers) {
    actions.push(markers.createAddMarkerAction(m.name, "Comment", ppro.TickTime.createWithSeconds(m.seconds),
                                               ppro.TickTime.createWithSeconds(0), m.note));
  }
  project.lockedAccess(() => project.executeTransaction((compound) => {
    for (const action of actions) compound.addAction(action);
  }, "cuesmith: score"));
}

// The whole command. deps: {ppro, WebSocketImpl, readText(path) -> Promise<string>, writeTemp(text) ->
// Promise<path>, say(line), url, place ("stems" | "mix"), token, configToken() -> Promise<string> (the token
// from cuesmith's user config, used when the token field is empty), family}.
async function scoreSelection(deps) {
  const { ppro, say } = deps;
  const project = await ppro.Project.getActiveProject();
  const sequence = project && (await project.getActiveSequence());
  if (!sequence) throw new Error("open a sequence first");
  const clips = await selectedClips(ppro, sequence);
  if (clips.length === 0) throw new Error("the sequence has no video clips");
  say(`cuesmith: scoring ${clips.length} clip(s)`);
  const token = deps.token || (deps.configToken ? await deps.configToken() : "");
  const args = await core.requestArguments(clips, deps.writeTemp, token, deps.family);
  const final = await runJob(deps.WebSocketImpl, deps.url || DEFAULT_URL, "/cuesmith/score",
                             [`uxp-${Date.now()}`, ...args], say);
  if (final.event !== "result") throw new Error(`cuesmith: ${final.event}: ${final.message || ""}`);
  const plan = core.sequencePlan(await core.readResult(final.result, deps.readText), clips, deps.place);
  await placeOnSequence(ppro, project, sequence, plan);
  say(`cuesmith: done: ${plan.audio.length} audio track(s), ${plan.markers.length} marker(s); ${core.midiLine(plan)}`);
  return plan;
}

function uxpDeps(say, place) {
  const fs = require("fs");
  return {
    ppro: require("premierepro"),
    WebSocketImpl: WebSocket,
    readText: (path) => fs.readFile(path, { encoding: "utf-8" }),
    writeTemp: async (text) => {
      const folder = await require("uxp").storage.localFileSystem.getTemporaryFolder();
      const file = await folder.createFile(`cuesmith-request-${Date.now()}.json`, { overwrite: true });
      await file.write(text);
      return file.nativePath;
    },
    configToken: async () => {
      try {
        const os = require("os");
        return await core.configToken((path) => fs.readFile(path, { encoding: "utf-8" }), os.platform(), {},
                                      os.homedir());
      } catch (error) {
        return ""; // no os module here: the token field it is
      }
    },
    say,
    place,
  };
}

if (typeof document !== "undefined" && document.getElementById("score")) {
  const log = document.getElementById("log");
  const say = (line) => { log.textContent += `\n${line}`; log.scrollTop = log.scrollHeight; };
  document.getElementById("score").addEventListener("click", () => {
    const place = document.getElementById("mix").checked ? "mix" : "stems";
    const token = document.getElementById("token").value;
    const family = document.getElementById("family").value.trim();
    scoreSelection({ ...uxpDeps(say, place), token, family }).catch((error) => say(String(error.message || error)));
  });
}

if (typeof module !== "undefined") module.exports = { scoreSelection, selectedClips, runJob, placeOnSequence };
