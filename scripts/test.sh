#!/usr/bin/env bash
# Runs every test: setup, build, the native Rust tests (`cargo test`, property tests
# included), the end-to-end tests (tests/e2e/*.test.mjs with Node's built-in runner)
# against the built worker in the local workerd runtime, then a smoke run of every
# fuzz target (TOLLGATE_FUZZ_SECONDS each, default 5) so the targets keep building.
# Exits non-zero if any step fails.
#
# Extra arguments go to `node --test`, for example: scripts/test.sh --test-name-pattern=402
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$TOLLGATE_ROOT"

scripts/setup.sh
scripts/build.sh

native_status=0
echo "test: cargo test (native)"
cargo test || native_status=$?

e2e_status=0
echo "test: end-to-end tests (node --test tests/e2e/*.test.mjs)"
node --test --test-reporter=spec "$@" tests/e2e/*.test.mjs || e2e_status=$?

fuzz_status=0
echo "test: fuzz smoke run (scripts/fuzz.sh ${TOLLGATE_FUZZ_SECONDS:-5})"
scripts/fuzz.sh "${TOLLGATE_FUZZ_SECONDS:-5}" || fuzz_status=$?

if (( native_status != 0 || e2e_status != 0 || fuzz_status != 0 )); then
  echo "test: FAILED (cargo test exit $native_status, end-to-end exit $e2e_status, fuzz exit $fuzz_status)" >&2
  exit 1
fi
echo "test: cargo test, end-to-end tests and fuzz smoke run passed"
