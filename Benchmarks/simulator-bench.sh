#!/usr/bin/env bash
# Benchmark of the ECS simulator (ecs-sim): start-up time, one page of 1,000 server details
# (Nova and v1), small-call throughput with wrk, and peak memory; goals with PASS/MISS.
#
# Usage: Benchmarks/simulator-bench.sh
#
# Environment:
#   SKIP_BUILD=1        do not run `swift build -c release --product ecs-sim`
#   BIN=path            ecs-sim binary (default: <scratch>/release/ecs-sim)
#   SCRATCH_PATH=dir    SwiftPM scratch path of the release build (default: .build-static, the package's).
#                       A separate one does not hold the lock of .build during the long release
#                       build; it is seeded offline with .build's checkouts and repositories.
#   BUILD_NICE=10       niceness of the release build (0 = not niced)
#   PROJECTS=100        projects in the simulated region
#   SERVERS=1000        servers per project
#   PAGE_REQUESTS=50    timed requests per page benchmark
#   WRK_THREADS=2 WRK_CONNECTIONS=32 WRK_DURATION=10s   small-call load
#   LOADGEN=wrk|python  force the load generator (default: wrk, installed with apt-get if
#                       missing; the Python one if wrk cannot be installed)
#   RESULTS_JSON=file   also write the results as JSON
#
# Exits non-zero only on errors (build, start-up, failed requests, shutdown), not on a missed goal.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# ROOT, SKIP_BUILD, SCRATCH_PATH, BUILD_NICE, SCRATCH; say, die, require_python3, release_build, require_executable
# shellcheck source-path=SCRIPTDIR source=bench-common.sh
source "$HERE/bench-common.sh"

PROJECTS="${PROJECTS:-100}"
SERVERS="${SERVERS:-1000}"
PAGE_REQUESTS="${PAGE_REQUESTS:-50}"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-32}"
WRK_DURATION="${WRK_DURATION:-10s}"
LOADGEN="${LOADGEN:-wrk}"
RESULTS_JSON="${RESULTS_JSON:-}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else return 1
  fi
}

# ---- tools
require_python3

# ---- 1. build
release_build "set SKIP_BUILD=1 and BIN=... to use a built binary" ecs-sim
BIN="${BIN:-$SCRATCH/release/ecs-sim}"
require_executable ecs-sim "$BIN" BIN

# ---- wrk
WRK=""
if [ "$LOADGEN" = "wrk" ]; then
  if ! command -v wrk >/dev/null 2>&1; then
    say "wrk not found: installing it with apt-get (apt-get update, apt-get install wrk)"
    apt_log="$(mktemp)"
    if as_root apt-get update >"$apt_log" 2>&1 \
      && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >>"$apt_log" 2>&1; then
      say "installed wrk"
    else
      say "could not install wrk; apt-get said:"
      tail -n 5 "$apt_log" >&2 || true
    fi
    rm -f "$apt_log"
  fi
  if command -v wrk >/dev/null 2>&1; then
    WRK="$(command -v wrk)"
  else
    say "WARNING: wrk is unavailable; falling back to the Python asyncio load generator (a lower bound)"
  fi
elif [ "$LOADGEN" = "python" ]; then
  say "LOADGEN=python: using the Python asyncio load generator"
else
  die "LOADGEN must be wrk or python"
fi

# ---- 2-4. start, measure, stop (the helper stops the simulator with SIGTERM and checks it exited)
args=(--bin "$BIN" --projects "$PROJECTS" --servers "$SERVERS" --page-requests "$PAGE_REQUESTS"
      --threads "$WRK_THREADS" --connections "$WRK_CONNECTIONS" --duration "$WRK_DURATION" --wrk "$WRK")
if [ -n "$RESULTS_JSON" ]; then args+=(--json "$RESULTS_JSON"); fi
if [ "$SKIP_BUILD" = "1" ]; then args+=(--note "Binary not built by this run (SKIP_BUILD=1).")
fi
exec python3 "$HERE/simulator_bench.py" "${args[@]}"
