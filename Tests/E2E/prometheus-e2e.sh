#!/usr/bin/env bash
# End-to-end check of ecs-warden with a real Prometheus, on loopback only.
#
#   Tests/E2E/prometheus-e2e.sh [BIN_DIR]      (default: .build/debug; needs ecs-warden and ecs-sim)
#
# 1. installs prometheus/promtool (Debian package `prometheus`) and jq with apt-get if missing;
# 2. starts ecs-sim (50 servers) and `ecs-warden run` with a generated configuration (free ports,
#    a 0600 control-token file) and waits for /readyz 200 on the metrics port;
# 3. `promtool check metrics` on a scrape must exit 0 (exit 3 = lint warnings = failure);
# 4. starts Prometheus (generated scrape config for the daemon + deploy/alerts.yml copied
#    next to it), waits for up == 1, then checks ecs_warden_quota_used / _quota_limit (project="p0"),
#    ecs_warden_loop_runs_total and ecs_warden_loop_last_success_timestamp_seconds (every configured
#    loop), that the `ecs-warden` rule group is loaded whole and evaluates without errors, and that
#    no daemon-health alert (down, loop failing/stale/never succeeded) is pending or firing;
# 5. `ecs-warden run --config FILE --once` against the same simulator: exit 0, one "LOOP: ok — …"
#    line per configured loop;
# 6. `ecs-warden check-config` on a broken file (an unknown key, a bad duration): non-zero exit and
#    FILE:LINE for both problems;
# 7. systemd/check.sh with the real binary, and deploy/check.sh;
# 8. sd_notify as under the unit (NOTIFY_SOCKET, WATCHDOG_USEC=60000000), with a second daemon:
#    READY=1, WATCHDOG=1, and on SIGTERM STOPPING=1 and exit 0 within 5 s (needs python3);
# 9. SIGTERM to the daemon: it exits 0 (then Prometheus and the simulator are stopped).
# Every wait is bounded. KEEP_WORK=1 keeps the scratch directory (configs, logs).
# Last line: "e2e checks: N passed, N failed"; exit status non-zero on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
BIN_DIR="$(cd "${1:-$repo/.build/debug}" 2>/dev/null && pwd || echo "${1:-$repo/.build/debug}")"
WARDEN="$BIN_DIR/ecs-warden"
SIM="$BIN_DIR/ecs-sim"
LOOPS=()   # the daemon's loops, as its control API names them (GET /v1/loops): no list kept here

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
indent() { sed 's/^/    /'; }
summary() { echo "e2e checks: $passed passed, $failed failed"; }
t0=$(date +%s)

work="$(mktemp -d "${TMPDIR:-/tmp}/ecs-warden-e2e.XXXXXX")"
sim_pid=""
daemon_pid=""
prom_pid=""
notify_daemon_pid=""
listener_pid=""
# stop PID NAME: SIGTERM, up to 10 s, then SIGKILL. Only processes this script started.
stop() {
    local pid=$1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}
