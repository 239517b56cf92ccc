// Runs the pinned wrangler (node_modules/.bin/wrangler) for the end-to-end tests:
// local KV writes and `wrangler dev` instances of the built worker, each with its own
// configuration file, variables, secrets and port, all sharing one persistence folder.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const WORKER_MAIN = join(REPO_ROOT, "build/worker/shim.mjs");
const WRANGLER_BIN = join(REPO_ROOT, "node_modules/.bin/wrangler");
const PROJECT_CONFIG = join(REPO_ROOT, "wrangler.toml");

const READY_TIMEOUT_MS = 60_000;
const COMMAND_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

/** `wrangler dev` processes still running, killed when the test process exits without stop(). */
const runningDevServers = new Set();
process.on("exit", () => {
  for (const child of runningDevServers) child.kill("SIGKILL");
});

/** Environment for every wrangler call: no telemetry, no update checks, no `cf` fetch. */
export function wranglerEnv(logDir) {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_SEND_ERROR_REPORTS: "false",
    WRANGLER_HIDE_BANNER: "true",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    // Keeps wrangler's per-request debug log out of ~/.config/.wrangler/logs.
    ...(logDir ? { WRANGLER_LOG_PATH: logDir } : {}),
    NO_COLOR: "1",
    FORCE_COLOR: "0",
  };
}

/** Removes ANSI escape sequences, which wrangler may print even with NO_COLOR. */
function stripAnsi(text) {
  return text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, "");
}

/** Runs `wrangler ...args` to completion and returns its output; throws on a non-zero exit. */
export function runWrangler(args, { logDir, timeoutMs = COMMAND_TIMEOUT_MS } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(WRANGLER_BIN, args, {
      cwd: REPO_ROOT,
      env: wranglerEnv(logDir),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      reject(new Error(`wrangler ${args.join(" ")} timed out after ${timeoutMs} ms\n${stripAnsi(output)}`));
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`failed to start ${WRANGLER_BIN}: ${error.message}. Run scripts/setup.sh first.`));
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) {
        resolvePromise(stripAnsi(output));
      } else {
        reject(new Error(`wrangler ${args.join(" ")} failed (exit ${code ?? signal})\n${stripAnsi(output)}`));
      }
    });
  });
}

/**
 * Reads the project's wrangler.toml through wrangler's own parser and returns the parts
 * that every test instance copies: compatibility date and flags, and the KV bindings.
 */
export async function readProjectConfig() {
  const { unstable_readConfig: readConfig } = await import("wrangler");
  const config = readConfig({ config: PROJECT_CONFIG });
  const entitlements = config.kv_namespaces.find((namespace) => namespace.binding === "ENTITLEMENTS");
  if (!entitlements) {
    throw new Error(`${PROJECT_CONFIG} has no [[kv_namespaces]] entry with binding = "ENTITLEMENTS"`);
  }
  return {
    compatibility_date: config.compatibility_date,
    compatibility_flags: config.compatibility_flags,
    kv_namespaces: config.kv_namespaces.map(({ binding, id }) => ({ binding, id })),
  };
}

/** Writes `entries` ({key: string value}) into local KV with one `wrangler kv bulk put`. */
export async function bulkPutLocalKv({ persistDir, logDir, entries, scratchDir }) {
  const file = join(scratchDir, "kv-bulk.json");
  const records = Object.entries(entries).map(([key, value]) => ({ key, value }));
  await writeFile(file, JSON.stringify(records));
  await runWrangler(
    ["kv", "bulk", "put", file, "--binding", "ENTITLEMENTS", "--local", "--persist-to", persistDir],
    { logDir },
  );
}

/** Writes one key into local KV with `wrangler kv key put`, as an operator would. */
export async function putLocalKv({ persistDir, logDir, key, value }) {
  await runWrangler(
    ["kv", "key", "put", key, value, "--binding", "ENTITLEMENTS", "--local", "--persist-to", persistDir],
    { logDir },
  );
}

/** Ports already handed out by findFreePort in this process. */
const handedOutPorts = new Set();

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago and that this process has
 * not handed out before, so that instances started in parallel get different ports.
 */
