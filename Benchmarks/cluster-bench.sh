#!/usr/bin/env bash
# Cluster-mode benchmark of ecs-warden (issue #11): replicas on one throw-away PostgreSQL 15 (with
# pg_stat_statements) against ecs-sim with a generated fleet of 1,000 projects x 100 servers.
# Prints, side by side in one table with PASS/MISS per goal:
#   1. lease renewal statements per node per interval (pg_stat_statements, one role per replica),
#      with 10 and with 1,000 projects;
#   2. takeover after kill -9 of a random owner (>= 10 times) and handover on SIGTERM (>= 5 times),
#      from the signal to the last of its shards claimed by another node (shard_handovers);
#   3. the schedule/stuck pass time, CPU and peak RSS of each node: SQLite x1, PostgreSQL x1, x3.
#
# Usage: Benchmarks/cluster-bench.sh
#
# Environment:
#   SKIP_BUILD=1 WARDEN_BIN=path SIM_BIN=path SCRATCH_PATH=dir BUILD_NICE=10   as warden-bench.sh
#   PROJECTS=1000 SMALL_PROJECTS=10 SERVERS=100 SEED=1   the simulated fleet (and the small one of 1.)
#   LEASE_TTL=15          cluster.lease_ttl in seconds (renewal every TTL/3)
#   RENEW_INTERVALS=6     renew intervals in the window of 1.
#   KILLS=10 TERMS=5      failovers of 2. (SIGTERMs with every node's loops at rest)
#   MID_PASS_TERMS=2      SIGTERMs of 2. sent during a schedule pass of the node
#   PASS_INTERVAL=20 PASS_WINDOW=90   schedule/stuck interval and measured window of 3., seconds
#   SKIP_SQLITE=1         no SQLite single-node run in 3.
#   PHASES=renewal,failover,passes   the phases to run
#   PG_PORT=port          PostgreSQL's port (default: a free one)
#   BENCH_TIMEOUT=secs    bound of the whole measurement (default 2400)
#   RESULTS_JSON=file     also write the results as JSON
#   LOG_DIR=dir           keep every replica's log there (default: removed with the work folder)
#
# Everything runs on loopback; every process started here (PostgreSQL included) is stopped on exit.
# Exits non-zero only on errors, not on a missed goal.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# ROOT, SKIP_BUILD, SCRATCH_PATH, BUILD_NICE, SCRATCH; say, die, require_python3, release_build, require_executable
# shellcheck source-path=SCRIPTDIR source=bench-common.sh
source "$HERE/bench-common.sh"

PROJECTS="${PROJECTS:-1000}"
SMALL_PROJECTS="${SMALL_PROJECTS:-10}"
SERVERS="${SERVERS:-100}"
SEED="${SEED:-1}"
LEASE_TTL="${LEASE_TTL:-15}"
RENEW_INTERVALS="${RENEW_INTERVALS:-6}"
KILLS="${KILLS:-10}"
TERMS="${TERMS:-5}"
MID_PASS_TERMS="${MID_PASS_TERMS:-2}"
PASS_INTERVAL="${PASS_INTERVAL:-20}"
PASS_WINDOW="${PASS_WINDOW:-90}"
SKIP_SQLITE="${SKIP_SQLITE:-0}"
PHASES="${PHASES:-renewal,failover,passes}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-2400}"
RESULTS_JSON="${RESULTS_JSON:-}"
LOG_DIR="${LOG_DIR:-}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

# ---- clean-up: the helper stops the replicas and ecs-sim; this stops the helper and PostgreSQL
PG_DIR=""
cleanup() {
  stop_helper
  if [ -n "$PG_DIR" ]; then
    PG_BIN="$PG_BIN" bash "$ROOT/Tests/Postgres/pg-temp.sh" stop "$PG_DIR" || true
    rmdir "$(dirname "$PG_DIR")" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools
require_python3
command -v psql >/dev/null 2>&1 || die "psql is required (apt-get install postgresql-client-15)"
[ -x "$PG_BIN/initdb" ] || die "no PostgreSQL server at $PG_BIN (apt-get install postgresql-15)"
[ -f "$PG_BIN/../lib/pg_stat_statements.so" ] || die "pg_stat_statements is not installed next to $PG_BIN (it ships in Debian's postgresql-15)"

# ---- 1. build
release_build "set SKIP_BUILD=1, WARDEN_BIN and SIM_BIN to use built binaries" ecs-warden ecs-sim
WARDEN_BIN="${WARDEN_BIN:-$SCRATCH/release/ecs-warden}"
SIM_BIN="${SIM_BIN:-$SCRATCH/release/ecs-sim}"
require_executable ecs-warden "$WARDEN_BIN" WARDEN_BIN
require_executable ecs-sim "$SIM_BIN" SIM_BIN

# ---- 2. PostgreSQL, restarted with pg_stat_statements preloaded
PG_PORT="${PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cluster-bench-pg.XXXXXX")/data"
chmod 0755 "$(dirname "$PG_DIR")"  # the `postgres` user must reach DIR
say "starting PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR)"
DB_URL="$(PG_BIN="$PG_BIN" bash "$ROOT/Tests/Postgres/pg-temp.sh" start "$PG_DIR" "$PG_PORT")" || die "cannot start PostgreSQL"
psql "$DB_URL" -X -q -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >/dev/null || die "cannot configure pg_stat_statements"
as_postgres=()
if [ "$(id -u)" -eq 0 ]; then as_postgres=(runuser -u postgres --); fi
"${as_postgres[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR" -w -t 30 restart >/dev/null || die "cannot restart PostgreSQL"
say "PostgreSQL: $DB_URL ($(psql "$DB_URL" -XAtc 'SHOW shared_preload_libraries'))"

# ---- 3. measure (the helper starts and stops the simulator and the replicas)
args=(--warden "$WARDEN_BIN" --sim "$SIM_BIN" --db-url "$DB_URL" --projects "$PROJECTS" --small-projects "$SMALL_PROJECTS"
      --servers "$SERVERS" --seed "$SEED" --ttl "$LEASE_TTL" --renew-intervals "$RENEW_INTERVALS" --kills "$KILLS"
      --terms "$TERMS" --mid-pass-terms "$MID_PASS_TERMS" --pass-interval "$PASS_INTERVAL" --pass-window "$PASS_WINDOW" --phases "$PHASES")
if [ "$SKIP_SQLITE" = "1" ]; then args+=(--no-sqlite); fi
if [ -n "$RESULTS_JSON" ]; then args+=(--json "$RESULTS_JSON"); fi
if [ -n "$LOG_DIR" ]; then args+=(--logs "$LOG_DIR"); fi
if [ "$SKIP_BUILD" = "1" ]; then args+=(--note "Binaries not built by this run (SKIP_BUILD=1)."); fi
run_helper "$BENCH_TIMEOUT" python3 "$HERE/cluster_bench.py" "${args[@]}"
