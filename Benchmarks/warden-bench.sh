#!/usr/bin/env bash
# Scale benchmark of ecs-warden against ecs-sim: one full pass (`run --once`) over 100 projects x
# 1,000 servers — time, CPU, peak memory, API calls per loop against the minimum the API allows —,
# the official Python SDK doing the same reads as a baseline, schedule precision (delay from a
# boundary to the BatchStopServers calls), and the daemon in run mode (start-up to READY=1, idle
# CPU between passes, /metrics latency, memory, SIGTERM). Prints a table with PASS/MISS per goal.
#
# Usage: Benchmarks/warden-bench.sh
#
# Environment:
#   SKIP_BUILD=1          do not run `swift build -c release` (products ecs-warden and ecs-sim)
#   WARDEN_BIN=path       ecs-warden binary (default: <scratch>/release/ecs-warden)
#   SIM_BIN=path          ecs-sim binary (default: <scratch>/release/ecs-sim)
#   SCRATCH_PATH=dir      SwiftPM scratch path of the release build (default: .build-static, the package's).
#                         A separate one does not hold the lock of .build during the long release
#                         build; it is seeded offline with .build's checkouts and repositories.
#   BUILD_NICE=10         niceness of the release build (0 = not niced)
#   PROJECTS=100 SERVERS=1000 FLAVORS=200 SCHEDULED_SHARE=0.25 SEED=1   the simulated fleet
#   MILLION=1             one million servers (PROJECTS=1000) on one node; defaults to SKIP_SDK=1 and
#                         PRECISION_BOUNDARIES=0 (the SDK alone would take minutes), either can be set
#   SKIP_FOOTPRINT=1      do not measure the bytes per server kept between passes (ListingFootprintTests,
#                         run alone with `swift test --filter`; builds the tests in debug if needed)
#   ONCE_REPEATS=3        --once passes, each on a fresh state; the table shows their median and range
#                         (the API calls are counted on the first)
#   LISTING_SAMPLE=20     projects whose listing is fetched to count the JSON bytes a pass digests
#   RATE_LIMIT_RPS=500 RATE_LIMIT_BURST=1000   ecs-warden's rate limit towards the simulator
#   SDK_VENV=dir          venv of the official SDK (default: ${TMPDIR:-/tmp}/ecs-warden-bench-venv;
#                         created and filled with huaweicloudsdkecs==3.1.219 from PyPI if needed)
#   SDK_API=nova|v1       server listing of the baseline (default nova, like ecs-warden)
#   SKIP_SDK=1            no baseline
#   SCRAPES=200           /metrics scrapes (at rest, and during a full stuck pass)
#   IDLE_SECONDS=30       length of the idle-CPU window (one in which no loop is due)
#   PRECISION_BOUNDARIES=3   stop boundaries measured, one a minute (the issue asks for 20:
#                         PRECISION_BOUNDARIES=20 makes the run about 17 minutes longer); 0 = none
#   PRECISION_PROJECTS=10 PRECISION_SERVERS=5   projects, and servers per schedule and project,
#                         re-tagged with the two precision schedules
#   PROFILE=perf          also profile a second --once pass with perf and list the hottest symbols
#   BENCH_TIMEOUT=secs    bound of the whole measurement (default 900 + 60 per boundary)
#   RESULTS_JSON=file     also write the results as JSON
#
# Everything runs on loopback; every process started here is stopped on exit (trap).
# Exits non-zero only on errors (build, start-up, failed requests or loops, shutdown, timeout),
# not on a missed goal.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# ROOT, SKIP_BUILD, SCRATCH_PATH, BUILD_NICE, SCRATCH; say, die, require_python3, release_build, require_executable
# shellcheck source-path=SCRIPTDIR source=bench-common.sh
source "$HERE/bench-common.sh"

MILLION="${MILLION:-0}"
if [ "$MILLION" = "1" ]; then
  PROJECTS="${PROJECTS:-1000}"
  SKIP_SDK="${SKIP_SDK:-1}"
  PRECISION_BOUNDARIES="${PRECISION_BOUNDARIES:-0}"
fi
SKIP_FOOTPRINT="${SKIP_FOOTPRINT:-0}"
ONCE_REPEATS="${ONCE_REPEATS:-3}"
LISTING_SAMPLE="${LISTING_SAMPLE:-20}"
PROJECTS="${PROJECTS:-100}"
SERVERS="${SERVERS:-1000}"
FLAVORS="${FLAVORS:-200}"
SCHEDULED_SHARE="${SCHEDULED_SHARE:-0.25}"
SEED="${SEED:-1}"
RATE_LIMIT_RPS="${RATE_LIMIT_RPS:-500}"
RATE_LIMIT_BURST="${RATE_LIMIT_BURST:-1000}"
SDK_VENV="${SDK_VENV:-${TMPDIR:-/tmp}/ecs-warden-bench-venv}"
SDK_API="${SDK_API:-nova}"
SKIP_SDK="${SKIP_SDK:-0}"
SCRAPES="${SCRAPES:-200}"
IDLE_SECONDS="${IDLE_SECONDS:-30}"
PRECISION_BOUNDARIES="${PRECISION_BOUNDARIES:-3}"
PRECISION_PROJECTS="${PRECISION_PROJECTS:-10}"
PRECISION_SERVERS="${PRECISION_SERVERS:-5}"
PROFILE="${PROFILE:-}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-$((900 + 60 * PRECISION_BOUNDARIES))}"
RESULTS_JSON="${RESULTS_JSON:-}"
SDK_VERSION="3.1.219"

