// cuesmith panel logic that does not depend on Premiere: the request, the protocol's replies, where the
// score and the key moments go on the sequence. Shared by the UXP panel (WebSocket, JSON text frames) and
// the CEP panel (UDP, OSC packets), loaded with require() in both (and in the tests, under Node).
"use strict";

const MAX_INLINE_JSON = 1400; // docs/osc.md: longer requests travel as a .json file path
const FINAL = { result: true, failed: true, cancelled: true };
// Premiere's marker colour indices: 0 green, 1 red, 4 yellow.
const GRADE_COLOUR_INDEX = { A: 0, B: 4, C: 1 };

function buildScoreRequest(clips) {
  return {
    clips: clips.map((c) => ({ video: c.video, start: round(c.start), end: round(c.end) })),
    stems: true,
    variations: 1,
  };
}

function round(x) {
  return Math.round(x * 10000) / 10000;
}

function tooLarge(request) {
  return new TextEncoder().encode(JSON.stringify(request)).length > MAX_INLINE_JSON;
}

// The score request's OSC arguments after the tag: the JSON (or, over 1,400 bytes, the path of a
// temporary .json file from writeTemp) and the token option.
async function requestArguments(clips, writeTemp, token) {
  const request = buildScoreRequest(clips);
  const text = JSON.stringify(request);
  const argument = tooLarge(request) ? await writeTemp(text) : text;
  return [argument, ...(token ? [`token=${token}`] : [])];
}

// Turns the engine's reply messages into events ({event, job_id, stage, fraction, kind, result, message}),
// following one job from /cuesmith/accepted (matched by tag) to its final event.
class JobTracker {
  constructor(tag) {
    this.tag = tag;
    this.jobId = null;
  }

  handle(address, args) {
    const [first] = args;
    if (address === "/cuesmith/error" && first === this.tag) {
      return { event: "error", kind: args[1], message: args[2] };
    }
    if (address === "/cuesmith/accepted" && first === this.tag) {
      this.jobId = args[1];
      return { event: "accepted", job_id: this.jobId };
    }
    if (address === "/cuesmith/job" && first === this.tag && args[1] === this.jobId) {
      return jobState(args); // the answer to a status query, sent when events went missing (UDP)
    }
    if (this.jobId === null || first !== this.jobId) return null;
    switch (address) {
      case "/cuesmith/progress":
        return { event: "progress", job_id: first, stage: args[1], fraction: args[2] };
      case "/cuesmith/result":
        return { event: "result", job_id: first, kind: args[1], result: args[2] };
      case "/cuesmith/failed":
        return { event: "failed", job_id: first, message: args[1] };
      case "/cuesmith/cancelled":
        return { event: "cancelled", job_id: first };
      default:
        return null;
    }
  }
}

// /cuesmith/job tag job_id kind state stage fraction result
function jobState(args) {
  const [, jobId, kind, state, stage, fraction, result] = args;
  if (state === "done") return { event: "result", job_id: jobId, kind, result };
  if (state === "failed" || state === "cancelled") return { event: state, job_id: jobId, message: `the job ${state}` };
  return { event: "progress", job_id: jobId, stage, fraction };
}

function isFinal(event) {
  return Boolean(event && (FINAL[event.event] || event.event === "error"));
}

function progressLine(event) {
  return `cuesmith: ${event.stage} ${Math.round(event.fraction * 100)}%`;
}

// [{name, path}]: the stems without the mix, or only the mix.
function audioToPlace(result, place) {
  const stems = (result.variations[0] || {}).stems || {};
  const names = place === "mix" ? [] : Object.keys(stems).filter((n) => n !== "mix").sort();
  if (names.length === 0) return stems.mix ? [{ name: "mix", path: stems.mix }] : [];
  return names.map((name) => ({ name, path: stems[name] }));
}

// Sequence seconds of `seconds` into the score: the clips play back to back in the score, so a moment inside
// clip k lands inside clip k on the sequence even when the clips have gaps between them.
function sequenceSeconds(clips, seconds) {
  let elapsed = 0;
  for (let i = 0; i < clips.length; i++) {
    const length = clips[i].end - clips[i].start;
    if (seconds < elapsed + length || i === clips.length - 1) return clips[i].recordStart + (seconds - elapsed);
    elapsed += length;
  }
  return 0;
}

