// Records a CPU profile of one Worker under the benchmark's load, through workerd's
// inspector. It prints where the isolate spent the time: the busiest functions (own
// time) and a split into Tollgate's wasm, its JS glue, the runtime and idle time.
// Run it through scripts/profile.sh, which builds a module that keeps its function
// names. All traffic stays on 127.0.0.1.
//
// Usage: node bench/profile.mjs [WORKER] [SCENARIO] [VARIANT]
//   WORKER: tollgate (default), jose or forward; SCENARIO: a scenario id from
//   bench/lib/fixture.mjs (default es256-allowed); VARIANT: same (default) or none.
// Settings: PROFILE_SECONDS (default 5), PROFILE_CONNECTIONS (default 16).

import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { createBindings, ENTITLEMENT_RECORDS, mintTokens, REQUEST_PATH, SCENARIOS } from "./lib/fixture.mjs";
import { runLoad } from "./lib/load.mjs";
import { startNodeChild } from "./lib/processes.mjs";
import { bundleWorker, readProjectConfig, REPO_ROOT, seedLocalKv, startWorker, WORKERS } from "./lib/workers.mjs";

const INSPECTOR_PORT = 9239;
const SAMPLING_INTERVAL_US = 100;

const WebSocket = createRequire(join(REPO_ROOT, "package.json"))("ws");

function log(message) {
  process.stderr.write(`profile: ${message}\n`);
}

/** Connects a minimal Chrome DevTools Protocol client over one WebSocket. */
async function connectInspector(url) {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  let nextId = 1;
  const pending = new Map();
  socket.on("message", (data) => {
    const message = JSON.parse(data.toString());
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.error) waiter.reject(new Error(`${waiter.method}: ${message.error.message}`));
    else waiter.resolve(message.result);
  });
  return {
    send(method, params = {}) {
      const id = nextId++;
      socket.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
    },
    close() {
      socket.close();
    },
  };
}

/** Sums the profile's samples by the node each one landed in (own time). */
function summarise(profile) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const counts = new Map();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const byFunction = new Map();
  const byKind = new Map();
  let total = 0;
  for (const [id, count] of counts) {
    const { functionName, url, lineNumber, columnNumber } = nodes.get(id).callFrame;
    const name = functionName || "(anonymous)";
    // Samples outside any script are the runtime's, or V8's own "(idle)", "(program)"
    // and "(garbage collector)" entries.
    let kind = "js";
    if (url.startsWith("wasm://")) kind = "wasm";
    else if (url === "") kind = name.startsWith("(") ? name : "runtime";
    const where = kind === "js" ? `${url.split("/").pop()}:${lineNumber + 1}:${columnNumber + 1}` : kind;
    const key = `${name}  [${where}]`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + count);
    byKind.set(kind, (byKind.get(kind) ?? 0) + count);
    total += count;
  }
  return { byFunction, byKind, total };
}

async function main() {
  const [workerName = "tollgate", scenarioId = "es256-allowed", variant = "same"] = process.argv.slice(2);
  const worker = WORKERS.find((candidate) => candidate.name === workerName);
  const scenario = SCENARIOS.find((candidate) => candidate.id === scenarioId);
  if (!worker || !scenario) throw new Error(`unknown worker ${workerName} or scenario ${scenarioId}`);
  const seconds = Number(process.env.PROFILE_SECONDS ?? 5);
  const connections = Number(process.env.PROFILE_CONNECTIONS ?? 16);
  if (!(seconds > 0 && seconds <= 60) || !(connections > 0 && connections <= 256)) {
    throw new Error("PROFILE_SECONDS must be in (0, 60] and PROFILE_CONNECTIONS in (0, 256]");
  }

  const runDir = await mkdtemp(join(tmpdir(), "tollgate-profile-"));
  const children = [];
  try {
    const logDir = join(runDir, "logs");
    await mkdir(logDir, { recursive: true });
    const projectConfig = await readProjectConfig();
    const origin = await startNodeChild("origin", join(REPO_ROOT, "bench/lib/origin-server.mjs"));
    children.push(origin);
    const { keys, vars, secrets } = createBindings(origin.url);
    const persistDir = join(runDir, "state");
    await seedLocalKv({ records: ENTITLEMENT_RECORDS, persistDir, scratchDir: runDir, logDir });
    const bundle = await bundleWorker(worker, { projectConfig, workDir: join(runDir, worker.name), logDir });

    const host = await startWorker(bundle, {
      projectConfig,
      bindings: { ...vars, ...secrets },
      persistDir,
      workDir: join(runDir, worker.name),
      inspectorPort: INSPECTOR_PORT,
    });
    children.push(host);
    const url = `${host.url}${REQUEST_PATH}`;

    const targets = await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json`)).json();
    const target = targets.find((candidate) => candidate.webSocketDebuggerUrl);
    if (!target) throw new Error(`the inspector lists no target: ${JSON.stringify(targets)}`);
    const inspector = await connectInspector(target.webSocketDebuggerUrl);

    const token = scenario.alg && variant === "same" ? mintTokens(keys, 1).get(scenario.id).same : undefined;
    log(`warming up ${worker.name} on ${scenario.label}`);
    await runLoad({ url, connections, durationSeconds: 1, token });

    await inspector.send("Profiler.enable");
    await inspector.send("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
    await inspector.send("Profiler.start");
    const result = await runLoad({ url, connections, durationSeconds: seconds, token });
    const { profile } = await inspector.send("Profiler.stop");
    inspector.close();

    const { byFunction, byKind, total } = summarise(profile);
    const share = (count) => `${((100 * count) / total).toFixed(1)}%`;
    console.log(`${worker.name}, ${scenario.label}, token ${variant}: ${Math.round(result.requestsPerSecond)} req/s, ${total} samples`);
    console.log("\nby kind:");
    for (const [kind, count] of [...byKind].sort((a, b) => b[1] - a[1])) console.log(`  ${share(count).padStart(6)}  ${kind}`);
    console.log("\nbusiest functions (own time):");
    const sources = new Map();
    for (const module of bundle.modules) sources.set(module.path.split("/").pop(), await readFile(module.path, "utf8").catch(() => ""));
    for (const [name, count] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
      // Minified glue: show the start of the function's source.
      const place = /\[(.+):(\d+):(\d+)\]$/.exec(name);
      const lines = place ? (sources.get(place[1]) ?? "").split("\n") : [];
      const from = place ? lines.slice(Number(place[2]) - 1, Number(place[2]) + 3) : [];
      if (from.length > 0) from[0] = from[0].slice(Number(place[3]) - 1);
      const snippet = from.join(" ").replace(/\s+/g, " ").slice(0, 90);
      console.log(`  ${share(count).padStart(6)}  ${name}${snippet ? `  ${snippet}` : ""}`);
    }
  } finally {
    await Promise.allSettled(children.map((child) => child.stop()));
    if (process.env.PROFILE_KEEP === "1") log(`kept ${runDir}`);
    else await rm(runDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  log(error.stack ?? String(error));
  process.exit(1);
});
