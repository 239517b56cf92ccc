// Starts the benchmark's child processes (origin server, Worker hosts, wrangler) and
// stops them by process id. Every child still running when the benchmark exits is
// sent SIGTERM, so that a Worker host can still kill its workerd.

import { spawn } from "node:child_process";

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

/** Child processes started here and not yet exited. */
const runningChildren = new Set();
process.on("exit", () => {
  for (const child of runningChildren) child.kill("SIGTERM");
});

/**
 * Starts `node script ...args` and waits until it prints `ready <url>` on stdout.
 * Returns `{ name, pid, url, startedAt, readyAt, stderr(), stop() }`, where the times
 * are `performance.now()` values in ms.
 */
export async function startNodeChild(name, script, args = [], { env = process.env } = {}) {
  const startedAt = performance.now();
  const child = spawn(process.execPath, [script, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  runningChildren.add(child);

  let stdout = "";
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-16_384);
  });
  const exited = new Promise((resolveExit) => {
    child.on("exit", (code, signal) => {
      runningChildren.delete(child);
      resolveExit({ code, signal });
    });
  });

  const url = await new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${name} did not print "ready" within ${READY_TIMEOUT_MS} ms\n${stderr}`));
    }, READY_TIMEOUT_MS);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      const match = /^ready (\S+)$/m.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolveReady(match[1]);
      }
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`failed to start ${name} (${script}): ${error.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready\n${stderr}`));
    });
  }).catch((error) => {
    child.kill("SIGKILL");
    throw error;
  });
  const readyAt = performance.now();

  return {
    name,
    pid: child.pid,
    url,
    startedAt,
    readyAt,
    stderr: () => stderr,
    /** Sends SIGTERM, then SIGKILL if the child has not exited after a grace period. */
    async stop() {
      if (!runningChildren.has(child)) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Runs `command ...args` to completion with a time limit and returns its combined
 * output. Throws, with the output, on a non-zero exit or a time-out.
 */
export function runCommand(command, args, { cwd, env = process.env, timeoutMs = 120_000 } = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    runningChildren.add(child);
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      reject(new Error(`${command} ${args.join(" ")} timed out after ${timeoutMs} ms\n${output}`));
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`failed to start ${command}: ${error.message}`));
    });
    child.on("exit", (code, signal) => {
      runningChildren.delete(child);
      clearTimeout(timer);
      if (code === 0) {
        resolveRun(output);
      } else {
        reject(new Error(`${command} ${args.join(" ")} failed (exit ${code ?? signal})\n${output}`));
      }
    });
  });
}
