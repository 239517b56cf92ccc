#!/usr/bin/env bash
# Installs everything the build, the demo and the tests need: the wasm32 Rust target,
# worker-build 0.8, the wasm-bindgen CLI at the version Cargo.lock pins, and the npm
# packages (wrangler, binaryen). It is safe to rerun, because it skips every step that
# is already done.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$TOLLGATE_ROOT"

fail() {
  echo "setup: $*" >&2
  exit 1
}

command -v cargo >/dev/null 2>&1 || fail "cargo not found. Install Rust with rustup (https://rustup.rs) and rerun."
command -v rustup >/dev/null 2>&1 || fail "rustup not found. It is needed to add the wasm32-unknown-unknown target; install Rust with rustup (https://rustup.rs)."
command -v node >/dev/null 2>&1 || fail "node not found. Install Node.js 20 or newer and rerun."
command -v npm >/dev/null 2>&1 || fail "npm not found. Install Node.js 20 or newer (it ships npm) and rerun."

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if (( node_major < 20 )); then
  fail "Node.js $(node --version) is too old: wrangler 4.86 needs Node.js 20 or newer."
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding Rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# worker-build 0.8.x builds only the `worker` 0.8 crate: it checks the version in Cargo.lock.
worker_build_version="$(worker-build --version 2>/dev/null || true)"
if [[ ! "$worker_build_version" =~ (^|[^0-9.])0\.8\.[0-9]+ ]]; then
  echo "setup: installing worker-build 0.8 (found: ${worker_build_version:-none}; takes a few minutes)"
  cargo install worker-build --version '^0.8' --locked
fi

# The CLI must be exactly the wasm-bindgen version in Cargo.lock, or the generated glue
# does not match the compiled module. `--locked` is left out on purpose: with it, cargo
# fails to resolve wasm-bindgen-cli's dependencies against the registry.
wasm_bindgen_version="$(tollgate_locked_wasm_bindgen_version)"
[[ -n "$wasm_bindgen_version" ]] || fail "no wasm-bindgen package in Cargo.lock. Run 'cargo generate-lockfile' (wasm-bindgen comes in through the worker crate)."
installed_wasm_bindgen="$(wasm-bindgen --version 2>/dev/null || true)"
if [[ "$installed_wasm_bindgen" != "wasm-bindgen $wasm_bindgen_version" ]]; then
  echo "setup: installing wasm-bindgen-cli $wasm_bindgen_version (found: ${installed_wasm_bindgen:-none}; takes a few minutes)"
  cargo install wasm-bindgen-cli --version "=$wasm_bindgen_version"
fi

# npm writes node_modules/.package-lock.json on every install, so it dates the tree.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi

echo "setup: ok (worker-build $(worker-build --version), $(wasm-bindgen --version), wrangler $(node -p 'require("./node_modules/wrangler/package.json").version'), node $(node --version))"
