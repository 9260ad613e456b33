// cuesmith CEP panel for Premiere Pro: Node's dgram sends the score request to `cuesmith serve` over UDP
// (127.0.0.1:9470, OSC packets) and receives the job's events on the same socket; host.jsx (ExtendScript)
// reads the selection and puts the audio and the markers on the sequence.
"use strict";

const core = globalThis.cuesmithCore || require("./core.js");

const ACCEPT_S = 10; // no /cuesmith/accepted within this: no engine there
const QUIET_S = 10; // with no event for this long, ask the engine for the job's state (a datagram may be lost)

function evalScript(run, script) {
  return new Promise((resolve, reject) => run(script, (reply) => {
    let value;
    try {
      value = JSON.parse(reply);
    } catch (error) {
      return reject(new Error(`Premiere's script answered ${reply}`));
    }
    return value && value.error ? reject(new Error(value.error)) : resolve(value);
  }));
}

// Send /cuesmith/score over UDP and follow the job to its final event.
function runJob(dgram, host, port, args, say, options, quietSeconds = QUIET_S) {
  const tracker = new core.JobTracker(args[0]);
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket("udp4");
    let timer = null;
    const send = (address, values) => socket.send(Buffer.from(core.oscMessage(address, values)), port, host);
    const finish = (fn, value) => {
      clearTimeout(timer);
      socket.close();
      fn(value);
    };
    const quiet = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (tracker.jobId === null) return finish(reject, new Error(`no answer from cuesmith at ${host}:${port}: is \`cuesmith serve\` running?`));
        send("/cuesmith/status", [args[0], tracker.jobId, ...options]);
        return quiet();
      }, (tracker.jobId === null ? ACCEPT_S : quietSeconds) * 1000);
    };
    socket.on("error", (error) => finish(reject, error));
    socket.on("message", (packet) => {
      const { address, args: values } = core.oscParse(packet);
      const event = tracker.handle(address, values);
      if (!event) return;
      quiet();
      if (event.event === "accepted") say(`cuesmith: job ${event.job_id} accepted`);
      if (event.event === "progress" && event.stage) say(core.progressLine(event));
      if (core.isFinal(event)) finish(resolve, event);
    });
    socket.bind(0, host === "127.0.0.1" || host === "localhost" ? "127.0.0.1" : undefined, () => {
      send("/cuesmith/score", args);
      quiet();
    });
  });
}

// The whole command. deps: {evalScript(script, callback), dgram, readText(path) -> Promise<string>,
// writeTemp(text) -> Promise<path>, say(line), host, port, place ("stems" | "mix"), token, family, quietSeconds}.
async function scoreSelection(deps) {
  const { say } = deps;
  const clips = await evalScript(deps.evalScript, "cuesmith.selection()");
  if (clips.length === 0) throw new Error("the sequence has no video clips");
  say(`cuesmith: scoring ${clips.length} clip(s)`);
  const args = await core.requestArguments(clips, deps.writeTemp, deps.token, deps.family);
  const options = args.slice(1);
  const final = await runJob(deps.dgram, deps.host || "127.0.0.1", deps.port || 9470,
                             [`cep-${Date.now()}`, ...args], say, options, deps.quietSeconds);
  if (final.event !== "result") throw new Error(`cuesmith: ${final.event}: ${final.message || ""}`);
  const plan = core.sequencePlan(await core.readResult(final.result, deps.readText), clips, deps.place);
  const placed = await evalScript(deps.evalScript, `cuesmith.place(${JSON.stringify(plan)})`);
  say(`cuesmith: done: ${placed.audio} audio clip(s), ${placed.markers} marker(s); ${core.midiLine(plan)}`);
  return plan;
}

function cepDeps(say, place) {
  const fs = require("fs");
  const os = require("os");
  const path = require("path");
  return {
    evalScript: (script, callback) => window.__adobe_cep__.evalScript(script, callback),
    dgram: require("dgram"),
    readText: (file) => fs.promises.readFile(file, "utf8"),
    writeTemp: async (text) => {
      const file = path.join(os.tmpdir(), `cuesmith-request-${Date.now()}.json`);
      await fs.promises.writeFile(file, text, { flag: "wx" });
      return file;
    },
    say,
    place,
  };
}

if (typeof window !== "undefined" && window.__adobe_cep__) {
  const log = document.getElementById("log");
  const say = (line) => { log.textContent += `\n${line}`; log.scrollTop = log.scrollHeight; };
  document.getElementById("score").addEventListener("click", () => {
    const place = document.getElementById("mix").checked ? "mix" : "stems";
    const token = document.getElementById("token").value;
    const family = document.getElementById("family").value.trim();
    scoreSelection({ ...cepDeps(say, place), token, family }).catch((error) => say(String(error.message || error)));
  });
}

if (typeof module !== "undefined") module.exports = { scoreSelection, runJob };
