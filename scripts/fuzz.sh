#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60) and prints, per
# target, the executions libFuzzer reported and whether it found a crash.
#
# Usage: scripts/fuzz.sh [SECONDS]
#
# Needs the nightly toolchain, because libFuzzer builds use -Zsanitizer=address.
# Installs cargo-fuzz from crates.io when it is missing. New corpus entries go to
# fuzz/corpus/, crashing inputs to fuzz/artifacts/ and each run's output to
# fuzz/logs/, all ignored by git. The seeds in fuzz/seeds/ are only read.
#
# Exit status: 0 when no target crashed, 1 when one did, 2 when a target could not be
# built or run, or on a usage error.
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS]" >&2
    echo "SECONDS is the run time per target in whole seconds (default 60), got '$seconds'" >&2
    exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "the nightly toolchain is missing: installing it with rustup"
    if ! rustup toolchain install nightly --profile minimal; then
        echo "error: could not install the nightly toolchain, which libFuzzer builds need; install it with 'rustup toolchain install nightly' and rerun" >&2
        exit 2
    fi
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: installing it from crates.io"
    cargo install cargo-fuzz --locked
fi

# Build every target first, so the first run's time limit is not spent compiling.
echo "building the fuzz targets (the first build takes several minutes)"
cargo +nightly fuzz build --fuzz-dir fuzz
mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)

mkdir -p fuzz/logs
crashes=0
failures=0
printf '%-14s %12s  %s\n' target executions result
for target in "${targets[@]}"; do
    corpus=("fuzz/corpus/$target")
    mkdir -p "${corpus[0]}"
    if [[ -d "fuzz/seeds/$target" ]]; then
        corpus+=("fuzz/seeds/$target")
    fi
    log="fuzz/logs/$target.log"

    # -timeout: an input that runs longer than 10 s is reported as a crash (a hang).
    status=0
    cargo +nightly fuzz run --fuzz-dir fuzz "$target" "${corpus[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?

    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    if [[ $status -eq 0 ]]; then
        result="no crash"
    elif [[ -n "$artifact" ]]; then
        result="CRASH: input in $artifact, output in $log"
        crashes=$((crashes + 1))
    else
        result="FAILED to run (exit status $status), output in $log"
        failures=$((failures + 1))
    fi
    printf '%-14s %12s  %s\n' "$target" "${executions:-unknown}" "$result"
done

if [[ $crashes -gt 0 ]]; then
    echo "$crashes target(s) crashed; reproduce with: cargo +nightly fuzz run --fuzz-dir fuzz TARGET INPUT" >&2
    exit 1
fi
if [[ $failures -gt 0 ]]; then
    exit 2
fi
