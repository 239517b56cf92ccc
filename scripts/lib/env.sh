# shellcheck shell=bash
# Sourced by the scripts in scripts/. Sets the environment of every worker-build and
# wrangler call in this repository, so that neither needs the network. wrangler sends
# no metrics or error reports and fetches no `cf` data. worker-build uses the local
# wasm-bindgen, wasm-opt and esbuild instead of downloading its own copies.

TOLLGATE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TOLLGATE_ROOT

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$TOLLGATE_ROOT/node_modules/.bin:$PATH"

export WRANGLER_SEND_METRICS=false
export WRANGLER_SEND_ERROR_REPORTS=false
export WRANGLER_HIDE_BANNER=true
export CLOUDFLARE_CF_FETCH_ENABLED=false

# worker-build reads <NAME>_BIN for each tool it would otherwise download.
if command -v wasm-bindgen >/dev/null 2>&1; then
  WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
  export WASM_BINDGEN_BIN
fi
if [[ -x "$TOLLGATE_ROOT/node_modules/.bin/wasm-opt" ]]; then
  export WASM_OPT_BIN="$TOLLGATE_ROOT/node_modules/.bin/wasm-opt"
fi
# wrangler's own esbuild (a dependency of the pinned wrangler); used only when it runs.
if "$TOLLGATE_ROOT/node_modules/.bin/esbuild" --version >/dev/null 2>&1; then
  export ESBUILD_BIN="$TOLLGATE_ROOT/node_modules/.bin/esbuild"
fi

# Prints the exact wasm-bindgen version that Cargo.lock resolves, or nothing.
tollgate_locked_wasm_bindgen_version() {
  awk '
    $0 == "[[package]]" { name = "" }
    $1 == "name" && $3 == "\"wasm-bindgen\"" { name = "wasm-bindgen" }
    name == "wasm-bindgen" && $1 == "version" { gsub(/"/, "", $3); print $3; exit }
  ' "$TOLLGATE_ROOT/Cargo.lock"
}
