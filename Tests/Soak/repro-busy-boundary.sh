#!/usr/bin/env bash
# Reproduction (found by the soak at SOAK_SIM_SPEED=1): a server that is busy (a task_state such as
# `rebooting` or `powering-on`) when its schedule's stop boundary is handled is skipped as "busy", yet
# the boundary is marked handled, so the server is never stopped for that period: it stays ACTIVE
# until the next boundary (all night for an office-hours schedule), although nothing but a transient
# task state stood in the way.
#
#   Tests/Soak/repro-busy-boundary.sh [BIN_DIR]     (default .build/debug; about 2.5 minutes)
#
# Steps: ecs-sim at speed 1 with two running servers tagged warden-schedule=repro; the daemon with a
# schedule whose stop boundary is the next whole minute at least 70 s ahead; 5 s before the boundary
# server A is put in task_state `rebooting` (as a person rebooting it in the console would); 15 s after
# the boundary its reboot is over (task_state cleared, ACTIVE); 60 s later A is checked.
# Expected: A is stopped once its reboot is over (B, not busy, is stopped at the boundary).
# Prints "REPRODUCED" (exit 1) when A is still ACTIVE while the schedule wants it stopped and the
# boundary is marked handled; "NOT REPRODUCED" (exit 0) otherwise.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN_DIR="$(cd "${1:-$here/../../.build/debug}" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/ecs-warden-repro.XXXXXX")"
sim_pid="" daemon_pid=""
cleanup() {
    [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
    [[ ${KEEP_WORK:-0} == 1 ]] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

"$BIN_DIR/ecs-sim" --port 0 --access-key REPROAK --secret-key REPROSK --projects 1 --servers-per-project 0 --speed 1 >"$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 1 100); do grep -q '^projects ' "$work/sim.log" 2>/dev/null && break; sleep 0.1; done
sim="$(sed -n 's|^ecs-sim listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$work/sim.log")"
project="$(sed -n 's|^projects 1: \([0-9a-f]*\).*|\1|p' "$work/sim.log")"
echo "ecs-sim $sim project $project"

exec 3< <(python3 - "$sim" "$project" "$work" "$BIN_DIR" <<'EOF'
import datetime, json, os, socket, sqlite3, subprocess, sys, time, urllib.request
sim, project, work, bin_dir = sys.argv[1:5]

def call(method, url, body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")

def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

a = call("POST", f"{sim}/_sim/projects/{project}/servers", {"name": "repro-a", "running": True, "tags": {"warden-schedule": "repro"}})["id"]
b = call("POST", f"{sim}/_sim/projects/{project}/servers", {"name": "repro-b", "running": True, "tags": {"warden-schedule": "repro"}})["id"]
now = time.time()
stop = (int(now // 60) + 2) * 60
if stop - now < 70:
    stop += 60
start = stop - 600
fmt = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%H:%M")
control, metrics = port(), port()
open(f"{work}/token", "w").write("t" * 32); os.chmod(f"{work}/token", 0o600)
open(f"{work}/c.yaml", "w").write(f"""state_dir: {work}/state
listen: {{metrics: "127.0.0.1:{metrics}", control: "127.0.0.1:{control}", control_token: {{file: {work}/token}}}}
accounts: [{{name: k, access_key: {{env: R_AK}}, secret_key: {{env: R_SK}}}}]
regions: [{{name: eu-west-0, endpoint: "{sim}"}}]
projects: [{{name: p0, id: {project}, account: k, region: eu-west-0}}]
loops: {{schedule: {{interval: 10s}}, stuck: {{interval: 10s}}}}
schedules:
  repro:
    timezone: UTC
    periods: [{{days: every day, start: "{fmt(start)}", stop: "{fmt(stop)}"}}]
""")
os.makedirs(f"{work}/state", exist_ok=True)
env = dict(os.environ, R_AK="REPROAK", R_SK="REPROSK")
daemon = subprocess.Popen([f"{bin_dir}/ecs-warden", "run", "--config", f"{work}/c.yaml"], env=env,
                          stdout=open(f"{work}/daemon.log", "wb"), stderr=subprocess.STDOUT)
print(f"DAEMON {daemon.pid}", flush=True)
print(f"servers A={a} B={b}; schedule repro: start {fmt(start)} stop {fmt(stop)} UTC (stop boundary in {stop - time.time():.0f} s)", flush=True)
time.sleep(max(0, stop - 5 - time.time()))
call("PUT", f"{sim}/_sim/projects/{project}/servers/{a}/state", {"task_state": "rebooting"})
print(f"{fmt(time.time())}:{int(time.time()) % 60:02d} A is rebooting (task_state rebooting) across the stop boundary", flush=True)
time.sleep(max(0, stop + 15 - time.time()))
call("PUT", f"{sim}/_sim/projects/{project}/servers/{a}/state", {"task_state": None})
print(f"boundary + 15 s: A's reboot is over: {call('GET', f'{sim}/_sim/projects/{project}/servers/{a}')}", flush=True)
time.sleep(60)
sa = call("GET", f"{sim}/_sim/projects/{project}/servers/{a}")
sb = call("GET", f"{sim}/_sim/projects/{project}/servers/{b}")
with urllib.request.urlopen(f"http://127.0.0.1:{control}/v1/schedules", timeout=5) as r:
    schedules = json.loads(r.read())
db = sqlite3.connect(f"file:{work}/state/state.sqlite?mode=ro", uri=True)
marks = db.execute("SELECT schedule, project, boundary FROM schedule_marks").fetchall()
journal = db.execute("SELECT seq, kind, action, result, servers, message FROM journal ORDER BY seq").fetchall()
print(f"boundary + 75 s: A {sa['status']}/{sa['task_state']}, B {sb['status']}/{sb['task_state']}", flush=True)
print(f"/v1/schedules: {json.dumps(schedules)}", flush=True)
print(f"schedule_marks: {[(s, p, fmt(t)) for s, p, t in marks]}", flush=True)
for row in journal:
    print(f"journal: {row}", flush=True)
reproduced = sa["status"] == "ACTIVE" and sb["status"] == "SHUTOFF" and any(t >= stop for _, _, t in marks)
print("RESULT " + ("REPRODUCED: A stays ACTIVE although the schedule wants it stopped and the boundary is marked handled"
                    if reproduced else "NOT REPRODUCED"), flush=True)
daemon.terminate(); daemon.wait(timeout=20)
EOF
)
result=1
while IFS= read -r line <&3; do
    case "$line" in
        DAEMON\ *) daemon_pid="${line#DAEMON }" ;;
        RESULT\ REPRODUCED*) echo "${line#RESULT }"; result=1 ;;
        RESULT\ *) echo "${line#RESULT }"; result=0 ;;
        *) echo "$line" ;;
    esac
done
daemon_pid=""
exit $result
