// The worker's JSON log lines as wrangler passed them on. A line reaches the output
// asynchronously, after the response, so tests wait for the lines they expect.

import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

/** How long to wait for a worker's log line to reach wrangler's output. */
export const LOG_WAIT_MS = 5_000;

/**
 * Returns the worker's JSON log lines that contain `marker` (such as `"jwks_fetch"`)
 * and for which `matches` is true, parsed, oldest first.
 */
export function logLines(worker, marker, matches = () => true) {
  return worker
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{") && line.includes(marker))
    .map((line) => JSON.parse(line))
    .filter(matches);
}

/**
 * Waits until the worker has logged at least `count` lines that [`logLines`] selects,
 * and returns them all. Fails after LOG_WAIT_MS with the worker's whole output.
 */
export async function waitForLogLines(worker, marker, count, matches = () => true) {
  const deadline = Date.now() + LOG_WAIT_MS;
  while (logLines(worker, marker, matches).length < count && Date.now() < deadline) await sleep(50);
  const lines = logLines(worker, marker, matches);
  assert.ok(
    lines.length >= count,
    `expected at least ${count} log lines with ${marker} within ${LOG_WAIT_MS} ms, got ${lines.length}:\n${worker.output()}`,
  );
  return lines;
}
