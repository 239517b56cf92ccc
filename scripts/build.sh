#!/usr/bin/env bash
# Builds the worker into build/ with `worker-build --release`. Skips the build when
# build/worker/shim.mjs is newer than src/, Cargo.toml and Cargo.lock. `wrangler dev`
# runs this script through wrangler.toml's [build] command on every start, so the skip
# keeps restarts fast. Pass --force (or set TOLLGATE_FORCE_BUILD=1) to rebuild.
#
# It does not install anything: run scripts/setup.sh first.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$TOLLGATE_ROOT"

force="${TOLLGATE_FORCE_BUILD:-0}"
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    *)
      echo "build: unknown argument '$arg' (the only option is --force)" >&2
      exit 2
      ;;
  esac
done

output=build/worker/shim.mjs
if [[ "$force" != 1 && -f "$output" ]] &&
  [[ -z "$(find src Cargo.toml Cargo.lock -newer "$output" -print -quit)" ]]; then
  echo "build: $output is up to date (run scripts/build.sh --force to rebuild)"
  exit 0
fi

for tool in worker-build wasm-bindgen; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build: $tool not found. Run scripts/setup.sh first." >&2
    exit 1
  fi
done
if [[ -z "${WASM_OPT_BIN:-}" ]]; then
  echo "build: node_modules/.bin/wasm-opt not found. Run scripts/setup.sh first." >&2
  exit 1
fi

started=$SECONDS
worker-build --release

wasm_file="$(find build -maxdepth 2 -name '*.wasm' -print | head -n 1)"
if [[ -n "$wasm_file" ]]; then
  raw_bytes="$(wc -c <"$wasm_file")"
  gzip_bytes="$(gzip -9 -c "$wasm_file" | wc -c)"
  echo "build: $wasm_file is $raw_bytes bytes raw, $gzip_bytes bytes gzipped (gzip -9); built in $((SECONDS - started)) s"
fi
