#!/usr/bin/env bash
# End-to-end check of `ecs-warden demo`: every loop acts, as seen on /metrics.
#
#   Tests/E2E/demo-acts.sh [/path/to/ecs-warden]      (default: .build/debug/ecs-warden)
#
# Runs `ecs-warden demo --metrics-port 0 --control-port 0 --duration 90 --boundary-in 30`,
# scrapes /metrics every 2 s while it runs, then checks, each on its own:
#   1. quota:    ecs_warden_quota_usage_ratio{project="shop-prod",resource="instances"} is seen
#                above 0.8 (and below 0.95), then later at or above 0.95;
#   2. stuck job:    ecs_warden_stuck_jobs{project="shop-prod"} > 0 at some scrape;
#   3. stuck server: ecs_warden_stuck_servers{task_state="powering-off"} > 0 at some scrape;
#   4. schedule: ecs_warden_schedule_actions_total{schedule="demo-evening",action="stop",
#                result="success"} reaches 8 (and no result="failed"), the first stop is counted
#                soon after the boundary the demo announced (not a whole loop interval later), and
#                ecs_warden_schedule_servers{schedule="demo-evening",state="stopped"} reaches 8;
#   5. flavor:   ecs_warden_flavor_sold_out{az="eu-west-0b",flavor="s3.small.2"} is seen 1, then
#                later 0, and ecs_warden_flavor_state_changes_total for it increases during the run
#                (to at least 2: sold out, then back);
# plus: the demo exits 0 about --duration seconds after its start, within 3 s of printing "demo
# duration reached; stopping" (a graceful shutdown must not hang); stdout holds only the `demo: `
# narrative lines, all of the expected ones; every stderr line has a `<N>` priority prefix; and
# (when promtool is installed) `promtool check metrics` accepts a scrape taken mid-run.
#
# The schedule boundary is rounded up to a whole minute by the demo, so with --boundary-in 30 it
# falls 30-90 s ahead depending on the wall clock. To make the run deterministic the script waits
# (at most a minute) until the boundary will fall 34-48 s after the start; DEMO_ALIGN=0 skips that.
# Environment: DEMO_DURATION (90), DEMO_BOUNDARY_IN (30), DEMO_ALIGN (1), KEEP_WORK=1 keeps the
# scratch directory (scrapes, stdout, stderr), VERBOSE=1 prints the metric timeline even on success.
# Last line: "demo checks: N passed, N failed"; exit status non-zero on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
BIN="${1:-$repo/.build/debug/ecs-warden}"
DURATION="${DEMO_DURATION:-90}"
BOUNDARY_IN="${DEMO_BOUNDARY_IN:-30}"
SCRAPE_EVERY=2
STOP_LATENESS_MAX=15   # seconds between the boundary and the first counted stop
SHUTDOWN_MAX=3         # seconds between "demo duration reached" and the exit

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
summary() { echo "demo checks: $passed passed, $failed failed"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/ecs-warden-demo-acts.XXXXXX")"
demo_pid=""
cleanup() {
    if [[ -n $demo_pid ]] && kill -0 "$demo_pid" 2>/dev/null; then
        kill -TERM "$demo_pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$demo_pid" 2>/dev/null
        wait "$demo_pid" 2>/dev/null
    fi
    if [[ ${KEEP_WORK:-0} == 1 ]]; then echo "scratch directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

for tool in curl awk; do
    command -v "$tool" >/dev/null || { fail "$tool is not installed"; summary; exit 1; }
done
if [[ ! -x $BIN ]]; then
    fail "binary '$BIN' is not an executable file"
    summary
    exit 1
fi

# ------------------------------------------------------------------ align on the wall clock
# boundary = ceil((start + BOUNDARY_IN) / 60) * 60; aim for it 4-18 s beyond BOUNDARY_IN.
if [[ ${DEMO_ALIGN:-1} == 1 ]]; then
    sec=$((10#$(date +%S)))
    phase=$(((sec + BOUNDARY_IN) % 60))
    if ((phase < 42 || phase > 56)); then
        wait_s=$(((42 - phase + 60) % 60))
        echo "aligning on the wall clock: waiting ${wait_s}s so the schedule boundary falls $((BOUNDARY_IN + 4))-$((BOUNDARY_IN + 18))s after the start"
        sleep "$wait_s"
    fi
fi

# ------------------------------------------------------------------ run the demo
mkdir -p "$work/tmp" "$work/scrapes"
start_ms=$(date +%s%3N)
start=$((start_ms / 1000))
echo "starting: $BIN demo --metrics-port 0 --control-port 0 --duration $DURATION --boundary-in $BOUNDARY_IN ($(date -u +%H:%M:%SZ))"
# TMPDIR: the demo's state directory goes into the scratch directory (removed at exit).
TMPDIR="$work/tmp" "$BIN" demo --metrics-port 0 --control-port 0 --duration "$DURATION" --boundary-in "$BOUNDARY_IN" \
    >"$work/stdout" 2>"$work/stderr" &
demo_pid=$!

url=""
for _ in $(seq 1 300); do
    url="$(sed -n 's|^demo: metrics: \(http://[^ ]*/metrics\)$|\1|p' "$work/stdout" | head -n 1)"
    [[ -n $url ]] && break
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z $url ]]; then
    fail "the demo printed no 'demo: metrics: http://…/metrics' line within 30 s"
    echo "--- stdout"; cat "$work/stdout"; echo "--- stderr"; tail -n 30 "$work/stderr"
    summary
    exit 1
fi
if [[ $url =~ ^http://127\.0\.0\.1:[0-9]+/metrics$ ]]; then
    pass "metrics served on loopback: $url"
else
    fail "metrics URL is not a loopback http URL: $url"
fi

# ctl against the running demo: tables for people, JSON for scripts, the exit codes scripts rely on
# (0 ok, 1 refused, 2 usage, 3 unreachable). Run once, 20 s in (every loop has passed by then).
control="$(sed -n 's|^demo: control API: \(http://127\.0\.0\.1:[0-9]*\)/v1/status.*|\1|p' "$work/stdout" | head -n 1)"
token_file="$(sed -n 's|^demo: control API: .*\$(cat \([^)]*\)).*|\1|p' "$work/stdout" | head -n 1)"
ctl_checks() {
    local out rc
    out="$("$BIN" ctl status --url "$control" 2>&1)" && rc=0 || rc=$?
    if ((rc == 0)) && grep -q '^LOOP  *STATE  *LAST PASS' <<<"$out" && grep -q '^schedule ' <<<"$out" && ! grep -q $'\e' <<<"$out"; then
        pass "ctl status: exit 0, an aligned loop table, no colour when not a terminal"
    else
        fail "ctl status: exit $rc: $(head -c 400 <<<"$out")"
    fi
    out="$("$BIN" ctl stuck --url "$control" -o json 2>&1)" && rc=0 || rc=$?
    if ((rc == 0)) && python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if "jobs" in d and "servers" in d else 1)' <<<"$out" 2>/dev/null; then pass "ctl stuck -o json: exit 0, JSON with jobs and servers"; else fail "ctl stuck -o json: exit $rc: $(head -c 300 <<<"$out")"; fi
    "$BIN" ctl pause jobs --url "$control" --token-file "$token_file" >/dev/null 2>&1 && rc=0 || rc=$?
    if ((rc == 1)); then pass "ctl pause jobs: exit 1 (refused: job following is never paused)"; else fail "ctl pause jobs: exit $rc, want 1"; fi
    "$BIN" ctl pause nosuch-loop --url "$control" >/dev/null 2>&1 && rc=0 || rc=$?
    if ((rc == 2)); then pass "ctl pause nosuch-loop: exit 2 (usage)"; else fail "ctl pause nosuch-loop: exit $rc, want 2"; fi
    "$BIN" ctl status --url "http://127.0.0.1:1" >/dev/null 2>&1 && rc=0 || rc=$?
    if ((rc == 3)); then pass "ctl status against nothing: exit 3 (unreachable)"; else fail "ctl status against a closed port: exit $rc, want 3"; fi
}
ctl_done=0
# ctl plan once the scheduler has read the demo-morning servers and the flavor loop their sale
# state (passes every 30 s and 5 s): the start half an hour ahead, its servers at risk.
plan_checks() {
    local out rc
    out="$("$BIN" ctl plan --url "$control" 2>&1)" && rc=0 || rc=$?
    if ((rc == 0)) && grep -q "at risk:" <<<"$out" && grep -q "START" <<<"$out"; then
        pass "ctl plan: the demo-morning start with its servers at risk ($(grep -c 'is sold out' <<<"$out") named)"
    else
        fail "ctl plan: exit $rc, no start with servers at risk: $(head -c 600 <<<"$out")"
    fi
}
plan_done=0

# Scrape every SCRAPE_EVERY seconds until the demo exits (bounded: duration + 60 s); check the
# process every 0.2 s, so the exit time and the time of the "demo duration reached" line are
# known to a fraction of a second.
now_ms() { date +%s%3N; }
n=0
deadline=$((start + DURATION + 60))
next_scrape=0
reached_ms=""
while kill -0 "$demo_pid" 2>/dev/null && (($(date +%s) < deadline)); do
    if [[ -z $reached_ms ]] && grep -q '^demo: demo duration reached' "$work/stdout"; then reached_ms=$(now_ms); fi
    if ((ctl_done == 0 && $(date +%s) - start >= 20)); then
        ctl_done=1
        if [[ -n $control && -n $token_file ]]; then ctl_checks; else fail "the demo printed no control API line with its token file"; fi
    fi
    if ((plan_done == 0 && $(date +%s) - start >= 50)); then
        plan_done=1
        [[ -n $control ]] && plan_checks
    fi
    if (($(now_ms) >= next_scrape)); then
        next_scrape=$(($(now_ms) + SCRAPE_EVERY * 1000))
        n=$((n + 1))
        f="$work/scrapes/$(printf '%04d' "$n")"
        t=$(date +%s)
        if curl -fsS -m 3 "$url" >"$f.prom" 2>"$f.err"; then echo "$t" >"$f.time"; else rm -f "$f.prom"; fi
    fi
    sleep 0.2
done
if kill -0 "$demo_pid" 2>/dev/null; then
    fail "the demo was still running $((DURATION + 60)) s after its start (--duration $DURATION): killing it"
    kill -TERM "$demo_pid"
    sleep 5
    kill -KILL "$demo_pid" 2>/dev/null
fi
wait "$demo_pid"
rc=$?
end_ms=$(now_ms)
# A quick shutdown can print the line and exit between two 0.2 s samples: then the line was
# printed within the last sample period before the exit.
if [[ -z $reached_ms ]] && grep -q '^demo: demo duration reached' "$work/stdout"; then reached_ms=$end_ms; fi
end=$((end_ms / 1000))
demo_pid=""
elapsed=$((end - start))
elapsed_text="$(awk -v a="$start_ms" -v b="$end_ms" 'BEGIN { printf "%.1f", (b - a) / 1000 }')"
scrapes=$(find "$work/scrapes" -name '*.prom' | wc -l)
echo "demo ran ${elapsed_text}s, exit status $rc, $scrapes scrapes"

# ------------------------------------------------------------------ metric timeline
# value FILE METRIC 'label="v"'...: the sum of the matching series' values, or "-" when none.
value() {
    local file=$1 metric=$2
    shift 2
    awk -v metric="$metric" -v want="$*" '
        BEGIN { n = split(want, w, " ") }
        /^#/ || NF < 2 { next }
        {
            name = $1; labels = ""; v = $2
            i = index($1, "{")
            if (i > 0) {
                name = substr($1, 1, i - 1); j = index($0, "}")
                labels = substr($0, i, j - i + 1); split(substr($0, j + 1), rest, " "); v = rest[1]
            }
            if (name != metric) next
            for (k = 1; k <= n; k++) {
                if (index(labels, "{" w[k] ",") == 0 && index(labels, "," w[k] ",") == 0 &&
                    index(labels, "{" w[k] "}") == 0 && index(labels, "," w[k] "}") == 0) next
            }
            found = 1; sum += v
        }
        END { if (found) printf "%s\n", sum + 0; else print "-" }' "$file"
}

timeline="$work/timeline"
echo "#t quota_ratio stuck_jobs stuck_servers stops_ok stops_failed stopped sold_out changes at_risk" >"$timeline"
for f in "$work"/scrapes/*.prom; do
    [[ -e $f ]] || continue
    t=$(($(cat "${f%.prom}.time") - start))
    printf '%s %s %s %s %s %s %s %s %s %s\n' "$t" \
        "$(value "$f" ecs_warden_quota_usage_ratio 'project="shop-prod"' 'resource="instances"')" \
        "$(value "$f" ecs_warden_stuck_jobs 'project="shop-prod"')" \
        "$(value "$f" ecs_warden_stuck_servers 'task_state="powering-off"')" \
        "$(value "$f" ecs_warden_schedule_actions_total 'schedule="demo-evening"' 'action="stop"' 'result="success"')" \
        "$(value "$f" ecs_warden_schedule_actions_total 'schedule="demo-evening"' 'action="stop"' 'result="failed"')" \
        "$(value "$f" ecs_warden_schedule_servers 'schedule="demo-evening"' 'state="stopped"')" \
        "$(value "$f" ecs_warden_flavor_sold_out 'az="eu-west-0b"' 'flavor="s3.small.2"')" \
        "$(value "$f" ecs_warden_flavor_state_changes_total 'az="eu-west-0b"' 'flavor="s3.small.2"')" \
        "$(value "$f" ecs_warden_schedule_at_risk 'schedule="demo-morning"')" >>"$timeline"
done
# Columns: 1 t, 2 quota, 3 stuck jobs, 4 stuck servers, 5 stop ok, 6 stop failed, 7 stopped,
# 8 sold out, 9 state changes.
col() { awk -v c="$1" '!/^#/ { print $1, $c }' "$timeline"; }
# distinct COLUMN: the column's successive distinct values with the time first seen ("t=12s:0.86").
distinct() { col "$1" | awk '$2 != last { printf "%st=%ss:%s", sep, $1, $2; sep = " "; last = $2 } END { print "" }'; }

if ((scrapes < 10)); then
    fail "only $scrapes successful scrapes of $url (expected about $((DURATION / SCRAPE_EVERY)))"
fi

# 1. quota: warning band, then critical.
if col 2 | awk '$2 != "-" && $2 > 0.8 && $2 < 0.95 { w = 1 } w && $2 != "-" && $2 >= 0.95 { ok = 1 } END { exit !ok }'; then
    pass "quota: shop-prod instances ratio went above 0.8, then to 0.95 or more ($(distinct 2))"
else
    fail "quota: ecs_warden_quota_usage_ratio{project=\"shop-prod\",resource=\"instances\"} was not seen above 0.8 (below 0.95) and later at or above 0.95; values: $(distinct 2)"
fi

# 2. stuck job.
if col 3 | awk '$2 != "-" && $2 > 0 { ok = 1 } END { exit !ok }'; then
    pass "stuck job: ecs_warden_stuck_jobs{project=\"shop-prod\"} > 0 ($(distinct 3))"
else
    fail "stuck job: ecs_warden_stuck_jobs{project=\"shop-prod\"} was never > 0; values: $(distinct 3)"
fi

# 3. stuck server.
if col 4 | awk '$2 != "-" && $2 > 0 { ok = 1 } END { exit !ok }'; then
    pass "stuck server: ecs_warden_stuck_servers{task_state=\"powering-off\"} > 0 ($(distinct 4))"
else
    fail "stuck server: ecs_warden_stuck_servers{task_state=\"powering-off\"} was never > 0; values: $(distinct 4)"
fi

# 4. schedule: 8 stops counted, promptly after the boundary, and 8 servers reported stopped.
boundary_text="$(sed -n "s/^demo: schedule 'demo-evening' stops its servers at \([^ ]*\) .*/\1/p" "$work/stdout" | head -n 1)"
boundary=""
[[ -n $boundary_text ]] && boundary=$(date -d "$boundary_text" +%s 2>/dev/null)
if [[ -n $boundary ]]; then
    echo "schedule boundary: $boundary_text, $((boundary - start)) s after the start"
fi
stops_max=$(col 5 | awk '$2 != "-" && $2 > m { m = $2 } END { print m + 0 }')
fails_max=$(col 6 | awk '$2 != "-" && $2 > m { m = $2 } END { print m + 0 }')
if ((stops_max >= 8 && fails_max == 0)); then
    pass "schedule: ecs_warden_schedule_actions_total{schedule=\"demo-evening\",action=\"stop\",result=\"success\"} reached 8 ($(distinct 5))"
else
    fail "schedule: ecs_warden_schedule_actions_total{schedule=\"demo-evening\",action=\"stop\"} reached $stops_max successes (want 8) and $fails_max failures (want 0); successes: $(distinct 5)"
fi
first_stop=$(col 5 | awk '$2 != "-" && $2 > 0 { print $1; exit }')
if [[ -z $boundary ]]; then
    fail "schedule: no \"demo: schedule 'demo-evening' stops its servers at <ISO time>\" line to time the stop against"
elif [[ -z $first_stop ]]; then
    fail "schedule: no stop was counted at all (the boundary was at +$((boundary - start))s, the run lasted ${elapsed}s)"
else
    late=$((start + first_stop - boundary))
    if ((late <= STOP_LATENESS_MAX)); then
        pass "schedule: the first stop was counted ${late}s after the boundary (<= ${STOP_LATENESS_MAX}s)"
    else
        fail "schedule: the first stop was counted ${late}s after the ${boundary_text} boundary (want <= ${STOP_LATENESS_MAX}s: the schedule loop should wake at the boundary, not a loop interval later)"
    fi
fi
if col 7 | awk '$2 != "-" && $2 >= 8 { ok = 1 } END { exit !ok }'; then
    pass "schedule: ecs_warden_schedule_servers{schedule=\"demo-evening\",state=\"stopped\"} reached 8 ($(distinct 7))"
else
    fail "schedule: ecs_warden_schedule_servers{schedule=\"demo-evening\",state=\"stopped\"} never reached 8 within the ${elapsed}s run; values: $(distinct 7)"
fi

# 5. flavor: sold out, then back; the change counter rises.
if col 8 | awk '$2 == "1" { s = 1 } s && $2 == "0" { ok = 1 } END { exit !ok }'; then
    pass "flavor: ecs_warden_flavor_sold_out{az=\"eu-west-0b\",flavor=\"s3.small.2\"} went 1 then 0 ($(distinct 8))"
else
    fail "flavor: ecs_warden_flavor_sold_out{az=\"eu-west-0b\",flavor=\"s3.small.2\"} was not seen 1 and later 0; values: $(distinct 8)"
fi
if col 9 | awk '{ v = ($2 == "-") ? -1 : $2 } NR > 1 && v > prev { up = 1 } { prev = v; last = v } END { exit !(up && last >= 2) }'; then
    pass "flavor: ecs_warden_flavor_state_changes_total{az=\"eu-west-0b\",flavor=\"s3.small.2\"} increased during the run ($(distinct 9))"
else
    fail "flavor: ecs_warden_flavor_state_changes_total{az=\"eu-west-0b\",flavor=\"s3.small.2\"} did not increase during the run to at least 2; values: $(distinct 9)"
fi

# 6. start preflight: the demo-morning servers whose flavor sold out are reported at risk ahead of
# their start boundary.
if col 10 | awk '$2 != "-" && $2 + 0 >= 1 { ok = 1 } END { exit !ok }'; then
    pass "start preflight: ecs_warden_schedule_at_risk{schedule=\"demo-morning\"} reported servers at risk ($(distinct 10))"
else
    fail "start preflight: ecs_warden_schedule_at_risk{schedule=\"demo-morning\"} never above 0; values: $(distinct 10)"
fi

# ------------------------------------------------------------------ exit, stdout, stderr
# Exits 0 at --duration: the "demo duration reached" line about DURATION s after the start, and
# the process gone within SHUTDOWN_MAX seconds of that line (a clean shutdown is quick).
if [[ -n $reached_ms ]]; then
    shutdown_text="$(awk -v a="$reached_ms" -v b="$end_ms" 'BEGIN { printf "%.1f", (b - a) / 1000 }')"
    shutdown_slow=$(awk -v a="$reached_ms" -v b="$end_ms" -v m="$SHUTDOWN_MAX" 'BEGIN { print ((b - a) / 1000 > m) ? 1 : 0 }')
else
    shutdown_text="?"
    shutdown_slow=1
fi
if ((rc == 0 && elapsed >= DURATION - 2 && elapsed <= DURATION + 30)); then
    pass "the demo exited 0 after ${elapsed_text}s (--duration $DURATION)"
else
    fail "the demo exited with status $rc after ${elapsed_text}s (want 0, after about $DURATION s)"
fi
if ((shutdown_slow == 0)); then
    pass "the demo was gone ${shutdown_text}s after printing 'demo duration reached' (<= ${SHUTDOWN_MAX}s)"
else
    fail "the demo exited ${shutdown_text}s after printing 'demo duration reached; stopping' (want <= ${SHUTDOWN_MAX}s: something holds the graceful shutdown)"
fi

expected=(
    "^demo: simulated region eu-west-0 at http://127\.0\.0\.1:[0-9]+ "
    "^demo: schedule 'demo-evening' stops its servers at [0-9T:-]+Z \([0-9]+ s from now\)$"
    "^demo: metrics: http://127\.0\.0\.1:[0-9]+/metrics$"
    "^demo: control API: http://127\.0\.0\.1:[0-9]+/v1/status"
    "^demo: quota of shop-prod set to [0-9]+ instances"
    "^demo: tagged 8 running servers warden-schedule=demo-evening"
    "^demo: started reboot job [0-9a-f]+ that will hang"
    "^demo: server .* is now stuck in task_state powering-off"
    "^demo: flavor [a-z0-9.]+ is now sold out in eu-west-0[a-z], where [0-9]+ stopped servers of shop-dev are due to start"
    "^demo: flavor s3\.small\.2 is now sold out in eu-west-0b$"
    "^demo: created 3 servers in shop-prod"
    "^demo: flavor s3\.small\.2 is back on sale in eu-west-0b$"
    "^demo: demo duration reached; stopping$"
)
missing=()
for re in "${expected[@]}"; do grep -Eq -- "$re" "$work/stdout" || missing+=("$re"); done
stray="$(grep -v '^demo: ' "$work/stdout" | head -n 5)"
if [[ ${#missing[@]} -eq 0 && -z $stray ]]; then
    pass "stdout: all ${#expected[@]} narrative lines, every line 'demo: …' ($(wc -l <"$work/stdout") lines)"
else
    fail "stdout: missing narrative lines: $(printf '[%s] ' "${missing[@]}")${stray:+; lines without 'demo: ': $stray}"
fi

bad_log="$(grep -Ev '^<[0-7]>' "$work/stderr" | grep -v '^$' | head -n 5)"
if [[ -z $bad_log && -s $work/stderr ]]; then
    pass "stderr: $(wc -l <"$work/stderr") log lines, each with a <N> priority prefix"
else
    fail "stderr: ${bad_log:+lines without a <N> priority prefix: $bad_log}${bad_log:-no log lines at all}"
fi

# A mid-run scrape (one with the stuck, schedule and flavor series) passes promtool's linter.
if command -v promtool >/dev/null; then
    mid="$(find "$work/scrapes" -name '*.prom' | sort | awk '{ a[NR] = $0 } END { if (NR) print a[int((NR + 1) * 2 / 3)] }')"
    if [[ -n $mid ]]; then
        lint_rc=0
        lint="$(promtool check metrics <"$mid" 2>&1)" || lint_rc=$?
        if ((lint_rc == 0)); then
            pass "promtool check metrics: a mid-run scrape is clean"
        else
            fail "promtool check metrics exited $lint_rc on a mid-run scrape:"
            printf '%s\n' "$lint" | sed 's/^/    /'
        fi
    fi
else
    echo "SKIP: promtool is not installed (no lint of the scrape)"
fi

if ((failed > 0)) || [[ ${VERBOSE:-0} == 1 ]]; then
    echo "--- metric timeline (t = seconds after the start; '-' = series absent)"
    column -t "$timeline" 2>/dev/null || cat "$timeline"
    if ((failed > 0)); then
        echo "--- demo stdout"; cat "$work/stdout"
        echo "--- demo stderr (last 25 lines)"; tail -n 25 "$work/stderr"
    fi
fi
summary
((failed == 0))
