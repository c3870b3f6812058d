#!/usr/bin/env bash
# Cluster-mode failure soak: several `ecs-warden run` replicas on one PostgreSQL against ecs-sim,
# on loopback only.
#
#   Tests/Cluster/cluster-soak.sh [BIN_DIR]      (default: .build/debug; needs ecs-warden and ecs-sim)
#
# Needs: python3, PostgreSQL 15 server binaries (PG_BIN, default /usr/lib/postgresql/15/bin) and the
# psql client; as root, the `postgres` user (the server refuses to run as root). Uses
# Tests/Postgres/pg-temp.sh when the tree has it.
#
# Environment:
#   CLUSTER_SOAK_MINUTES   one scenario round per minute, minus one (default 20: 19 rounds, 12
#                          kill -9 failovers; CI runs 5: kill, freeze, postgres, membership, ~6-7 min wall)
#   CLUSTER_LEASE_TTL      cluster.lease_ttl of the replicas (default 15s; renew every ttl/3)
#   CLUSTER_SOAK_PROJECTS=10 CLUSTER_SOAK_SERVERS=30   fleet size (60% of the servers carry one of
#                          three schedules; 11 shards: the projects and the region)
#   CLUSTER_SOAK_SEED      seed of the fleet and of the soak's choices
#   CLUSTER_SOAK_KEEP_WORK=1  keep the scratch directory (kept anyway when a check fails)
#
# What runs: a temporary PostgreSQL on a free loopback port (fsync off), database `warden`; ecs-sim;
# one recording proxy per replica (Tests/Soak/soak.py's, unchanged: it logs every batch power action
# with its X-Client-Token, servers, status, job id and arrival time, so each call's sender is known);
# warden-a, warden-b, warden-c (`state: {backend: postgres}`, `cluster: {node, lease_ttl}`, each with
# its own state_dir and ports); the schedules start and stop their servers so that a boundary falls
# at every whole minute. Then one round per minute, each around a boundary B:
#   kill       kill -9 of the owner of a random project 1-4 s before B; restarted after TTL + renew + 4 s
#   freeze     SIGSTOP of the owner of a random project 3 s before B, SIGCONT 2 x TTL later
#   postgres   `pg_ctl stop -m immediate` 5 s before B, started again 2 x TTL later; a TTL later
#              `pg_ctl restart -m immediate`; then pg_terminate_backend of every session of the database
#   membership warden-d joins 3 s after B; then the replica holding the most shards leaves (SIGTERM)
#   restart    kill -9 of the owner of a random project 1-4 s before B and a restart 1 s later, within
#              the TTL (as systemd's Restart= does): its leases are still live in its name
# (the first four rounds are kill, freeze, postgres, membership; from the fifth on (CLUSTER_SOAK_MINUTES
# >= 6): restart, then kills, with a freeze and a restart every eighth round: 12 kills in 20 minutes).
#
# Checks (from the proxies' logs, the journal, shard_handovers and shard_leases sampled every 200 ms):
#   kill: every shard of the victim taken over within TTL + renew interval (kill -> new epoch's
#     acquired_at); the boundary acted on exactly once (an intent for it; no server in two intents
#     under different tokens; no server in two accepted jobs);
#   freeze: the frozen node's shards taken over while it is stopped; no batch call from it for a
#     shard after the next epoch was acquired; the boundary acted on exactly once;
#   postgres: no batch call from any node later than TTL after PostgreSQL went down; every shard owned
#     again within TTL + renew after it came back; the first boundary after the restart and after the
#     terminated sessions acted on exactly once in every project;
#   membership: at most ceil(shards / nodes) shards move per event; the leaving node exits 0 and its
#     shards are owned again within 1 s of its exit; no shard without a live lease longer than the TTL;
#   restart: the boundary acted on exactly once; after every round, each running node's
#     ecs_warden_cluster_shards_owned equals its live leases in the database, and no stopped node
#     holds a live lease (a lease renewed by a process that does not work on it would starve a shard);
#   always: every batch call carries a journaled intent's token; no call under a deposed epoch's
#     token after the next epoch was acquired ("calls after deadline"); every call came from the node
#     holding the shard's current epoch; every intent carries shard/node/epoch and has exactly one
#     closing outcome (or was written in the last minute); no two intents for the same server, action
#     and boundary; boundaries acted on / expected; no server stopped or started twice; the fleet
#     converged; no replica exited by itself; GET /v1/cluster, `ctl cluster`, the cluster metrics
#     (and promtool check metrics on them); every replica stops on SIGTERM with status 0.
# Figures: failovers, take-over time min/median/max, SIGTERM handover time, boundaries acted on /
# expected, double actions, calls after deadline. Last line: "cluster soak: N passed, N failed";
# exit status non-zero on any failed check.
set -uo pipefail

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
BIN_DIR=${1:-$(readlink -f "$here/../..")/.build/debug}
export CLUSTER_SOAK_MINUTES=${CLUSTER_SOAK_MINUTES:-20}
minutes=$CLUSTER_SOAK_MINUTES

