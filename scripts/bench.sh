#!/usr/bin/env bash
# Benchmarks Tollgate side by side with the same job written with the `jose` library
# (bench/jose-worker/) and with a forward-only Worker (bench/forward-worker/), each in
# its own local workerd with the same bindings, local KV records and origin. Prints a
# Markdown report and writes it to BENCHMARKS.md, replacing all but the sections kept
# by hand at its end.
#
# It runs scripts/setup.sh and scripts/build.sh first. All traffic stays on 127.0.0.1.
# On a 2-core machine the default run took 7.5 minutes and --quick 70 seconds.
#
# Usage: scripts/bench.sh [--quick]
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$TOLLGATE_ROOT"

usage() {
  cat <<'EOF'
Usage: scripts/bench.sh [--quick]

  --quick   1 round of 2 s runs, no warm-up, 1 cold start per Worker

Settings (environment variables; the defaults are for a run without --quick):
  BENCH_ROUNDS             rounds of runs, median taken over them (default 3, --quick 1)
  BENCH_DURATION_SECONDS   seconds per load run (default 5, --quick 2)
  BENCH_CONNECTIONS        concurrent connections per load run (default 16)
  BENCH_WARMUP_SECONDS     seconds per warm-up run before the first round, 0 for none (default 1, --quick 0)
  BENCH_TOKEN_POOL         distinct tokens per scenario for the "new token" runs (default 20000, --quick 5000)
  BENCH_COLD_STARTS        cold starts measured per Worker (default 3, --quick 1)
  BENCH_SCENARIOS          only these scenarios, ids separated by commas (no-token, es256-bad-signature,
                           es256-no-feature, es256-allowed, hs256-allowed, rs256-allowed, eddsa-allowed);
                           the report is printed, BENCHMARKS.md is left as it was, and the
                           native benches do not run
  BENCH_KEEP=1             keep the temporary run folder (bundles, Worker output) and print its path
EOF
}

for arg in "$@"; do
  case "$arg" in
    --quick) ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "bench: unknown argument '$arg'" >&2
      usage >&2
      exit 2
      ;;
  esac
done

BENCH_STARTED_AT_MS="$(date +%s%3N)"
export BENCH_STARTED_AT_MS
export BENCH_COMMAND="scripts/bench.sh${*:+ $*}"

# BENCHMARKS.md ends with sections kept by hand, after a marker line. They are put back
# after the generated sections.
marker='<!-- kept by hand: scripts/bench.sh replaces everything above this line and keeps the rest -->'
kept_by_hand="$(mktemp)"
trap 'rm -f "$kept_by_hand"' EXIT
if [[ -f BENCHMARKS.md ]]; then
  awk -v marker="$marker" '$0 == marker { found = 1 } found' BENCHMARKS.md >"$kept_by_hand"
fi

# stdout carries only the report, so the set-up and build messages go to stderr.
scripts/setup.sh >&2
scripts/build.sh >&2

node bench/run.mjs "$@"

# A run of only some scenarios compares two builds, so it leaves BENCHMARKS.md alone.
if [[ -n "${BENCH_SCENARIOS:-}" ]]; then
  exit 0
fi

# The native benches of the decision core and the verifiers (criterion), appended to
# the same page. Criterion prints "NAME time: [low median high]", sometimes with the
# name on a line of its own.
echo "bench: native benches (cargo bench --bench decision)" >&2
native="$(cargo bench --bench decision -- --warm-up-time 1 --measurement-time 3 2>/dev/null |
  awk '/^(core|verify)\// { name = $1 } /time:/ { gsub(/\[/, ""); for (i = 1; i <= NF; i++) if ($i == "time:") print "| `" name "` | " $(i + 3) " " $(i + 4) " |" }')"
{
  echo
  echo "## Native decision core and verifiers"
  echo
  echo "\`cargo bench --bench decision\` (criterion, bench profile at opt-level 3, this machine): the median time"
  echo "per call. \`core/*\` is one request's work besides the signature (path, route, bearer,"
  echo "a verified-token cache hit, record, rendering); \`verify/*\` is a full jwt-simple token check."
  echo
  echo "| bench | median |"
  echo "|---|---|"
  echo "$native"
} | tee -a BENCHMARKS.md

if [[ -s "$kept_by_hand" ]]; then
  {
    echo
    cat "$kept_by_hand"
  } >>BENCHMARKS.md
fi
