# shellcheck shell=bash
# Shared by simulator-bench.sh and warden-bench.sh, which `source` it after setting HERE (this
# folder) and `set -euo pipefail`. Not a script of its own.
#
# Environment (documented in both scripts' headers):
#   SKIP_BUILD=1        no release build
#   SCRATCH_PATH=dir    SwiftPM scratch path of the release build (default: .build-static, where
#                       packaging/build-deb.sh builds the binary the package ships)
#   BUILD_NICE=10       niceness of the release build (0 = not niced)

ROOT="$(cd "$HERE/.." && pwd)"

SKIP_BUILD="${SKIP_BUILD:-0}"
SCRATCH_PATH="${SCRATCH_PATH:-}"
BUILD_NICE="${BUILD_NICE:-10}"

say() { printf '[bench] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

require_python3() {
  command -v python3 >/dev/null 2>&1 || die "python3 is required"
}

# The scratch path of the release build (where the binaries are by default): the binaries are built
# as the package builds them (--static-swift-stdlib), so the figures are those of what operators run.
if [ -n "$SCRATCH_PATH" ]; then SCRATCH="$SCRATCH_PATH"; else SCRATCH="$ROOT/.build-static"; fi

# release_build HINT PRODUCT...: `swift build -c release --static-swift-stdlib`, one product per invocation, niced by
# BUILD_NICE, in SCRATCH; nothing with SKIP_BUILD=1. HINT completes the error when swift is missing.
release_build() {
  local hint="$1"
  shift
  if [ "$SKIP_BUILD" = "1" ]; then return 0; fi
  command -v swift >/dev/null 2>&1 || die "swift is not on PATH ($hint)"
  local common=(build -c release --static-swift-stdlib --package-path "$ROOT" --scratch-path "$SCRATCH")
  mkdir -p "$SCRATCH"
  # Seed a fresh scratch path with the dependencies already resolved in .build (no network).
  if [ ! -d "$SCRATCH/checkouts" ] && [ -d "$ROOT/.build/checkouts" ]; then
    say "seeding $SCRATCH with the checkouts of $ROOT/.build"
    cp -a "$ROOT/.build/checkouts" "$ROOT/.build/repositories" "$SCRATCH/" 2>/dev/null || true
    cp -a "$ROOT/.build/workspace-state.json" "$SCRATCH/" 2>/dev/null || true
  fi
  local nice_cmd=()
  if [ "$BUILD_NICE" != "0" ]; then nice_cmd=(nice -n "$BUILD_NICE"); fi
  local build_started product
  build_started=$(date +%s)
  for product in "$@"; do
    say "building: ${nice_cmd[*]} swift ${common[*]} --product $product"
    "${nice_cmd[@]}" swift "${common[@]}" --product "$product" >&2 || die "release build of $product failed"
  done
  say "release build took $(( $(date +%s) - build_started )) s"
}

# require_executable NAME PATH VARIABLE: dies unless PATH is an executable.
require_executable() {
  [ -x "$2" ] || die "no executable $1 at $2 (build it, or set $3)"
}

# The measuring helper started by run_helper; stop_helper (from an EXIT trap) stops it.
HELPER_PID=""

# stop_helper: SIGTERM to the helper if it runs (it stops what it started), SIGKILL after 10 s.
stop_helper() {
  if [ -n "$HELPER_PID" ] && kill -0 "$HELPER_PID" 2>/dev/null; then
    kill -TERM "$HELPER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$HELPER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$HELPER_PID" 2>/dev/null || true
  fi
}

# run_helper SECONDS COMMAND...: runs the measurement bounded to SECONDS (in the background, so that
# an EXIT trap calling stop_helper can stop it) and exits with its status; dies on the timeout.
run_helper() {
  local bound="$1" status=0
  shift
  say "measuring (bounded to $bound s)"
  timeout --signal=TERM --kill-after=30 "$bound" "$@" &
  HELPER_PID=$!
  wait "$HELPER_PID" || status=$?
  HELPER_PID=""
  if [ "$status" -eq 124 ]; then die "the measurement did not finish within $bound s"; fi
  exit "$status"
}
