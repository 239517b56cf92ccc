// Benchmarks Tollgate against the same job written with `jose` and against a
// forward-only Worker, each in its own local workerd, and writes BENCHMARKS.md.
// Run it through scripts/bench.sh, which installs and builds first.
//
// Usage: node bench/run.mjs [--quick]. Settings come from BENCH_* environment
// variables (see settingsFromEnvironment). Progress goes to stderr; the Markdown
// report goes to stdout and to BENCHMARKS.md at the repository root.

import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { constants, loadavg, tmpdir } from "node:os";
import { join } from "node:path";

import { checkForward, checkScenario } from "./lib/check.mjs";
import { createBindings, ENTITLEMENT_RECORDS, mintTokens, REQUEST_PATH, SCENARIOS } from "./lib/fixture.mjs";
import { runLoad } from "./lib/load.mjs";
import { runCommand, startNodeChild } from "./lib/processes.mjs";
import { renderMarkdown, summariseRuns } from "./lib/report.mjs";
import { bundleWorker, copyKvState, readProjectConfig, REPO_ROOT, seedLocalKv, startWorker, WORKERS } from "./lib/workers.mjs";

const ORIGIN_SCRIPT = join(REPO_ROOT, "bench/lib/origin-server.mjs");
const REPORT_FILE = join(REPO_ROOT, "BENCHMARKS.md");

/**
 * Selects the scenarios measured: all of them, or those BENCH_SCENARIOS names (ids, separated
 * by commas) for a quick comparison of two builds. A run of only some scenarios prints
 * its report but does not replace BENCHMARKS.md.
 */
function selectScenarios() {
  const raw = process.env.BENCH_SCENARIOS;
  if (raw === undefined || raw.trim() === "") return { scenarios: SCENARIOS, partial: false };
  const ids = raw.split(",").map((id) => id.trim());
  const unknown = ids.filter((id) => !SCENARIOS.some((scenario) => scenario.id === id));
  if (unknown.length > 0) {
    const known = SCENARIOS.map((scenario) => scenario.id).join(", ");
    throw new Error(`BENCH_SCENARIOS names unknown scenario(s) ${unknown.join(", ")}: known ones are ${known}`);
  }
  return { scenarios: SCENARIOS.filter((scenario) => ids.includes(scenario.id)), partial: true };
}
const SELECTED = selectScenarios();

/** The Workers that get the token scenarios, in the order of odd rounds. */
const COMPARED_WORKERS = WORKERS.filter((worker) => worker.tokenScenarios).map((worker) => worker.name);

/** Token variants of a scenario: none without a token, else the same token or a new one per request. */
function variantsOf(scenario) {
  if (!scenario.alg) return [{ id: "none", label: "none" }];
  return [
    { id: "same", label: "same" },
    { id: "new", label: "new" },
  ];
}

function log(message) {
  process.stderr.write(`bench: ${message}\n`);
}

