#!/usr/bin/env bash
# Reproduction (found by the soak's late-delivery phase): a batch stop whose answer never comes
# back in time, and which the API only carries out after the daemon gave up on it, is followed by a
# SECOND stop of the same servers for the same boundary under a new X-Client-Token. The open intent
# is not resolved before the planner acts again (recovery re-sends it with the same token, that
# re-send is ambiguous too, and the pass then plans the boundary afresh), so when the first call is
# finally carried out, the servers receive two stop jobs.
#
#   Tests/Soak/repro-late-delivery.sh [BIN_DIR] [SPEED] [TOUCH]   (default .build/debug, speed 1; ~3.5 min)
#
# Variants: SPEED 240 (the simulator's clock runs ahead, so recovery believes every server changed);
# TOUCH=1 (at speed 1: 10 s after the boundary a person adds a tag to one of the servers through the
# ECS API, which moves its `updated` time, while the stop call is still held).
#
# Setup: ecs-sim (speed 1: the simulated clock is the real one, so this is not a clock artefact)
# with 3 running servers tagged warden-schedule=repro; the soak's recording proxy (soak.py proxy)
# between the daemon and the simulator, holding every batch power action 60 s before forwarding it
# (an API gateway that queues the call while the client times out: request_timeout 3 s, 5 attempts,
# all with the same X-Client-Token); the daemon with a stop boundary at the next whole minute at
# least 40 s ahead. The hold is lifted 90 s after the boundary; everything is read 150 s after it.
# Expected: one stop job per server for the boundary (the same token may be replayed any number of
# times). Prints "REPRODUCED" (exit 1) when a server is in two distinct stop jobs of the boundary.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN_DIR="$(cd "${1:-$here/../../.build/debug}" && pwd)"
SPEED="${2:-1}"
TOUCH="${3:-0}"
work="$(mktemp -d "${TMPDIR:-/tmp}/ecs-warden-repro.XXXXXX")"
pids=()
cleanup() {
    if [[ -f $work/daemon.pid ]]; then
        dpid="$(cat "$work/daemon.pid")"
        grep -qa "ecs-warden" "/proc/$dpid/cmdline" 2>/dev/null && kill "$dpid" 2>/dev/null
    fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    [[ ${KEEP_WORK:-0} == 1 ]] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

"$BIN_DIR/ecs-sim" --port 0 --access-key REPROAK --secret-key REPROSK --projects 1 --servers-per-project 0 --speed "$SPEED" >"$work/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q '^projects ' "$work/sim.log" 2>/dev/null && break; sleep 0.1; done
sim_port="$(sed -n 's|^ecs-sim listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/sim.log")"
proxy_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
echo '{"hold_batch_seconds": 60}' >"$work/actions.jsonl.control"
python3 "$here/soak.py" proxy "$proxy_port" "$sim_port" "$work/actions.jsonl" >"$work/proxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$proxy_port/_sim/state" >/dev/null 2>&1 && break; sleep 0.1; done

python3 - "$sim_port" "$proxy_port" "$work" "$BIN_DIR" "$TOUCH" <<'EOF'
import datetime, json, os, socket, sqlite3, subprocess, sys, time, urllib.request
sim_port, proxy_port, work, bin_dir, touch = sys.argv[1:6]
sim = f"http://127.0.0.1:{sim_port}"
fmt = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%H:%M:%S")

def call(method, url, body=None, headers=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}"), r.headers

def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

project = call("GET", f"{sim}/_sim/state")[0]["projects"][0]["id"]
servers = [call("POST", f"{sim}/_sim/projects/{project}/servers", {"name": f"repro-{i}", "running": True,
                                                                  "tags": {"warden-schedule": "repro"}})[0]["id"] for i in range(3)]
