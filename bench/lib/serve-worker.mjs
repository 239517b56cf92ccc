// Child process that runs one bundled Worker in its own workerd through Miniflare, the
// library behind `wrangler dev`, resolved from the pinned wrangler so that the runtime
// is the one `wrangler dev` uses. Unlike `wrangler dev`, nothing sits between the
// client and workerd: no proxy worker and no per-request log line sent back to Node.
//
// Usage: node bench/lib/serve-worker.mjs SPEC.json
// SPEC: { name, modules: [{ type, path }], modulesRoot, compatibilityDate, compatibilityFlags,
//         bindings, kvNamespaces, persistRoot, outputFile, inspectorPort (optional) }
// Prints `ready <url>` on stdout once workerd listens on 127.0.0.1. On SIGTERM or
// SIGINT, Miniflare's own exit hook kills workerd and exits the process. On every
// exit, the last 64 KiB of the Worker's output are written to `outputFile`.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const OUTPUT_TAIL_BYTES = 64 * 1024;

const requireFromWrangler = createRequire(createRequire(join(REPO_ROOT, "package.json")).resolve("wrangler/package.json"));
const { Miniflare } = requireFromWrangler("miniflare");

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));

// The Worker's console output (Tollgate writes one line per request) is kept in memory,
// trimmed to its tail, rather than printed, so that a slow terminal cannot slow the
// Worker under load.
let outputTail = "";
function keepOutput(stream) {
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    outputTail += chunk;
    if (outputTail.length > 2 * OUTPUT_TAIL_BYTES) outputTail = outputTail.slice(-OUTPUT_TAIL_BYTES);
  });
}

const miniflare = new Miniflare({
  host: "127.0.0.1",
  port: 0,
  modules: spec.modules,
  // Module names are paths relative to this folder, as in the uploaded bundle.
  modulesRoot: spec.modulesRoot,
  compatibilityDate: spec.compatibilityDate,
  compatibilityFlags: spec.compatibilityFlags,
  bindings: spec.bindings,
  kvNamespaces: spec.kvNamespaces,
  defaultPersistRoot: spec.persistRoot,
  logRequests: false,
  // workerd's DevTools inspector on 127.0.0.1, for bench/profile.mjs.
  ...(spec.inspectorPort ? { inspectorPort: spec.inspectorPort } : {}),
  handleRuntimeStdio(stdout, stderr) {
    keepOutput(stdout);
    keepOutput(stderr);
  },
});

process.on("exit", () => {
  writeFileSync(spec.outputFile, outputTail.slice(-OUTPUT_TAIL_BYTES));
});

try {
  const url = await miniflare.ready;
  process.stdout.write(`ready ${url.origin}\n`);
} catch (error) {
  process.stderr.write(`serve-worker (${spec.name}): Miniflare failed to start: ${error.stack ?? error}\n`);
  process.stderr.write(`workerd output:\n${outputTail}\n`);
  process.exit(1);
}
