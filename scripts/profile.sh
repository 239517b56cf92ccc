#!/usr/bin/env bash
# Records a CPU profile of one Worker of the benchmark under load (bench/profile.mjs)
# and prints where the isolate spent its time. Tollgate is built with its wasm function
# names kept; the next scripts/build.sh rebuilds the release module. All traffic stays
# on 127.0.0.1; the load lasts PROFILE_SECONDS (default 5).
#
# Usage: scripts/profile.sh [WORKER] [SCENARIO] [VARIANT]
#   WORKER   tollgate (default), jose or forward
#   SCENARIO a scenario id of bench/lib/fixture.mjs (default es256-allowed)
#   VARIANT  same (default): one token repeated; none: no token
# Settings: PROFILE_SECONDS (default 5, at most 60), PROFILE_CONNECTIONS (default 16).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$TOLLGATE_ROOT"

scripts/setup.sh >&2
TOLLGATE_KEEP_NAMES=1 scripts/build.sh >&2
node bench/profile.mjs "$@"