now = time.time()
stop = (int(now // 60) + 1) * 60
if stop - now < 40:
    stop += 60
hm = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%H:%M")
control, metrics = port(), port()
open(f"{work}/token", "w").write("t" * 32); os.chmod(f"{work}/token", 0o600)
open(f"{work}/c.yaml", "w").write(f"""state_dir: {work}/state
listen: {{metrics: "127.0.0.1:{metrics}", control: "127.0.0.1:{control}", control_token: {{file: {work}/token}}}}
accounts: [{{name: k, access_key: {{env: R_AK}}, secret_key: {{env: R_SK}}}}]
regions: [{{name: eu-west-0, endpoint: "http://127.0.0.1:{proxy_port}", request_timeout: 3s}}]
projects: [{{name: p0, id: {project}, account: k, region: eu-west-0}}]
loops: {{schedule: {{interval: 10s, max_backoff: 15s}}, stuck: {{interval: 10s}}}}
schedules:
  repro:
    timezone: UTC
    periods: [{{days: every day, start: "{hm(stop - 600)}", stop: "{hm(stop)}"}}]
""")
os.makedirs(f"{work}/state", exist_ok=True)
daemon = subprocess.Popen([f"{bin_dir}/ecs-warden", "run", "--config", f"{work}/c.yaml"], env=dict(os.environ, R_AK="REPROAK", R_SK="REPROSK"),
                          stdout=open(f"{work}/daemon.log", "wb"), stderr=subprocess.STDOUT)
open(f"{work}/daemon.pid", "w").write(str(daemon.pid))
print(f"servers {servers}; stop boundary {fmt(stop)} UTC in {stop - time.time():.0f} s; batch calls held 60 s by the proxy", flush=True)
body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "sim-user", "password": "sim-password", "domain": {"name": "d"}}}},
                 "scope": {"project": {"id": project}}}}
if touch == "1":
    time.sleep(max(0, stop + 10 - time.time()))
    token = call("POST", f"{sim}/v3/auth/tokens", body)[1]["X-Subject-Token"]
    req = urllib.request.Request(f"{sim}/v1/{project}/servers/{servers[0]}/tags/action", method="POST",
                                 data=json.dumps({"action": "create", "tags": [{"key": "note", "value": "edited-by-a-person"}]}).encode(),
                                 headers={"Content-Type": "application/json", "X-Auth-Token": token})
    print(f"{fmt(time.time())} a person adds the tag note=edited-by-a-person to {servers[0][:8]}: HTTP {urllib.request.urlopen(req, timeout=10).status}", flush=True)
time.sleep(max(0, stop + 90 - time.time()))
os.remove(f"{work}/actions.jsonl.control")
print(f"{fmt(time.time())} hold lifted", flush=True)
time.sleep(max(0, stop + 150 - time.time()))
token = call("POST", f"{sim}/v3/auth/tokens", body)[1]["X-Subject-Token"]
calls = [json.loads(l) for l in open(f"{work}/actions.jsonl")]
jobs = {}
for c in calls:
    print(f"call sent {fmt(c['t0'])} answered {fmt(c['t1'])} {c['action']} {len(c['servers'])} servers token {c['token'][:8]} -> HTTP {c['status']} job {c.get('job_id')}"
          f"{' (held %gs)' % c['held'] if c.get('held') else ''}", flush=True)
    if c.get("job_id") and c["action"] == "stop":
        jobs.setdefault(c["job_id"], c)
for job_id, c in jobs.items():
    job = call("GET", f"{sim}/v1/{project}/jobs/{job_id}", headers={"X-Auth-Token": token})[0]
    subs = {s["entities"]["server_id"][:8]: (s["status"], s.get("error_code")) for s in job["entities"]["sub_jobs"]}
    print(f"stop job {job_id} (token {c['token'][:8]}): {job['status']} {subs}", flush=True)
db = sqlite3.connect(f"file:{work}/state/state.sqlite?mode=ro", uri=True)
for row in db.execute("SELECT seq, kind, action, substr(client_token,1,8), job_id, result, message, intent_seq FROM journal WHERE loop='schedule' ORDER BY seq"):
    print(f"journal: {row}", flush=True)
twice = [s for s in servers if sum(1 for c in jobs.values() if s in c["servers"]) > 1]
print(("REPRODUCED: " + f"{len(twice)} servers in {len(jobs)} distinct stop jobs of the {fmt(stop)} boundary") if twice else "NOT REPRODUCED", flush=True)
daemon.terminate(); daemon.wait(timeout=20)
sys.exit(1 if twice else 0)
EOF