# ---- clean-up: the helper stops what it started; this stops the helper if we are interrupted
trap stop_helper EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools
require_python3
if [ ! -x /usr/bin/time ]; then
  say "/usr/bin/time not found: installing GNU time with apt-get"
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y time >/dev/null 2>&1 || die "cannot install GNU time (apt-get install time)"
  else
    die "/usr/bin/time (GNU time) is required: apt-get install time"
  fi
fi

# ---- 1. build (one product per invocation)
release_build "set SKIP_BUILD=1, WARDEN_BIN and SIM_BIN to use built binaries" ecs-warden ecs-sim
WARDEN_BIN="${WARDEN_BIN:-$SCRATCH/release/ecs-warden}"
SIM_BIN="${SIM_BIN:-$SCRATCH/release/ecs-sim}"
require_executable ecs-warden "$WARDEN_BIN" WARDEN_BIN
require_executable ecs-sim "$SIM_BIN" SIM_BIN

# ---- 2. the official SDK in a venv
SDK_PYTHON=""
if [ "$SKIP_SDK" != "1" ]; then
  if ! "$SDK_VENV/bin/python" -c "import sys, importlib.metadata as m; sys.exit(m.version('huaweicloudsdkecs') != '$SDK_VERSION')" 2>/dev/null; then
    say "installing huaweicloudsdkecs==$SDK_VERSION into $SDK_VENV"
    [ -x "$SDK_VENV/bin/python" ] || python3 -m venv "$SDK_VENV" || die "cannot create a venv at $SDK_VENV (apt-get install python3-venv)"
    "$SDK_VENV/bin/python" -m pip install -q --disable-pip-version-check "huaweicloudsdkecs==$SDK_VERSION" >&2 \
      || die "cannot install huaweicloudsdkecs==$SDK_VERSION (set SKIP_SDK=1 to run without the baseline)"
  fi
  SDK_PYTHON="$SDK_VENV/bin/python"
fi

# ---- 2b. bytes per server kept between passes: the footprint test, alone in its process
FOOTPRINT=""
if [ "$SKIP_FOOTPRINT" != "1" ]; then
  say "measuring the listing footprint (swift test --filter ListingFootprintTests)"
  footprint_log="$(mktemp)"
  if (cd "$ROOT" && nice -n "${BUILD_NICE:-10}" swift build --build-tests >"$footprint_log" 2>&1); then
    # The budget is checked too: a figure over it is printed with the test's failure.
    (cd "$ROOT" && LISTING_FOOTPRINT_CHECK=1 swift test --skip-build --filter ListingFootprintTests >"$footprint_log" 2>&1) \
      || say "the footprint is over its budget (ListingFootprintTests.budget; see $footprint_log)"
    FOOTPRINT="$(sed -n 's/^listing footprint: //p' "$footprint_log" | head -1)"
  fi
  [ -n "$FOOTPRINT" ] || say "the footprint test did not run (see $footprint_log); going on without it"
fi

# ---- 3. measure (the helper starts and stops the simulator and the daemons)
args=(--warden "$WARDEN_BIN" --sim "$SIM_BIN" --sdk-python "$SDK_PYTHON" --sdk-api "$SDK_API"
      --projects "$PROJECTS" --servers "$SERVERS" --flavors "$FLAVORS" --scheduled-share "$SCHEDULED_SHARE"
      --seed "$SEED" --rps "$RATE_LIMIT_RPS" --burst "$RATE_LIMIT_BURST" --scrapes "$SCRAPES"
      --idle-seconds "$IDLE_SECONDS" --precision-boundaries "$PRECISION_BOUNDARIES"
      --precision-projects "$PRECISION_PROJECTS" --precision-servers "$PRECISION_SERVERS")
args+=(--listing-sample "$LISTING_SAMPLE" --once-repeats "$ONCE_REPEATS")
if [ -n "$FOOTPRINT" ]; then args+=(--footprint "$FOOTPRINT"); fi
if [ -n "$PROFILE" ]; then args+=(--profile "$PROFILE"); fi
if [ -n "$RESULTS_JSON" ]; then args+=(--json "$RESULTS_JSON"); fi
if [ "$SKIP_BUILD" = "1" ]; then args+=(--note "Binaries not built by this run (SKIP_BUILD=1)."); fi
run_helper "$BENCH_TIMEOUT" python3 "$HERE/warden_bench.py" "${args[@]}"
