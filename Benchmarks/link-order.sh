#!/usr/bin/env bash
# Writes packaging/ecs-warden.symbol-order, the order in which the release link lays out the
# daemon's functions (Package.swift, daemonReleaseLinking): the functions a --once pass and the
# daemon in run mode execute, counted by valgrind's callgrind, hottest first. Laid out together,
# the code a pass runs is a few MB of resident pages instead of most of the 35 MB binary.
#
# Run it after large changes (new dependencies, a reworked pass), then relink (SwiftPM does not
# track the file). A stale file still links (names
# the build no longer has are skipped), it only orders less of what runs.
#
# Usage: Benchmarks/link-order.sh
#
# Environment:
#   SCRATCH_PATH=dir    SwiftPM scratch path of the release build (default: .build-static)
#   BUILD_NICE=10       niceness of the release build (0 = not niced)
#   PROJECTS=10 SERVERS=1000   the simulated fleet the profiled passes read
#
# Needs valgrind (apt-get install valgrind). Takes a few minutes: everything runs under callgrind.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=bench-common.sh
source "$HERE/bench-common.sh"

PROJECTS="${PROJECTS:-10}"
SERVERS="${SERVERS:-1000}"
require_python3
command -v valgrind >/dev/null 2>&1 || die "valgrind is required (apt-get install valgrind)"
command -v swift >/dev/null 2>&1 || die "swift is not on PATH"

work="$(mktemp -d)"
trap 'stop_helper; rm -rf "$work"' EXIT

# The map tells which functions share an input section (lld moves sections, not functions).
release_build "link-order needs the release build" ecs-sim
nice_cmd=()
if [ "$BUILD_NICE" != "0" ]; then nice_cmd=(nice -n "$BUILD_NICE"); fi
say "linking ecs-warden with a map"
"${nice_cmd[@]}" swift build -c release --static-swift-stdlib --package-path "$ROOT" --scratch-path "$SCRATCH" \
  --product ecs-warden -Xlinker "-Map=$work/ecs-warden.map" -Xlinker --no-demangle >&2 || die "release build of ecs-warden failed"

run_helper 3600 python3 "$HERE/link_order.py" --warden "$SCRATCH/release/ecs-warden" --sim "$SCRATCH/release/ecs-sim" \
  --map "$work/ecs-warden.map" --out "$ROOT/packaging/ecs-warden.symbol-order" --projects "$PROJECTS" --servers "$SERVERS"