/** Reads an integer setting from the environment, within [min, max]. */
function integerSetting(name, fallback, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name}=${JSON.stringify(raw)} is invalid: expected an integer from ${min} to ${max}`);
  }
  return value;
}

/**
 * Returns the settings: defaults, or the --quick defaults, overridden by BENCH_ROUNDS,
 * BENCH_DURATION_SECONDS, BENCH_CONNECTIONS, BENCH_WARMUP_SECONDS, BENCH_TOKEN_POOL
 * and BENCH_COLD_STARTS. BENCH_SCENARIOS is read by selectScenarios.
 */
function settingsFromEnvironment(quick) {
  return {
    quick,
    rounds: integerSetting("BENCH_ROUNDS", quick ? 1 : 3, 1, 20),
    durationSeconds: integerSetting("BENCH_DURATION_SECONDS", quick ? 2 : 5, 1, 120),
    connections: integerSetting("BENCH_CONNECTIONS", 16, 1, 512),
    warmupSeconds: integerSetting("BENCH_WARMUP_SECONDS", quick ? 0 : 1, 0, 60),
    tokenPoolSize: integerSetting("BENCH_TOKEN_POOL", quick ? 5_000 : 20_000, 1, 200_000),
    coldStartSamples: integerSetting("BENCH_COLD_STARTS", quick ? 1 : 3, 1, 10),
  };
}

/** Returns the command line to print in the report, with the BENCH_* settings that were set. */
function describeCommand() {
  const overrides = Object.keys(process.env)
    .filter((name) => name.startsWith("BENCH_") && !["BENCH_COMMAND", "BENCH_STARTED_AT_MS"].includes(name))
    .sort()
    .map((name) => `${name}=${process.env[name]}`);
  return [...overrides, process.env.BENCH_COMMAND ?? `node bench/run.mjs ${process.argv.slice(2).join(" ")}`.trim()].join(" ");
}

async function describeMachine() {
  const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  const meminfo = await readFile("/proc/meminfo", "utf8").catch(() => "");
  const memoryKib = Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? NaN);
  return {
    cores: (await runCommand("nproc", [])).trim(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1].trim() ?? "unknown CPU",
    memoryGib: Number.isFinite(memoryKib) ? (memoryKib / 1024 / 1024).toFixed(1) : "unknown",
  };
}

async function describeVersions() {
  const requireFromRoot = createRequire(join(REPO_ROOT, "package.json"));
  const requireFromWrangler = createRequire(requireFromRoot.resolve("wrangler/package.json"));
  const requireFromMiniflare = createRequire(requireFromWrangler.resolve("miniflare/package.json"));
  // The workerd package exports the path of its binary as `default`.
  const workerd = requireFromMiniflare("workerd");
  const workerdRelease = (await runCommand(workerd.default, ["--version"])).trim().replace(/^workerd\s+/, "");
  return {
    node: process.version,
    wrangler: requireFromRoot("wrangler/package.json").version,
    miniflare: requireFromWrangler("miniflare/package.json").version,
    workerd: `${workerd.version} (release ${workerdRelease})`,
    jose: requireFromRoot("jose/package.json").version,
    autocannon: requireFromRoot("autocannon/package.json").version,
  };
}

/** Describes the commit Tollgate was built from, and whether src/ or Cargo.* differ from it. */
async function describeTollgateSource() {
  try {
    const commit = (await runCommand("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_ROOT })).trim();
    const changes = (await runCommand("git", ["status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"], { cwd: REPO_ROOT })).trim();
    return changes ? `built from commit ${commit} with uncommitted changes in src/, Cargo.toml or Cargo.lock` : `built from commit ${commit}`;
  } catch (error) {
    return `commit unknown (${error.message.split("\n")[0]})`;
  }
}

/** Plans the runs of one round: forward-only first, then each scenario and variant on Tollgate and jose. */
function planRound(roundIndex) {
  const order = roundIndex % 2 === 0 ? COMPARED_WORKERS : [...COMPARED_WORKERS].reverse();
  const runs = [{ scenario: null, variant: { id: "none", label: "none" }, worker: "forward" }];
  for (const scenario of SELECTED.scenarios) {
    for (const variant of variantsOf(scenario)) {
      for (const worker of order) runs.push({ scenario, variant, worker });
    }
  }
  return runs;
}

function describeRun(run) {
  return run.scenario ? `${run.worker}, ${run.scenario.label}, token ${run.variant.label}` : `${run.worker}, no checks`;
}

/** Child processes still running; stopped at the end, on failure, and on SIGINT or SIGTERM. */
const children = [];
async function stopChildren() {
  await Promise.allSettled(children.splice(0).map((child) => child.stop()));
}

/** The temporary folder of this run, removed at the end unless BENCH_KEEP=1. */
let temporaryRunDir = null;

/** Stops every child process and removes the run folder; safe to call more than once. */
async function cleanUp() {
  await stopChildren();
  if (!temporaryRunDir) return;
  if (process.env.BENCH_KEEP === "1") {
    log(`kept the run folder ${temporaryRunDir}`);
  } else {
    await rm(temporaryRunDir, { recursive: true, force: true });
  }
  temporaryRunDir = null;
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    log(`${signal} received, stopping the Workers and the origin`);
    cleanUp().finally(() => process.exit(128 + constants.signals[signal]));
  });
}

async function measureColdStarts({ bundles, projectConfig, bindings, runDir, tokens, samples }) {
  const coldStarts = {};
  for (const worker of WORKERS) coldStarts[worker.name] = [];
  for (let sample = 0; sample < samples; sample++) {
    for (const worker of WORKERS) {
      const child = await startWorker(bundles.get(worker.name), {
        projectConfig,
        bindings,
        persistDir: join(runDir, worker.name, "state"),
        workDir: join(runDir, worker.name),
        label: `${worker.name}-cold-${sample + 1}`,
      });
      children.push(child);
      const token = worker.tokenScenarios ? tokens.get("es256-allowed").same : undefined;
      const response = await fetch(`${child.url}${REQUEST_PATH}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(30_000),
      });
      await response.arrayBuffer();
      const respondedAt = performance.now();
      await child.stop();
      children.splice(children.indexOf(child), 1);
      if (response.status !== 200) {
        throw new Error(`cold start of ${worker.name}: the first request got ${response.status}, expected 200`);
      }
      coldStarts[worker.name].push({
        readyMs: child.readyAt - child.startedAt,
        firstResponseMs: respondedAt - child.readyAt,
        totalMs: respondedAt - child.startedAt,
      });
    }
  }
  return coldStarts;
}