fail_early() { echo "cluster soak: $*"; echo "cluster soak: 0 passed, 1 failed"; exit 1; }
command -v python3 >/dev/null || fail_early "python3 is required"
command -v psql >/dev/null || fail_early "psql (postgresql-client) is required"
[[ -x ${PG_BIN:-/usr/lib/postgresql/15/bin}/pg_ctl ]] || fail_early "no PostgreSQL server in ${PG_BIN:-/usr/lib/postgresql/15/bin} (apt-get install postgresql)"
if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then fail_early "running as root needs the postgres user"; fi
[[ -x $BIN_DIR/ecs-warden && -x $BIN_DIR/ecs-sim ]] || fail_early "$BIN_DIR/ecs-warden or ecs-sim is missing"
BIN_DIR="$(cd "$BIN_DIR" && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/ecs-warden-cluster-soak.XXXXXX")"
chmod 0755 "$work"  # the postgres user must reach its data directory inside
runner=""

# Every process the soak started is in $work/pids; only those whose command line names this run's
# files (or this run's simulator) are signalled. A frozen replica gets SIGCONT first.
reap_children() {
    local pid cmd
    [[ -f $work/pids ]] || return 0
    while read -r pid; do
        [[ -n $pid ]] || continue
        cmd="$(tr '\0' ' ' 2>/dev/null </proc/"$pid"/cmdline)" || continue
        case "$cmd" in
            *"$work"* | "$BIN_DIR/ecs-sim "*"--iam-user cluster-robot"*) kill -CONT "$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null ;;
        esac
    done <"$work/pids"
}

stop_postgres() {
    [[ -f $work/pg/postmaster.pid ]] || return 0
    local ctl=("${PG_BIN:-/usr/lib/postgresql/15/bin}/pg_ctl" -D "$work/pg" -m immediate -w stop)
    if [[ $(id -u) -eq 0 ]]; then ctl=(runuser -u postgres -- "${ctl[@]}"); fi
    "${ctl[@]}" >/dev/null 2>&1 || true
}

on_exit() {
    local status=$?
    if [[ -n $runner ]]; then
        kill -TERM "$runner" 2>/dev/null && timeout 20 tail --pid="$runner" -f /dev/null
        kill -KILL "$runner" 2>/dev/null
    fi
    reap_children
    stop_postgres
    if [[ $status -eq 0 && ${CLUSTER_SOAK_KEEP_WORK:-0} != 1 ]]; then
        rm -rf "$work"
    else
        echo "cluster soak: scratch directory kept: $work (cluster-soak.log, warden-*.log, proxy-*.jsonl, sim.log, pg/server.log)"
    fi
    exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# The script bounds itself at 1.5 x CLUSTER_SOAK_MINUTES + 10 min; this is the hard stop a minute later.
limit_seconds=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 90 + 660 }')
timeout --signal=TERM --kill-after=30 "$limit_seconds" python3 "$here/cluster_soak.py" "$work" "$BIN_DIR" &
runner=$!
status=0
wait "$runner" || status=$?
runner=""
if [[ $status -eq 124 ]]; then
    printf 'cluster soak: stopped at its bound of %s s\ncluster soak: 0 passed, 1 failed\n' "$limit_seconds"
fi
exit "$status"
