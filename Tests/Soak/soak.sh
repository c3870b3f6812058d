#!/usr/bin/env bash
# Fault-injection soak test of ecs-warden against ecs-sim, on loopback only.
#
#   Tests/Soak/soak.sh [BIN_DIR]          (default: .build/debug; needs ecs-warden and ecs-sim)
#
# Environment:
#   SOAK_MINUTES         scale of the fault schedule (default 15; 3 for a quick run). At >= 15 the API
#                        outage lasts 10 minutes; shorter runs scale every phase down proportionally.
#                        The wall time is at least SOAK_MINUTES (recovery waits and the final settle
#                        add a few minutes); a hard bound stops the run at 1.7 x SOAK_MINUTES + 15 min.
#   SOAK_PROJECTS=3 SOAK_SERVERS=300  fleet size (30% of the servers carry a schedule tag)
#   SOAK_SIM_SPEED=240   simulated seconds per real second (simulated days pass; the daemon's
#                        schedules use the real clock, so boundaries are generated around now)
#   SOAK_RECOVERY_LIMIT=120  seconds every loop may take to pass again after a fault
#   SOAK_SEED            seed of the simulator's fleet and of the soak's random choices
#   SOAK_KEEP_WORK=1     keep the scratch directory (kept anyway when a check fails)
#
# What runs: ecs-sim; a recording proxy (soak.py, stdlib Python) between the daemon and the
# simulator that forwards every byte unchanged and writes down each batch power action (body,
# X-Client-Token, status, job_id); `ecs-warden run --config FILE` with NOTIFY_SOCKET (READY,
# RELOADING, STOPPING are checked per process).
#
# Phases (each fault is followed by a bounded wait for every loop's first successful pass, which is
# the recovery time): warm-up; 5xx at 50% (503) and 100% (500); throttling 429 Common.1503 and
# 202 Common.0024; latency 1.5 s and 4.5 s (above the 3 s request timeout: the call is done but
# the answer is lost); 30% dropped connections; a hostile endpoint (25 s from 5 s before a
# boundary: for 50% of the GET answers of server listings, jobs, limits and flavors the proxy
# sends a value of the wrong type, drops a required key, serves a repeated page (a next link back
# to the same marker, then the same page again), drips the body a byte every 100 ms for
# request_timeout + 4 s, or answers 429/503 with `Retry-After: 1e300`; batch actions are never
# touched; kills are off); a second `ecs-warden run` on the same configuration (state directory)
# while the first runs, in a quiet part of a minute; late delivery (the proxy holds batch calls 60 s
# before forwarding them, so the simulator carries a call out after the daemon gave up on it and
# after the daemon's next pass); sub-jobs failing with Ecs.0603 for 30% of the servers of each batch
# (failSubJobRate, from 5 s before a boundary to 15 s after it; each server fails once, so the retry
# the daemon owes after the code's 60 s wait succeeds); a restart with a wrong SK and a wrong IAM password, then the right
# ones; IAM token revocation x3; SIGHUP with an invalid file (x2) and a valid one;
# a clean SIGTERM restart; one long-lived process through the API outage ('error' then 'drop',
# with SIGHUPs and a revocation inside it) with RSS at equivalent idle points before and after
# (each after at least one schedule boundary of normal work and once RSS has settled);
# kill -9 0-500 ms after a BatchStopServers/BatchStartServers shows in the simulator's request log
# (at most 3 per minute, restart each time) throughout the non-outage phases, until at least 10;
# kill -9 at random moments; a person starting servers by hand after a stop boundary.
#
# Reproductions of daemon bugs the soak found (each prints REPRODUCED / NOT REPRODUCED):
#   repro-late-delivery.sh [BIN_DIR] [SPEED]  a second stop job for the same servers and boundary
#                                             under a new X-Client-Token after a late-delivered call
#   repro-busy-boundary.sh [BIN_DIR]          a server busy at its boundary never acted on
#
# Checks of the hostile phase: every kind of mangled answer was sent, the daemon survived it (same
# process, no unexpected exit), every loop passed again after it (recovery); of the second
# instance: it exits non-zero within 5 s with one line naming the state directory and the first's
# pid, the first keeps running, no batch call reaches the simulator meanwhile.
# Checks at the end: recovery after every fault, enough kills, no unexpected exit, sd_notify,
# SIGHUP counters (ecs_warden_config_reloads_total), IAM token refresh, every batch call carries a
# journaled intent's token, servers stopped twice (0), servers started twice (0), journal intents
# without an outcome (0), jobs followed to their end, final state converged, RSS growth <= 10%;
# for the sub-job failure phase: every server whose sub-job failed in its schedule's state within
# min(boundary_grace, 60 s + 3 schedule passes + 5 s) of the failure and before its next boundary,
# and no server in two accepted stop (or start) calls of one boundary except the retry of a failed
# sub-job (figures: servers failed, retried, converged).
# Last line: "soak: N passed, N failed"; exit status non-zero on any failed check.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
BIN_DIR="${1:-${SOAK_BIN_DIR:-$repo/.build/debug}}"
minutes="${SOAK_MINUTES:-15}"
export SOAK_MINUTES="$minutes"