/** Runs the correctness check on every Worker; throws with every failure and the Workers' output. */
async function checkAllWorkers({ hosts, originUrl, tokens }) {
  const failures = [];
  for (const failure of await checkForward({ workerUrl: hosts.get("forward").url })) failures.push(`forward, no checks: ${failure}`);
  for (const scenario of SCENARIOS) {
    const scenarioTokens = tokens.get(scenario.id);
    const cases = scenario.alg
      ? [
          ["same token", scenarioTokens.same],
          ["token from the pool", scenarioTokens.pool.at(-1)],
        ]
      : [["no token", undefined]];
    for (const workerName of COMPARED_WORKERS) {
      for (const [caseLabel, token] of cases) {
        const result = await checkScenario({ workerUrl: hosts.get(workerName).url, originUrl, scenario, token });
        for (const failure of result) failures.push(`${workerName}, ${scenario.label}, ${caseLabel}: ${failure}`);
      }
    }
  }
  if (failures.length === 0) return;

  await stopChildren();
  const outputs = [];
  for (const [name, host] of hosts) {
    const output = await readFile(host.outputFile, "utf8").catch(() => "");
    outputs.push(`--- last lines of ${name}'s output ---\n${output.split("\n").slice(-15).join("\n")}`);
  }
  throw new Error(`correctness check failed, nothing was measured:\n  ${failures.join("\n  ")}\n${outputs.join("\n")}`);
}

