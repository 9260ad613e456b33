// Runs an installed cuesmith Premiere panel (uxp or cep) outside Premiere: the panel's own main.js with a
// fake Premiere (the fake `premierepro` module, or host.jsx in a vm with a fake ExtendScript DOM), the real
// engine (WebSocket for UXP, UDP for CEP) and real files; writes what reached Premiere as JSON.
// usage: node --experimental-websocket run_premiere.js uxp|cep PANEL_DIR SCENE.json LOG.json
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const vm = require("vm");

const [kind, panel, scenePath, logPath] = process.argv.slice(2);
process.env.CUESMITH_FAKE_SCENE = scenePath;
const scene = JSON.parse(fs.readFileSync(scenePath, "utf8"));
const lines = [];
const say = (line) => { lines.push(line); console.log(line); };
const common = {
  readText: (file) => fs.promises.readFile(file, "utf8"),
  writeTemp: async (text) => {
    const file = path.join(os.tmpdir(), `cuesmith-request-${process.pid}-${Date.now()}.json`);
    await fs.promises.writeFile(file, text, { flag: "wx" });
    return file;
  },
  say,
  place: process.env.CUESMITH_PLACE || "stems",
  family: process.env.CUESMITH_FAMILY || "", // the panel's "model family" field
};

async function runUxp() {
  const ppro = require(path.join(__dirname, "node", "premierepro"));
  const { scoreSelection } = require(path.join(panel, "main.js"));
  const core = require(path.join(panel, "core.js"));
  const configToken = () => core.configToken(common.readText, process.platform, process.env, os.homedir());
  const plan = await scoreSelection({ ...common, ppro, WebSocketImpl: WebSocket, url: process.env.CUESMITH_WS_URL,
                                      configToken });
  return { plan, calls: ppro.calls };
}

async function runCep() {
  const { fakeApp } = require(path.join(__dirname, "premiere_cep_fake.js"));
  const fake = fakeApp(scene);
  const context = vm.createContext({ app: fake.app, qe: fake.qe, ProjectItemType: fake.ProjectItemType });
  vm.runInContext(fs.readFileSync(path.join(panel, "host.jsx"), "utf8"), context);
  const evalScript = (script, callback) => setImmediate(() => callback(String(vm.runInContext(script, context))));
  const { scoreSelection } = require(path.join(panel, "main.js"));
  const plan = await scoreSelection({ ...common, evalScript, dgram: require("dgram"),
                                      host: process.env.CUESMITH_HOST, port: Number(process.env.CUESMITH_PORT),
                                      quietSeconds: Number(process.env.CUESMITH_QUIET || 10) });
  const markers = fake.markers.map((m) => ({ seconds: m.start.seconds, name: m.name, comments: m.comments,
                                             colour: m.colour }));
  return { plan, calls: fake.calls, markers };
}

(kind === "uxp" ? runUxp() : runCep())
  .then((out) => fs.writeFileSync(logPath, JSON.stringify({ ...out, lines })))
  .catch((error) => {
    fs.writeFileSync(logPath, JSON.stringify({ error: String(error.stack || error), lines }));
    process.exitCode = 1;
  });