command -v python3 >/dev/null || { echo "soak: python3 is required"; echo "soak: 0 passed, 1 failed"; exit 1; }

# The binaries are rebuilt from time to time by others: wait (bounded) until both are there.
for _ in $(seq 1 90); do
    [[ -x $BIN_DIR/ecs-warden && -x $BIN_DIR/ecs-sim ]] && break
    echo "soak: waiting for $BIN_DIR/ecs-warden and ecs-sim (being rebuilt?)"
    sleep 10
done
if ! [[ -x $BIN_DIR/ecs-warden && -x $BIN_DIR/ecs-sim ]]; then
    echo "soak: $BIN_DIR/ecs-warden or ecs-sim is missing"
    echo "soak: 0 passed, 1 failed"
    exit 1
fi
BIN_DIR="$(cd "$BIN_DIR" && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/ecs-warden-soak.XXXXXX")"
py_pid=""
cleanup() {
    local rc=$?
    if [[ -n $py_pid ]] && kill -0 "$py_pid" 2>/dev/null; then
        kill -TERM "$py_pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$py_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$py_pid" 2>/dev/null
    fi
    # Anything the soak started that is still alive (it records every child's pid). Only processes
    # whose command line is one of ours are touched.
    if [[ -f $work/pids ]]; then
        while read -r pid; do
            [[ -n $pid && -r /proc/$pid/cmdline ]] || continue
            cmd="$(tr '\0' ' ' </proc/"$pid"/cmdline)"
            case "$cmd" in
                "$BIN_DIR/ecs-warden run --config $work/"* | "$BIN_DIR/ecs-sim "* | *"soak.py proxy "*)
                    if [[ $cmd == *"$work"* || $cmd == *"--iam-user soak-robot"* ]]; then
                        kill -KILL "$pid" 2>/dev/null
                    fi
                    ;;
            esac
        done <"$work/pids"
    fi
    if [[ ${SOAK_KEEP_WORK:-0} == 1 || $rc -ne 0 ]]; then
        echo "soak: scratch directory kept: $work (daemon.log, sim.log, soak.log, state/state.sqlite, proxy-actions.jsonl)"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Hard bound: 1.7 x SOAK_MINUTES + 15 minutes (the script bounds itself earlier).
bound=$(python3 -c "print(int(float('$minutes') * 60 * 1.7 + 900 + 120))")
timeout --signal=TERM --kill-after=30 "$bound" python3 "$here/soak.py" "$work" "$BIN_DIR" &
py_pid=$!
wait "$py_pid"
rc=$?
py_pid=""
if ((rc == 124)); then
    echo "soak: the run exceeded its bound of ${bound}s"
    echo "soak: 0 passed, 1 failed"
fi
exit "$rc"