export async function findFreePort() {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await new Promise((resolvePromise, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const { port: boundPort } = server.address();
        server.close(() => resolvePromise(boundPort));
      });
    });
    if (!handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
  throw new Error("no free TCP port on 127.0.0.1 after 100 attempts");
}

/** Quotes a value for a .dev.vars (dotenv) file. */
function dotenvLine(name, value) {
  if (/[\n"\\]/.test(value)) {
    throw new Error(`secret ${name} contains a newline, quote or backslash, which this harness cannot write to .dev.vars`);
  }
  return `${name}="${value}"\n`;
}

/**
 * Starts `wrangler dev` on the built worker (build/worker/shim.mjs) in the local
 * workerd runtime. The instance gets its own folder with a wrangler.json (the project's
 * compatibility settings and KV bindings, plus `vars`) and a .dev.vars (the `secrets`),
 * and shares `persistDir` with the other instances and the KV commands.
 *
 * Returns `{ name, url, port, output(), stop() }`, where output() is everything
 * wrangler and the worker printed so far (console.log lines included).
 */
export async function startWranglerDev(options) {
  // A port found free can be taken before wrangler binds it, by another instance's
  // workerd for example, so a start that fails on a port in use is retried on new ports.
  const attempts = 3;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startWranglerDevOnce(options);
    } catch (error) {
      if (attempt >= attempts || !/address already in use|EADDRINUSE/i.test(error.message)) throw error;
    }
  }
}

async function startWranglerDevOnce({ name, projectConfig, vars, secrets = {}, persistDir, instanceDir, logDir }) {
  if (!existsSync(WORKER_MAIN)) {
    throw new Error(`${WORKER_MAIN} does not exist. Build the worker first with scripts/build.sh.`);
  }
  await mkdir(instanceDir, { recursive: true });
  const configPath = join(instanceDir, "wrangler.json");
  const config = {
    name: `tollgate-e2e-${name}`,
    main: WORKER_MAIN,
    ...projectConfig,
    vars,
  };
  await writeFile(configPath, JSON.stringify(config, null, 2));
  // wrangler dev reads .dev.vars from the folder of the configuration file.
  await writeFile(
    join(instanceDir, ".dev.vars"),
    Object.entries(secrets)
      .map(([key, value]) => dotenvLine(key, value))
      .join(""),
  );

  const port = await findFreePort();
  const inspectorPort = await findFreePort();
  const args = [
    "dev",
    "--config", configPath,
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(inspectorPort),
    "--persist-to", persistDir,
    "--show-interactive-dev-session=false",
  ];
  const child = spawn(WRANGLER_BIN, args, {
    cwd: instanceDir,
    env: wranglerEnv(logDir),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let exited = false;
  const exitPromise = new Promise((resolveExit) => {
    child.on("exit", (code, signal) => {
      exited = true;
      resolveExit({ code, signal });
    });
  });
  runningDevServers.add(child);
  child.on("exit", () => runningDevServers.delete(child));

  await new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`wrangler dev (${name}) was not ready after ${READY_TIMEOUT_MS} ms\n${stripAnsi(output)}`));
    }, READY_TIMEOUT_MS);
    const onData = (chunk) => {
      output += chunk;
      if (/Ready on http:\/\/127\.0\.0\.1:\d+/.test(stripAnsi(output))) {
        clearTimeout(timer);
        resolveReady();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`failed to start ${WRANGLER_BIN}: ${error.message}. Run scripts/setup.sh first.`));
    });
    exitPromise.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`wrangler dev (${name}) exited (${code ?? signal}) before it was ready\n${stripAnsi(output)}`));
    });
  }).catch((error) => {
    if (!exited) child.kill("SIGKILL");
    throw error;
  });

  return {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => stripAnsi(output),
    /** Stops wrangler (SIGTERM, then SIGKILL after a grace period); wrangler stops workerd. */
    async stop() {
      if (exited) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exitPromise;
      clearTimeout(timer);
    },
  };
}
