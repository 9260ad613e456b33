// cuesmith panel logic that does not depend on Premiere: the request, the protocol's replies, where the
// score's audio and markers go on the sequence (read from result.json's `placement`, schema version 2: every
// time in seconds of the score, the files, the markers with their colours and notes). Shared by the UXP panel
// (WebSocket, JSON text frames) and the CEP panel (UDP, OSC packets), loaded with require() in both (and in the
// tests, under Node).
"use strict";

const MAX_INLINE_JSON = 1400; // docs/osc.md: longer requests travel as a .json file path
const FINAL = { result: true, failed: true, cancelled: true };
// Premiere's marker colour indices of the placement's colours: 0 green, 1 red, 4 yellow, 6 blue.
const COLOUR_INDEX = { green: 0, red: 1, yellow: 4, blue: 6 };

// `family`: the model family ("" or undefined: the engine's default).
function buildScoreRequest(clips, family) {
  return {
    clips: clips.map((c) => ({ video: c.video, start: round(c.start), end: round(c.end) })),
    stems: true,
    variations: 1,
    ...(family ? { family } : {}),
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
async function requestArguments(clips, writeTemp, token, family) {
  const request = buildScoreRequest(clips, family);
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

// [{name, path}]: the placement's stems without the mix, or only the mix.
function audioToPlace(placement, place) {
  const audio = placement.audio || {};
  const stems = audio.stems || {};
  const names = place === "mix" ? [] : Object.keys(stems).sort();
  if (names.length === 0) return audio.mix ? [{ name: "mix", path: audio.mix }] : [];
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

function midiLine(plan) {
  return plan.midi ? `MIDI at ${plan.midi}` : "no MIDI (audio only)";
}

// What to do on the sequence: {midi, audio: [{name, path, seconds}], markers: [{seconds, name, note,
// colourIndex}]}, from the result's placement (key moments and section starts alike).
function sequencePlan(result, clips, place) {
  const placement = result.placement;
  const start = clips[0].recordStart;
  return {
    midi: placement.midi || null,
    audio: audioToPlace(placement, place).map((a) => ({ ...a, seconds: start })),
    markers: (placement.markers || []).map((m) => ({
      seconds: sequenceSeconds(clips, m.time),
      name: `cuesmith ${m.name}`,
      note: m.note || m.name,
      colourIndex: COLOUR_INDEX[m.colour] === undefined ? COLOUR_INDEX.blue : COLOUR_INDEX[m.colour],
    })),
  };
}

// result.json, read with `readText(path) -> Promise<string>`; an error for a result without a placement.
async function readResult(path, readText) {
  const result = JSON.parse(await readText(path));
  if (!result.placement) {
    const version = result.schema_version || 1;
    throw new Error(`the result has no placement (schema_version ${version}): update cuesmith and score again`);
  }
  return result;
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
  COLOUR_INDEX,
  buildScoreRequest,
  tooLarge,
  requestArguments,
  JobTracker,
  isFinal,
  progressLine,
  audioToPlace,
  sequenceSeconds,
  sequencePlan,
  midiLine,
  readResult,
  configToken,
  oscMessage,
  oscParse,
};

globalThis.cuesmithCore = cuesmithCore; // for a CEP page that loads it with <script>
if (typeof module !== "undefined" && module.exports) module.exports = cuesmithCore;