async function main() {
  const startedAtMs = Number(process.env.BENCH_STARTED_AT_MS) || Date.now();
  const extraArguments = process.argv.slice(2).filter((argument) => argument !== "--quick");
  if (extraArguments.length > 0) {
    throw new Error(`unknown argument(s) ${extraArguments.join(" ")}: the only option is --quick`);
  }
  const settings = settingsFromEnvironment(process.argv.includes("--quick"));
  const loadAtStart = loadavg().map((value) => value.toFixed(2)).join(", ");
  const runsPerRound = planRound(0).length;
  const loadSeconds = runsPerRound * (settings.rounds * settings.durationSeconds + settings.warmupSeconds);
  log(`${runsPerRound} runs per round, ${settings.rounds} round(s) of ${settings.durationSeconds} s per run: about ${loadSeconds} s of load`);

  const runDir = await mkdtemp(join(tmpdir(), "tollgate-bench-"));
  temporaryRunDir = runDir;
  const logDir = join(runDir, "wrangler-logs");
  await mkdir(logDir, { recursive: true });
  try {
    const projectConfig = await readProjectConfig();
    const origin = await startNodeChild("origin", ORIGIN_SCRIPT);
    children.push(origin);
    const { keys, vars, secrets } = createBindings(origin.url);
    const bindings = { ...vars, ...secrets };

    log("seeding local KV (wrangler kv bulk put --local)");
    const seedDir = join(runDir, "kv-seed");
    await seedLocalKv({ records: ENTITLEMENT_RECORDS, persistDir: seedDir, scratchDir: runDir, logDir });

    const bundles = new Map();
    for (const worker of WORKERS) {
      log(`bundling ${worker.name} (wrangler deploy --dry-run)`);
      bundles.set(worker.name, await bundleWorker(worker, { projectConfig, workDir: join(runDir, worker.name), logDir }));
      await copyKvState(seedDir, join(runDir, worker.name, "state"));
    }

    log(`minting tokens: ${settings.tokenPoolSize} per scenario`);
    const tokens = mintTokens(keys, settings.tokenPoolSize);

    log(`measuring cold starts (${settings.coldStartSamples} per Worker)`);
    const coldStarts = await measureColdStarts({ bundles, projectConfig, bindings, runDir, tokens, samples: settings.coldStartSamples });

    const hosts = new Map();
    for (const worker of WORKERS) {
      const host = await startWorker(bundles.get(worker.name), {
        projectConfig,
        bindings,
        persistDir: join(runDir, worker.name, "state"),
        workDir: join(runDir, worker.name),
      });
      children.push(host);
      hosts.set(worker.name, host);
    }

    log("checking every scenario on tollgate and jose");
    await checkAllWorkers({ hosts, originUrl: origin.url, tokens });

    // One cursor per scenario and Worker, kept across rounds, so a Worker receives a
    // pool token a second time only after the whole pool has been sent to it.
    const cursors = new Map();
    const results = new Map();
    const anomalies = [];
    const execute = async (run, durationSeconds, label) => {
      const url = `${hosts.get(run.worker).url}${REQUEST_PATH}`;
      const options = { url, connections: settings.connections, durationSeconds };
      if (run.variant.id === "same") options.token = tokens.get(run.scenario.id).same;
      if (run.variant.id === "new") {
        const pool = tokens.get(run.scenario.id).pool;
        const key = `${run.scenario.id}/${run.worker}`;
        if (!cursors.has(key)) cursors.set(key, { sent: 0 });
        const cursor = cursors.get(key);
        options.nextToken = () => pool[cursor.sent++ % pool.length];
      }
      const result = await runLoad(options);
      const expectedStatus = String(run.scenario?.expectedStatus ?? 200);
      const unexpected = Object.entries(result.statusCounts).filter(([status]) => status !== expectedStatus);
      if (unexpected.length > 0 || result.errors > 0 || result.timeouts > 0) {
        const statuses = unexpected.map(([status, count]) => `${count} × ${status}`).join(", ");
        anomalies.push(`${label}, ${describeRun(run)}: ${[statuses, `${result.errors} errors`, `${result.timeouts} time-outs`].filter(Boolean).join(", ")} (expected only ${expectedStatus})`);
      }
      log(`${label}: ${describeRun(run)}: ${Math.round(result.requestsPerSecond)} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms`);
      return result;
    };

    if (settings.warmupSeconds > 0) {
      for (const run of planRound(0)) await execute(run, settings.warmupSeconds, "warm-up");
    }
    for (let round = 0; round < settings.rounds; round++) {
      for (const run of planRound(round)) {
        const result = await execute(run, settings.durationSeconds, `round ${round + 1}/${settings.rounds}`);
        const key = `${run.scenario?.id ?? "forward"}/${run.variant.id}/${run.worker}`;
        if (!results.has(key)) results.set(key, []);
        results.get(key).push(result);
      }
    }
    await stopChildren();

    const summaries = new Map([...results].map(([key, runs]) => [key, summariseRuns(runs)]));
    const maxSends = Math.max(...[...cursors.values()].map((cursor) => Math.ceil(cursor.sent / settings.tokenPoolSize)));
    const tokenReuse =
      maxSends <= 1
        ? `no Worker received any pool token twice (warm-up and rounds together).`
        : `a Worker received each pool token at most ${maxSends} times over warm-up and rounds, so a cache that holds at least ${settings.tokenPoolSize} verified tokens could have had hits.`;

    const report = {
      command: describeCommand(),
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      elapsedSeconds: (Date.now() - startedAtMs) / 1000,
      machine: { ...(await describeMachine()), loadAtStart, loadAtEnd: loadavg().map((value) => value.toFixed(2)).join(", ") },
      versions: await describeVersions(),
      tollgate: await describeTollgateSource(),
      settings,
      scenarios: SELECTED.scenarios,
      partial: SELECTED.partial,
      variants: variantsOf,
      summaries,
      forward: summaries.get("forward/none/forward"),
      coldStarts,
      bundles: [...bundles.values()],
      tokenReuse,
      anomalies,
    };
    const markdown = renderMarkdown(report);
    process.stdout.write(markdown);
    if (SELECTED.partial) {
      log(`BENCH_SCENARIOS is set: ${REPORT_FILE} was left as it was`);
    } else {
      await writeFile(REPORT_FILE, markdown);
      log(`wrote ${REPORT_FILE}`);
    }
  } finally {
    await cleanUp();
  }
}

main().catch((error) => {
  log(error.message ?? String(error));
  process.exit(1);
});
