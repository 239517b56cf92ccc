// The three Workers of the benchmark: how each is bundled (`wrangler deploy --dry-run`,
// which also reports the upload size), how local KV is seeded, and how a bundle is
// started in its own workerd through bench/lib/serve-worker.mjs.

import { cp, mkdir, readdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { runCommand, startNodeChild } from "./processes.mjs";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const WRANGLER_BIN = join(REPO_ROOT, "node_modules/.bin/wrangler");
const SERVE_WORKER_SCRIPT = join(REPO_ROOT, "bench/lib/serve-worker.mjs");

/** The Workers compared, in table order. `tokenScenarios` is false for the upper bound. */
export const WORKERS = [
  { name: "tollgate", main: join(REPO_ROOT, "build/worker/shim.mjs"), tokenScenarios: true },
  { name: "jose", main: join(REPO_ROOT, "bench/jose-worker/index.js"), tokenScenarios: true },
  { name: "forward", main: join(REPO_ROOT, "bench/forward-worker/index.js"), tokenScenarios: false },
];

/** Module types of the files that `wrangler deploy --outdir` writes, by extension. */
const MODULE_TYPES = { ".js": "ESModule", ".mjs": "ESModule", ".wasm": "CompiledWasm" };
/** Files in the output folder that are not modules. */
const IGNORED_OUTPUT = [".map", ".md"];

/**
 * Environment of every wrangler call: no telemetry, update checks or `cf` fetch (as in
 * scripts/lib/env.sh), and wrangler's debug log kept in `logDir`.
 */
export function wranglerEnv(logDir) {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_SEND_ERROR_REPORTS: "false",
    WRANGLER_HIDE_BANNER: "true",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_LOG_PATH: logDir,
    NO_COLOR: "1",
    FORCE_COLOR: "0",
  };
}

/**
 * Reads the project's wrangler.toml through wrangler's own parser and returns the
 * settings every benchmark Worker copies: compatibility date and flags, KV bindings.
 * The parser runs in a separate Node process because importing wrangler installs
 * SIGINT and SIGTERM handlers that exit at once, before the Workers are stopped.
 */
export async function readProjectConfig() {
  const wranglerModule = createRequire(join(REPO_ROOT, "package.json")).resolve("wrangler");
  const script = `
    const { unstable_readConfig: readConfig } = await import(${JSON.stringify(wranglerModule)});
    const config = readConfig({ config: ${JSON.stringify(join(REPO_ROOT, "wrangler.toml"))} });
    process.stdout.write("\\nconfig " + JSON.stringify(config) + "\\n");`;
  // The output also carries any warning wrangler prints, so the JSON is on its own marked line.
  const output = await runCommand(process.execPath, ["--input-type=module", "-e", script], { cwd: REPO_ROOT });
  const configLine = /^config (.+)$/m.exec(output);
  if (!configLine) throw new Error(`reading wrangler.toml printed no configuration:\n${output}`);
  const config = JSON.parse(configLine[1]);
  const entitlements = config.kv_namespaces.find((namespace) => namespace.binding === "ENTITLEMENTS");
  if (!entitlements) {
    throw new Error('wrangler.toml has no [[kv_namespaces]] entry with binding = "ENTITLEMENTS"');
  }
  return {
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags ?? [],
    entitlementsNamespaceId: entitlements.id,
  };
}

/**
 * Writes `records` ({key: value}) into local KV under `persistDir` with one
 * `wrangler kv bulk put`, as the README documents for operators.
 */
export async function seedLocalKv({ records, persistDir, scratchDir, logDir }) {
  const file = join(scratchDir, "kv-bulk.json");
  await writeFile(file, JSON.stringify(Object.entries(records).map(([key, value]) => ({ key, value }))));
  await runCommand(
    WRANGLER_BIN,
    ["kv", "bulk", "put", file, "--binding", "ENTITLEMENTS", "--local", "--persist-to", persistDir],
    { cwd: REPO_ROOT, env: wranglerEnv(logDir) },
  );
}

/**
 * Bundles `worker` with `wrangler deploy --dry-run --outdir`, which needs no account
 * or network. Returns `{ name, modules, modulesRoot, uploadKib, gzipKib }`: the modules in the
 * order Miniflare needs (main module first), their folder, and the upload size that
 * wrangler printed.
 */
export async function bundleWorker(worker, { projectConfig, workDir, logDir }) {
  await mkdir(workDir, { recursive: true });
  const configPath = join(workDir, "wrangler.json");
  const outDir = join(workDir, "bundle");
  const config = {
    name: `bench-${worker.name}`,
    main: worker.main,
    compatibility_date: projectConfig.compatibilityDate,
    compatibility_flags: projectConfig.compatibilityFlags,
    kv_namespaces: [{ binding: "ENTITLEMENTS", id: projectConfig.entitlementsNamespaceId }],
  };
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const output = await runCommand(
    WRANGLER_BIN,
    ["deploy", "--dry-run", "--outdir", outDir, "--config", configPath],
    { cwd: workDir, env: wranglerEnv(logDir) },
  );

  const size = /Total Upload:\s*([\d.]+)\s*KiB\s*\/\s*gzip:\s*([\d.]+)\s*KiB/.exec(output);
  if (!size) {
    throw new Error(`wrangler deploy --dry-run for ${worker.name} printed no "Total Upload: X KiB / gzip: Y KiB" line:\n${output}`);
  }

  const mainFile = `${basename(worker.main, extname(worker.main))}.js`;
  const modules = [];
  for (const file of (await readdir(outDir)).sort()) {
    const extension = extname(file);
    if (IGNORED_OUTPUT.includes(extension)) continue;
    const type = MODULE_TYPES[extension];
    if (!type) throw new Error(`unexpected file ${file} in ${outDir}: no module type is known for ${extension}`);
    const module = { type, path: join(outDir, file) };
    if (file === mainFile) modules.unshift(module);
    else modules.push(module);
  }
  if (modules[0]?.path !== join(outDir, mainFile)) {
    throw new Error(`wrangler wrote no ${mainFile} to ${outDir} for ${worker.name}`);
  }
  return { name: worker.name, modules, modulesRoot: outDir, uploadKib: Number(size[1]), gzipKib: Number(size[2]) };
}

/** Copies the seeded KV state to a folder of the worker's own, so no two workerd share files. */
export async function copyKvState(sourcePersistDir, targetPersistDir) {
  await cp(sourcePersistDir, targetPersistDir, { recursive: true });
}

/**
 * Starts `bundle` in a new serve-worker process with `bindings` and the KV state in
 * `persistDir`. Returns the child from startNodeChild plus `outputFile`, where the
 * Worker's console output is written when it stops.
 */
export async function startWorker(bundle, { projectConfig, bindings, persistDir, workDir, label = bundle.name, inspectorPort }) {
  await mkdir(workDir, { recursive: true });
  const specPath = join(workDir, `${label}.spec.json`);
  const outputFile = join(workDir, `${label}.output.log`);
  const spec = {
    name: label,
    modules: bundle.modules,
    modulesRoot: bundle.modulesRoot,
    compatibilityDate: projectConfig.compatibilityDate,
    compatibilityFlags: projectConfig.compatibilityFlags,
    bindings,
    kvNamespaces: { ENTITLEMENTS: projectConfig.entitlementsNamespaceId },
    persistRoot: join(persistDir, "v3"),
    outputFile,
    inspectorPort,
  };
  await writeFile(specPath, JSON.stringify(spec));
  const child = await startNodeChild(`worker ${label}`, SERVE_WORKER_SCRIPT, [specPath]);
  return { ...child, outputFile };
}
