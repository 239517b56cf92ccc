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
# TOLLGATE_KEEP_NAMES=1 keeps the wasm function names, for scripts/profile.sh. The
# kind of build is recorded next to the output, so the next build of the other kind
# does not skip.
kind=release
if [[ "${TOLLGATE_KEEP_NAMES:-0}" == 1 ]]; then
  kind=names
fi
kind_file=build/.kind
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
if [[ "$force" != 1 && -f "$output" && "$(cat "$kind_file" 2>/dev/null)" == "$kind" ]] &&
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

wasm_file=build/index_bg.wasm
if [[ ! -f "$wasm_file" ]]; then
  echo "build: worker-build wrote no $wasm_file" >&2
  exit 1
fi
# Cargo.toml turns off worker-build's own wasm-opt run, which keeps the function-name
# section. This one optimises for size and drops the names and the producers section
# (or keeps the names with TOLLGATE_KEEP_NAMES=1). The feature list is worker-build's:
# features that workerd supports, and no newer encodings. If wasm-opt fails, the stale
# shim is removed so the next run rebuilds.
names_flags=(--strip-debug --strip-producers)
if [[ "$kind" == names ]]; then
  names_flags=(--debuginfo)
fi
if ! "$WASM_OPT_BIN" -Os "${names_flags[@]}" \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling \
  "$wasm_file" -o "$wasm_file.opt"; then
  rm -f "$output" "$wasm_file.opt"
  echo "build: wasm-opt failed on $wasm_file" >&2
  exit 1
fi
mv "$wasm_file.opt" "$wasm_file"
echo "$kind" >"$kind_file"

raw_bytes="$(wc -c <"$wasm_file")"
gzip_bytes="$(gzip -9 -c "$wasm_file" | wc -c)"
echo "build: $wasm_file is $raw_bytes bytes raw, $gzip_bytes bytes gzipped (gzip -9); built in $((SECONDS - started)) s"