function clock(seconds) {
  const s = Math.max(0, seconds);
  const minutes = Math.floor(s / 60);
  return `${String(minutes).padStart(2, "0")}:${(s - minutes * 60).toFixed(1).padStart(4, "0")}`;
}

function momentNote(m) {
  const text = `${m.kind} at ${clock(m.time)}: grade ${m.grade}`;
  if (m.offset === null || m.offset === undefined) return `${text}, no musical change within half a second`;
  const side = m.offset >= 0 ? "after" : "before";
  return `${text}, the music's ${m.change || "change"} ${Math.abs(m.offset).toFixed(3)} s ${side}`;
}

// What to do on the sequence: {audio: [{name, path, seconds}], markers: [{seconds, name, note, colourIndex}]}.
function placement(result, critique, clips, place) {
  const start = clips[0].recordStart;
  return {
    midi: result.variations[0].midi,
    audio: audioToPlace(result, place).map((a) => ({ ...a, seconds: start })),
    markers: ((critique && critique.key_moments) || []).map((m) => ({
      seconds: sequenceSeconds(clips, m.time),
      name: `cuesmith ${m.grade} ${m.kind}`,
      note: momentNote(m),
      colourIndex: GRADE_COLOUR_INDEX[m.grade] === undefined ? 6 : GRADE_COLOUR_INDEX[m.grade],
    })),
  };
}

// The result.json and its critique.json, read with `readText(path) -> Promise<string>`.
async function readResult(path, readText) {
  const result = JSON.parse(await readText(path));
  const critiquePath = result.critique && result.critique.json;
  const critique = critiquePath ? JSON.parse(await readText(critiquePath)) : null;
  return { result, critique };
}

// --- OSC 1.0, the subset the protocol uses (the CEP panel talks UDP; Node has no OSC codec built in) ----------

function oscString(text) {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array((bytes.length + 4) & ~3);
  out.set(bytes);
  return out;
}

function oscMessage(address, args) {
  let tags = ",";
  const parts = [];
  for (const arg of args) {
    if (typeof arg === "string") {
      tags += "s";
      parts.push(oscString(arg));
    } else if (Number.isInteger(arg)) {
      tags += "i";
      const b = new Uint8Array(4);
      new DataView(b.buffer).setInt32(0, arg);
      parts.push(b);
    } else {
      tags += "f";
      const b = new Uint8Array(4);
      new DataView(b.buffer).setFloat32(0, arg);
      parts.push(b);
    }
  }
  const all = [oscString(address), oscString(tags), ...parts];
  const out = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of all) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function oscParse(bytes) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  const readString = () => {
    const end = data.indexOf(0, at);
    const text = new TextDecoder().decode(data.subarray(at, end));
    at = (end + 4) & ~3;
    return text;
  };
  const address = readString();
  const tags = readString();
  const args = [];
  for (const tag of tags.slice(1)) {
    if (tag === "s") args.push(readString());
    else if (tag === "i") args.push(view.getInt32(at));
    else if (tag === "f") args.push(view.getFloat32(at));
    else throw new Error(`unexpected OSC type tag ${tag}`);
    if (tag !== "s") at += 4;
  }
  return { address, args };
}

// The token the first `cuesmith serve` stored in cuesmith's user config (where Python's platformdirs puts
// it), or "" when it cannot be read; the engine asks it of every WebSocket request.
async function configToken(readText, platform, env, home) {
  const windows = `${env.LOCALAPPDATA || `${home}\\AppData\\Local`}\\cuesmith\\cuesmith\\config.json`;
  const path = platform === "win32" ? windows
    : platform === "darwin" ? `${home}/Library/Application Support/cuesmith/config.json`
      : `${env.XDG_CONFIG_HOME || `${home}/.config`}/cuesmith/config.json`;
  try {
    return String(JSON.parse(await readText(path)).token || "");
  } catch (error) {
    return "";
  }
}

const cuesmithCore = {
  MAX_INLINE_JSON,
  GRADE_COLOUR_INDEX,
  buildScoreRequest,
  tooLarge,
  requestArguments,
  JobTracker,
  isFinal,
  progressLine,
  audioToPlace,
  sequenceSeconds,
  momentNote,
  placement,
  readResult,
  configToken,
  oscMessage,
  oscParse,
};

globalThis.cuesmithCore = cuesmithCore; // for a CEP page that loads it with <script>
if (typeof module !== "undefined" && module.exports) module.exports = cuesmithCore;