cleanup() {
    stop "$daemon_pid"
    stop "$notify_daemon_pid"
    stop "$listener_pid"
    stop "$prom_pid"
    stop "$sim_pid"
    if [[ ${KEEP_WORK:-0} == 1 ]]; then echo "scratch directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

# abort MESSAGE: a failure the rest cannot run without.
abort() {
    fail "$*"
    for log in "$work"/*.log; do
        [[ -s $log ]] || continue
        echo "--- $(basename "$log") (last 15 lines)"
        tail -n 15 "$log" | indent
    done
    summary
    exit 1
}

# ------------------------------------------------------------------ tools
apt_install() {
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    echo "installing $* with apt-get"
    "${sudo[@]}" apt-get update -qq >/dev/null &&
        DEBIAN_FRONTEND=noninteractive timeout 300 "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
missing=()
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]} > 0)); then
    apt_install "${missing[@]}" || abort "cannot install ${missing[*]} with apt-get"
fi
for tool in prometheus promtool jq curl; do
    command -v "$tool" >/dev/null || abort "$tool is not available"
done
for bin in "$WARDEN" "$SIM"; do
    [[ -x $bin ]] || abort "binary '$bin' is not an executable file (give the directory holding ecs-warden and ecs-sim)"
done
pass "tools: $(prometheus --version 2>&1 | head -n 1); binaries in $BIN_DIR"

# ------------------------------------------------------------------ helpers
# free_port: a TCP port free on 127.0.0.1, different from the ones handed out before.
used_ports=" "
free_port() {
    local port
    for _ in $(seq 1 50); do
        if command -v python3 >/dev/null; then
            port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null)
        else
            port=$((20000 + RANDOM % 30000))
            ss -Htln "sport = :$port" 2>/dev/null | grep -q . && port=""
        fi
        if [[ -n $port && $used_ports != *" $port "* ]]; then
            used_ports+="$port "
            echo "$port"
            return 0
        fi
    done
    return 1
}

# wait_for SECONDS PID DESCRIPTION COMMAND...: runs COMMAND every 0.5 s until it succeeds; fails
# when SECONDS pass or when PID (if not empty) dies.
wait_for() {
    local seconds=$1 pid=$2 what=$3
    shift 3
    local deadline=$(($(date +%s) + seconds))
    while (($(date +%s) < deadline)); do
        "$@" >/dev/null 2>&1 && return 0
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            echo "    (process $pid exited while waiting for $what)"
            return 1
        fi
        sleep 0.5
    done
    echo "    (timed out after ${seconds}s waiting for $what)"
    return 1
}

# query EXPR: the JSON result vector of an instant query (empty on error).
query() {
    curl -fsS -m 5 --get --data-urlencode "query=$1" "http://127.0.0.1:$prom_port/api/v1/query" 2>/dev/null |
        jq -c 'select(.status == "success") | .data.result'
}

# ------------------------------------------------------------------ simulator
AK="E2EACCESSKEY$RANDOM"
SK="e2e-secret-$RANDOM$RANDOM"
"$SIM" --port 0 --access-key "$AK" --secret-key "$SK" --project-id "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
    --servers-per-project 50 >"$work/sim.log" 2>&1 &
sim_pid=$!
sim_ready() { grep -q '^ecs-sim listening on http://127\.0\.0\.1:[0-9]*' "$work/sim.log" && grep -q '^projects ' "$work/sim.log"; }
wait_for 30 "$sim_pid" "the simulator's 'ecs-sim listening on' line" sim_ready || abort "ecs-sim did not start"
sim_url="$(sed -n 's|^ecs-sim listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$work/sim.log" | head -n 1)"
project_id="$(sed -n 's|^projects [0-9]*: \([0-9a-f]\{32\}\).*|\1|p' "$work/sim.log" | head -n 1)"
[[ -n $project_id ]] || abort "no project id in ecs-sim's output"
pass "ecs-sim listening on $sim_url, project $project_id"

# ------------------------------------------------------------------ configuration
metrics_port=$(free_port) && control_port=$(free_port) && prom_port=$(free_port) || abort "no free port"
mkdir -p "$work/state"
token_file="$work/control-token"
(umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token_file")
chmod 0600 "$token_file"
config="$work/ecs-warden.yaml"
cat >"$config" <<EOF
state_dir: $work/state
listen: {metrics: "127.0.0.1:$metrics_port", control: "127.0.0.1:$control_port", control_token: {file: $token_file}}
accounts: [{name: sim, access_key: {env: SIM_AK}, secret_key: {env: SIM_SK}}]
regions: [{name: eu-west-0, endpoint: "$sim_url"}]
projects: [{name: p0, id: $project_id, account: sim, region: eu-west-0}]
loops: {quota: {interval: 5s}, stuck: {interval: 5s}, schedule: {interval: 10s}, jobs: {interval: 5s}, flavors: {interval: 5s}}
EOF
out="$(timeout 30 "$WARDEN" check-config "$config" 2>&1)" && rc=0 || rc=$?
if ((rc == 0)); then pass "check-config accepts the generated configuration: $out"; else fail "check-config on the generated configuration exited $rc:"; printf '%s\n' "$out" | indent; fi

# ------------------------------------------------------------------ the daemon
metrics_url="http://127.0.0.1:$metrics_port"
SIM_AK="$AK" SIM_SK="$SK" "$WARDEN" run --config "$config" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
readyz() { [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "$metrics_url/readyz") == 200 ]]; }
wait_for 30 "$daemon_pid" "$metrics_url/readyz to answer 200" readyz || abort "the daemon did not become ready"
pass "daemon ready: GET $metrics_url/readyz -> 200 ($(($(date +%s) - t0))s after the script's start)"
mapfile -t LOOPS < <(curl -fsS -m 3 "http://127.0.0.1:$control_port/v1/loops" | jq -r '.[].name')
if ((${#LOOPS[@]} >= 5)); then pass "GET /v1/loops names the daemon's loops: ${LOOPS[*]}"; else fail "GET /v1/loops named only: ${LOOPS[*]:-nothing}"; fi

# Scrape once every configured loop has finished a pass, so the scrape carries every family.
loops_done() {
    local m
    m="$(curl -fsS -m 3 "$metrics_url/metrics")" || return 1
    for loop in "${LOOPS[@]}"; do grep -q "^ecs_warden_loop_last_success_timestamp_seconds{.*loop=\"$loop\"" <<<"$m" || return 1; done
}
wait_for 30 "$daemon_pid" "a successful pass of every loop on /metrics" loops_done || fail "not every loop (${LOOPS[*]}) reported a successful pass within 30 s"
if curl -fsS -m 5 "$metrics_url/metrics" -o "$work/scrape.prom"; then
    lint_rc=0
    lint="$(promtool check metrics <"$work/scrape.prom" 2>&1)" || lint_rc=$?
    if ((lint_rc == 0)); then
        pass "promtool check metrics: exit 0 on a scrape ($(grep -vc '^#' "$work/scrape.prom") samples, $(grep -c '^# TYPE' "$work/scrape.prom") families)"
    else
        fail "promtool check metrics exited $lint_rc (3 = lint warnings, 1 = parse error):"
        printf '%s\n' "$lint" | indent
    fi
else
    fail "cannot scrape $metrics_url/metrics"
fi

# ------------------------------------------------------------------ Prometheus
mkdir -p "$work/prometheus/data"
cp "$repo/deploy/alerts.yml" "$work/prometheus/alerts.yml"
cat >"$work/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 2s
  scrape_timeout: 2s
  evaluation_interval: 2s
rule_files:
  - alerts.yml
scrape_configs:
  - job_name: ecs-warden
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
EOF
out="$(cd "$work/prometheus" && timeout 30 promtool check config prometheus.yml 2>&1)" && rc=0 || rc=$?
if ((rc == 0)); then pass "promtool check config: the generated prometheus.yml with deploy/alerts.yml"; else fail "promtool check config exited $rc:"; printf '%s\n' "$out" | indent; fi

prometheus --config.file="$work/prometheus/prometheus.yml" --storage.tsdb.path="$work/prometheus/data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
prom_pid=$!
prom_url="http://127.0.0.1:$prom_port"
prom_ready() { curl -fsS -m 2 "$prom_url/-/ready"; }
wait_for 30 "$prom_pid" "Prometheus's /-/ready" prom_ready || abort "Prometheus did not start"
up_is_1() { [[ $(query 'up{job="ecs-warden"}' | jq -r '.[0].value[1] // empty') == 1 ]]; }
if wait_for 60 "$prom_pid" 'up{job="ecs-warden"} == 1' up_is_1; then
    pass "Prometheus scrapes the daemon: up{job=\"ecs-warden\"} == 1"
else
    fail "Prometheus: up{job=\"ecs-warden\"} did not read 1 within 60 s; targets:"
    curl -fsS -m 5 "$prom_url/api/v1/targets" | jq -c '.data.activeTargets[] | {scrapeUrl, health, lastError}' | indent
fi

# check_series NAME JQ-FILTER DESCRIPTION: the query NAME returns at least one series passing the
# filter (applied to each element of the result vector).
check_series() {
    local name=$1 filter=$2 what=$3 result count
    result="$(query "$name")"
    count=$(jq "[.[] | select($filter)] | length" <<<"${result:-[]}" 2>/dev/null || echo 0)
    if [[ -n $result ]] && ((count > 0)); then
        pass "$name: $count series $what"
    else
        fail "$name: no series $what; got: $(jq -c '[.[] | .metric]' <<<"${result:-[]}" 2>/dev/null | head -c 600)"
    fi
}
check_series ecs_warden_quota_used '.metric.project == "p0" and .metric.region == "eu-west-0" and (.metric.resource // "") != "" and .metric.job == "ecs-warden"' \
    'with project="p0", region="eu-west-0", a resource and job="ecs-warden"'
check_series ecs_warden_quota_limit '.metric.project == "p0" and .metric.region == "eu-west-0" and (.metric.resource // "") != "" and (.value[1] | tonumber) > 0' \
    'with project="p0", region="eu-west-0", a resource and a positive limit'
check_series 'ecs_warden_quota_used{resource="instances"}' '.metric.project == "p0" and .value[1] == "50"' \
    'with project="p0" reading 50 (the simulator'"'"'s 50 servers)'
for loop in "${LOOPS[@]}"; do
    check_series ecs_warden_loop_runs_total ".metric.loop == \"$loop\" and .metric.result == \"success\" and (.value[1] | tonumber) >= 1" \
        "with loop=\"$loop\", result=\"success\" and a count >= 1"
done
now=$(date +%s)
for loop in "${LOOPS[@]}"; do
    check_series ecs_warden_loop_last_success_timestamp_seconds \
        ".metric.loop == \"$loop\" and ((.value[1] | tonumber) - $now | fabs) < 120" "with loop=\"$loop\" and a timestamp within 2 minutes of now"
done

# The alert rules: the whole group is loaded, and every rule evaluates without an error.
want_rules=$(grep -c '^[[:space:]]*- alert:' "$repo/deploy/alerts.yml")
rules_json() { curl -fsS -m 5 "$prom_url/api/v1/rules" | jq -c '[.data.groups[] | select(.name == "ecs-warden") | .rules[]]'; }
got_rules=$(rules_json | jq 'length' 2>/dev/null || echo 0)
if ((got_rules == want_rules && want_rules > 0)); then
    pass "/api/v1/rules: group ecs-warden loaded with its $got_rules alerts (file $work/prometheus/alerts.yml)"
else
    fail "/api/v1/rules: group ecs-warden has $got_rules rules, deploy/alerts.yml defines $want_rules"
fi
all_evaluated() { [[ $(rules_json | jq '[.[] | select(.health == "unknown")] | length') == 0 ]]; }
wait_for 20 "$prom_pid" "every rule to be evaluated" all_evaluated
bad_rules="$(rules_json | jq -r '.[] | select(.health != "ok") | "\(.name): health \(.health): \(.lastError // "")"')"
if [[ -z $bad_rules ]]; then
    pass "/api/v1/rules: every rule of ecs-warden evaluated with health ok"
else
    fail "/api/v1/rules: rules that do not evaluate cleanly:"
    printf '%s\n' "$bad_rules" | indent
fi
# A rule evaluated before the first scrape sees no `up` (EcsWardenDown goes pending); it must clear
# at the next evaluations (every 2 s). Only alerts that stay are failures.
for _ in $(seq 1 10); do
    active="$(curl -fsS -m 5 "$prom_url/api/v1/alerts" | jq -r '.data.alerts[] | "\(.labels.alertname) \(.state) \(.labels.loop // "")"' | sort -u)"
    health_alerts="$(grep -E '^EcsWarden(Down|LoopFailing|LoopStale|LoopNeverSucceeded) ' <<<"$active" || true)"
    [[ -z $health_alerts ]] && break
    sleep 2
done
if [[ -z $health_alerts ]]; then
    pass "no daemon-health alert pending or firing (active: $(if [[ -n $active ]]; then awk '{ print $1 "/" $2 }' <<<"$active" | sort -u | paste -sd ' '; else echo none; fi))"
else
    fail "daemon-health alerts pending or firing against a healthy daemon:"
    printf '%s\n' "$health_alerts" | indent
fi

# ------------------------------------------------------------------ run --once
once_rc=0
# Its own state directory: the daemon above holds <state_dir>/ecs-warden.lock (a second ecs-warden
# on the same state directory is refused by design).
mkdir -p "$work/state-once"
sed "s|^state_dir: .*|state_dir: $work/state-once|" "$config" >"$work/ecs-warden-once.yaml"
once_out="$(SIM_AK="$AK" SIM_SK="$SK" timeout 60 "$WARDEN" run --config "$work/ecs-warden-once.yaml" --once 2>"$work/once.log")" || once_rc=$?
missing_lines=()
for loop in "${LOOPS[@]}"; do grep -Eq "^$loop: ok — .+" <<<"$once_out" || missing_lines+=("$loop"); done
if ((once_rc == 0 && ${#missing_lines[@]} == 0)); then
    pass "run --once: exit 0 and an 'ok' summary line per loop ($(paste -sd '|' <<<"$once_out" | sed 's/|/ | /g'))"
else
    fail "run --once: exit $once_rc; no 'LOOP: ok — …' line for: ${missing_lines[*]:-(all there)}; stdout:"
    printf '%s\n' "$once_out" | indent
    echo "    stderr (last 10 lines):"
    tail -n 10 "$work/once.log" | indent
fi

# ------------------------------------------------------------------ check-config on a broken file
bad="$work/broken.yaml"
cat >"$bad" <<EOF
state_dir: $work/state-broken
listen:
  metrics: "127.0.0.1:$metrics_port"
accounts:
  - name: sim
    access_key: {env: SIM_AK}
    secret_key: {env: SIM_SK}
regions:
  - name: eu-west-0
    endpoint: "$sim_url"
    request_timout: 10s
projects:
  - name: p0
    id: $project_id
    account: sim
    region: eu-west-0
loops:
  quota:
    interval: 5 minutes
EOF
unknown_line=$(grep -n 'request_timout:' "$bad" | cut -d: -f1)
duration_line=$(grep -n 'interval: 5 minutes' "$bad" | cut -d: -f1)
bad_rc=0
bad_out="$(timeout 30 "$WARDEN" check-config "$bad" 2>&1)" || bad_rc=$?
problems=()
((bad_rc != 0)) || problems+=("it exited 0")
grep -q -- "$bad:$unknown_line:.*request_timout" <<<"$bad_out" || problems+=("no '$bad:$unknown_line:…request_timout…' for the unknown key")
grep -q -- "$bad:$duration_line:.*interval" <<<"$bad_out" || problems+=("no '$bad:$duration_line:…interval…' for the bad duration")
if ((${#problems[@]} == 0)); then
    pass "check-config on a broken file: exit $bad_rc, unknown key at line $unknown_line and bad duration at line $duration_line reported"
else
    fail "check-config on a broken file: $(printf '%s; ' "${problems[@]}")output (exit $bad_rc):"
    printf '%s\n' "$bad_out" | indent
fi

# ------------------------------------------------------------------ the existing check scripts
for script in "systemd/check.sh $WARDEN" "deploy/check.sh"; do
    read -r -a argv <<<"$script"
    s_rc=0
    s_out="$(timeout 120 "$repo/${argv[0]}" "${argv[@]:1}" 2>&1)" || s_rc=$?
    last="$(tail -n 1 <<<"$s_out")"
    if ((s_rc == 0)) && [[ $last =~ checks:\ [0-9]+\ passed,\ 0\ failed$ ]]; then
        pass "${argv[0]}: $last"
    else
        fail "${argv[0]} exited $s_rc:"
        printf '%s\n' "$s_out" | indent
    fi
done

# ------------------------------------------------------------------ sd_notify under the unit's watchdog
# systemd/ecs-warden.service has Type=notify, WatchdogSec=60s and TimeoutStopSec=30s, so systemd
# runs the daemon with NOTIFY_SOCKET and WATCHDOG_USEC=60000000. A second daemon (same simulator,
# own state directory, ports picked by the kernel) runs so against a datagram socket this script
# reads: it must send READY=1 and WATCHDOG=1; then, on a SIGTERM sent a second after READY (the
# worst moment for anything that sleeps between pings), STOPPING=1, and exit 0 within
# NOTIFY_STOP_MAX seconds, well before systemd's SIGKILL at TimeoutStopSec.
NOTIFY_STOP_MAX=5
if command -v python3 >/dev/null; then
    notify_log="$work/notify.txt"
    python3 - "$work/notify.sock" "$notify_log" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
with open(sys.argv[2], "a", buffering=1) as out:
    out.write("bound\n")
    while True:
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        out.write("%.3f %s\n" % (time.time(), data.decode(errors="replace").replace("\n", " ")))
PY
    listener_pid=$!
    notify_bound() { grep -q '^bound$' "$notify_log"; }
    wait_for 10 "$listener_pid" "the notify socket" notify_bound || abort "cannot bind a notify socket with python3"
    mkdir -p "$work/state-notify"
    sed -e "s|^state_dir: .*|state_dir: $work/state-notify|" \
        -e "s|^listen: .*|listen: {metrics: \"127.0.0.1:0\", control: \"127.0.0.1:0\"}|" "$config" >"$work/notify.yaml"
    NOTIFY_SOCKET="$work/notify.sock" WATCHDOG_USEC=60000000 SIM_AK="$AK" SIM_SK="$SK" \
        "$WARDEN" run --config "$work/notify.yaml" >"$work/daemon-notify.log" 2>&1 &
    notify_daemon_pid=$!
    got_ready() { grep -q ' READY=1' "$notify_log"; }
    if wait_for 30 "$notify_daemon_pid" "READY=1 on NOTIFY_SOCKET" got_ready; then
        sleep 1
        if grep -q ' WATCHDOG=1' "$notify_log"; then
            pass "sd_notify: READY=1 then WATCHDOG=1 ($(grep -m1 ' READY=1' "$notify_log" | cut -d' ' -f2-))"
        else
            fail "sd_notify: READY=1 but no WATCHDOG=1 a second later with WATCHDOG_USEC=60000000; received:"
            indent <"$notify_log"
        fi
        term_ms=$(date +%s%3N)
        kill -TERM "$notify_daemon_pid"
        for _ in $(seq 1 200); do kill -0 "$notify_daemon_pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$notify_daemon_pid" 2>/dev/null; then
            fail "sd_notify: the daemon still runs 40 s after SIGTERM"
            stop "$notify_daemon_pid"
        else
            wait "$notify_daemon_pid"
            n_rc=$?
            took="$(awk -v a="$term_ms" -v b="$(date +%s%3N)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')"
            if ((n_rc == 0)) && grep -q ' STOPPING=1' "$notify_log" && awk -v t="$took" -v m="$NOTIFY_STOP_MAX" 'BEGIN { exit !(t <= m) }'; then
                pass "sd_notify: STOPPING=1 and exit 0 ${took}s after SIGTERM (<= ${NOTIFY_STOP_MAX}s; TimeoutStopSec=30s)"
            else
                fail "sd_notify: after SIGTERM the daemon exited $n_rc in ${took}s (want 0 within ${NOTIFY_STOP_MAX}s; systemd kills it at TimeoutStopSec=30s); STOPPING=1 $(grep -q ' STOPPING=1' "$notify_log" && echo sent || echo 'NOT sent'); messages:"
                indent <"$notify_log"
            fi
        fi
    else
        fail "sd_notify: no READY=1 within 30 s on NOTIFY_SOCKET; daemon log:"
        tail -n 10 "$work/daemon-notify.log" | indent
    fi
    notify_daemon_pid=""
    stop "$listener_pid"
    listener_pid=""
else
    echo "SKIP: python3 is not installed (no sd_notify check)"
fi

# ------------------------------------------------------------------ shutdown
kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon died before the end of the run"
term_ms=$(date +%s%3N)
kill -TERM "$daemon_pid" 2>/dev/null
d_rc=""
for _ in $(seq 1 175); do
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.2
done
if kill -0 "$daemon_pid" 2>/dev/null; then
    fail "the daemon did not exit within 35 s of SIGTERM (TimeoutStopSec is 30s)"
else
    wait "$daemon_pid"
    d_rc=$?
    daemon_pid=""
    if ((d_rc == 0)); then
        pass "the daemon exited 0 on SIGTERM, after $(awk -v a="$term_ms" -v b="$(date +%s%3N)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')s ($(grep -c . "$work/daemon.log") log lines; last: $(tail -n 1 "$work/daemon.log"))"
    else
        fail "the daemon exited $d_rc on SIGTERM; log (last 10 lines):"
        tail -n 10 "$work/daemon.log" | indent
    fi
fi
bad_log="$(grep -Ev '^<[0-7]>' "$work/daemon.log" | grep -v '^$' | head -n 5)"
if [[ -z $bad_log ]]; then pass "daemon log: every line has a <N> priority prefix"; else fail "daemon log lines without a <N> prefix:"; printf '%s\n' "$bad_log" | indent; fi
stop "$prom_pid"
prom_pid=""
stop "$sim_pid"
sim_pid=""

echo "total time: $(($(date +%s) - t0))s"
summary
((failed == 0))
