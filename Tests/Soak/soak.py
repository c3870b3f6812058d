#!/usr/bin/env python3
"""Fault-injection soak test of ecs-warden against ecs-sim (standard library only).

Run it through Tests/Soak/soak.sh, which finds the binaries, bounds the run and cleans up.
`python3 soak.py proxy LISTEN_PORT UPSTREAM_PORT RECORD_FILE` is the recording proxy the soak puts
between the daemon and the simulator (internal).

What it does (details in soak.sh):
  * ecs-sim with a few projects x a few hundred servers, a share tagged with three schedules;
  * a recording proxy between the daemon and the simulator: it forwards every byte unchanged and
    writes down each batch power action (body, X-Client-Token, status, job_id), because the
    simulator's request log has no bodies; in the hostile phase only, it mangles a share of the
    GET answers (wrong types, missing keys, repeated pages, dripped bodies, Retry-After: 1e300),
    never a batch action;
  * `ecs-warden run` with a generated configuration: schedules whose boundaries fall every minute
    (each schedule: start, then stop 2 minutes later, every 4 minutes, in the local time zone),
    short loop intervals, two accounts (AK/SK and IAM password);
  * faults in phases, each followed by a bounded wait for every loop to pass again (the recovery
    time): 5xx bursts, 429 and 202 throttling, latency below and above the request timeout,
    dropped connections, a hostile endpoint, a second instance on the same state directory,
    late delivery, sub-jobs failing with Ecs.0603 for part of a batch (a
    boundary inside; the daemon must retry them after the code's wait), wrong credentials, IAM
    token revocation, SIGHUP with an invalid file, a
    long API outage (10 minutes at SOAK_MINUTES>=15), and kill -9 of the daemon 0-500 ms after a
    BatchStopServers/BatchStartServers appears in the simulator's request log (and at random);
  * at the end: actions requested vs performed, servers stopped (or started) twice, intents without
    an outcome, recovery times, RSS at equivalent idle points, and `soak: N passed, N failed`.
"""

import collections
import datetime
import http.client
import json
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOPS = ["flavors", "maintenance", "quota", "schedule", "stuck"]
SCHEDULES = ["office-hours", "weeknights", "lab"]  # the names ecs-sim's fleet generator tags with
ACTIONS = ("BatchStopServers", "BatchStartServers")
BATCH_PATH = re.compile(r"^/v1/[^/]+/cloudservers/action$")


def is_batch(record):
    """A batch power action in the simulator's request log. Calls refused before routing (injected
    5xx, throttling, outage, bad credentials) carry no operation name, so the path counts too."""
    return record.get("operation") in ACTIONS or (record.get("method") == "POST" and bool(BATCH_PATH.match(record.get("path", ""))))


def batch_label(record):
    return record.get("operation") or "BatchServerAction"


# ============================================================================ recording proxy

# GET answers the hostile phase may mangle: server listings, jobs, limits, flavors (never a POST,
# never a batch action: the double-action accounting reads their answers).
HOSTILE_PATH = re.compile(r"^/v1/[^/]+/(cloudservers/detail|jobs/[^/?]+|cloudservers/limits|cloudservers/flavors)(\?.*)?$|"
                          r"^/v2\.1/[^/]+/(servers/detail|servers|flavors/detail|flavors|limits)(\?.*)?$")
HOSTILE_KINDS = ("repeated-page", "wrong-type", "missing-key", "dripped-body", "retry-after-1e300")


def hostile_kinds(path):
    listing = "/cloudservers/detail" in path or re.search(r"/servers(/detail)?(\?|$)", path)
    return [k for k in HOSTILE_KINDS if k != "repeated-page" or listing]


def mangle(kind, path, status, reason, headers, data, control):
    """(status, reason, headers, body, drip seconds or None) of a mangled answer of the simulator."""
    base = path.split("?")[0]
    if kind == "dripped-body":
        return status, reason, headers, data, float(control.get("drip_seconds", 7))
    if kind == "retry-after-1e300":
        headers = [(n, v) for n, v in headers if n.lower() not in ("retry-after", "content-type")]
        headers += [("Content-Type", "application/json"), ("Retry-After", "1e300")]
        if random.random() < 0.5:
            body = {"error_code": "APIGW.0308", "error_msg": "The throttling threshold has been reached: policy user over ratelimit"}
            return 429, "Too Many Requests", headers, json.dumps(body).encode(), None
        body = {"error": {"code": "Ecs.0000", "message": "Service unavailable, try again later"}}
        return 503, "Service Unavailable", headers, json.dumps(body).encode(), None
    try:
        doc = json.loads(data or b"{}")
    except ValueError:
        return status, reason, headers, data, None
    if not isinstance(doc, dict):
        return status, reason, headers, data, None
    listing = next((k for k in ("servers", "flavors") if isinstance(doc.get(k), list)), None)
    if kind == "wrong-type":
        if listing == "servers" and doc["servers"]:
            victim = random.choice(doc["servers"])
            victim["status"] = 5
            victim["tags"] = "x"
        elif listing == "flavors" and doc["flavors"]:
            victim = random.choice(doc["flavors"])
            victim["vcpus"] = {"n": 2}
            victim["ram"] = "lots"
        elif "/jobs/" in base:
            doc["status"] = 5
            if isinstance(doc.get("entities"), dict):
                doc["entities"]["sub_jobs"] = "x"
        elif isinstance(doc.get("absolute"), dict):
            doc["absolute"] = {k: "many" for k in doc["absolute"]}
        elif listing:
            doc[listing] = "x"
        else:
            for key in list(doc)[:1]:
                doc[key] = 5
    elif kind == "missing-key":
        if listing:
            del doc[listing]
        elif "/jobs/" in base:
            doc.pop("status", None)
        elif "absolute" in doc:
            del doc["absolute"]
        else:
            for key in list(doc)[:1]:
                del doc[key]
    elif kind == "repeated-page" and isinstance(doc.get("servers"), list):
        # a next link back to the same marker (or page), and a count (v1) that asks for one more page
        marker = re.search(r"[?&]marker=([^&]+)", path)
        last = doc["servers"][-1].get("id") if doc["servers"] and isinstance(doc["servers"][-1], dict) else None
        href = "http://127.0.0.1" + base + "?limit=1000" + (f"&marker={marker.group(1) if marker else last}" if (marker or last) else "")
        doc["servers_links"] = [{"rel": "next", "href": href}]
        if isinstance(doc.get("count"), int) and not re.search(r"[?&]offset=([2-9]|\d\d)", path):
            doc["count"] += len(doc["servers"])
    return status, reason, headers, json.dumps(doc).encode(), None


def run_proxy(listen_port, upstream_port, record_path):
    """Forwards every request to the simulator unchanged (same path, headers and body, so AK/SK
    signatures stay valid) and records batch power actions; while the control file holds
    "hostile", mangles a share of the GET answers (see HOSTILE_PATH, mangle) and records each in
    RECORD_FILE.mangled. A dropped upstream connection is
    passed on as a reset of the client's connection."""
    record_lock = threading.Lock()
    record_file = open(record_path, "a", buffering=1)
    mangled_file = open(record_path + ".mangled", "a", buffering=1)
    pages = {}  # listing path -> the last first page served (for repeated pages)
    turns = collections.Counter()  # mangled answers so far, per number of kinds that apply
    rng = random.Random()
    hop = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length", "upgrade", "te", "trailer"}
    action_path = re.compile(r"^/v1/([^/]+)/cloudservers/action(\?.*)?$")

    def record(entry):
        with record_lock:
            record_file.write(json.dumps(entry, sort_keys=True) + "\n")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks), True
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            return body, len(body) == length

        def _reset(self):
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.close_connection = True

        def _forward(self):
            t0 = time.time()
            body, complete = self._read_body()
            if not complete:
                self.close_connection = True
                return
            match = action_path.match(self.path) if self.command == "POST" else None
            entry = None
            if match:
                entry = {"t0": t0, "project_id": match.group(1), "token": self.headers.get("X-Client-Token"), "action": None, "servers": []}
                try:
                    with open(record_path + ".control") as f:
                        hold = float(json.load(f).get("hold_batch_seconds", 0))
                except (OSError, ValueError):
                    hold = 0.0
                if hold > 0:
                    # late delivery: the call reaches the API only after the client has given up on it
                    entry["held"] = hold
                    time.sleep(hold)
                try:
                    parsed = json.loads(body or b"{}")
                    for key in ("os-stop", "os-start", "reboot"):
                        if key in parsed:
                            entry["action"] = {"os-stop": "stop", "os-start": "start", "reboot": "reboot"}[key]
                            entry["servers"] = [s.get("id") for s in parsed[key].get("servers", [])]
                except (ValueError, AttributeError):
                    entry["action"] = "unparsable"
            hostile = None
            if match is None and self.command == "GET" and HOSTILE_PATH.match(self.path):
                try:
                    with open(record_path + ".control") as f:
                        hostile = json.load(f).get("hostile")
                except (OSError, ValueError):
                    hostile = None
            kind = None
            if hostile and rng.random() < float(hostile.get("rate", 0)):
                # the kinds in turn (per class of answer, listings first get a repeated page), so
                # that every kind is sent in a short phase
                kinds = [k for k in hostile_kinds(self.path) if k in hostile.get("kinds", HOSTILE_KINDS)] or [None]
                with record_lock:
                    n = turns[len(kinds)]
                    turns[len(kinds)] += 1
                kind = kinds[n % len(kinds)]
            conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=900)
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in hop:
                        conn.putheader(name, value)
                if body or self.command in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body if body else None)
                response = conn.getresponse()
                data = response.read()
            except Exception as error:  # the simulator dropped the connection: drop ours too
                if entry is not None:
                    entry.update(t1=time.time(), status=0, error=type(error).__name__)
                    record(entry)
                self._reset()
                return
            finally:
                conn.close()
            if entry is not None:
                entry.update(t1=time.time(), status=response.status)
                try:
                    entry["job_id"] = json.loads(data or b"{}").get("job_id")
                    entry["error_code"] = json.loads(data or b"{}").get("error", {}).get("code") if entry["job_id"] is None else None
                except (ValueError, AttributeError):
                    entry["job_id"] = None
                record(entry)
            status, reason, headers = response.status, response.reason, response.getheaders()
            drip = None
            base = self.path.split("?")[0]
            first_page = self.command == "GET" and status == 200 and "servers" in base and HOSTILE_PATH.match(self.path) and not re.search(r"[?&](marker=|offset=([2-9]|\d\d))", self.path)
            if kind == "repeated-page" and status == 200 and not first_page and base in pages:
                # a page already served: after marker X (or page N), the last first page again
                # (the request itself went upstream unchanged: its signature covers the query)
                data = pages[base]
            elif first_page:
                pages[base] = data
            if kind is not None and status == 200:
                status, reason, headers, data, drip = mangle(kind, self.path, status, reason, headers, data, hostile)
                with record_lock:
                    mangled_file.write(json.dumps({"t": time.time(), "kind": kind, "path": self.path.split("?")[0]}) + "\n")
            try:
                self.send_response_only(status, reason)
                for name, value in headers:
                    if name.lower() not in hop:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if drip is not None:
                    # headers at once, then one byte every 100 ms for `drip` seconds, then the
                    # connection is closed with the body unfinished (longer than request_timeout)
                    self.wfile.flush()
                    until = time.time() + drip
                    for i in range(len(data)):
                        if time.time() >= until:
                            break
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        time.sleep(0.1)
                    self.close_connection = True
                    return
                if self.command != "HEAD":
                    self.wfile.write(data)
                self.wfile.flush()
            except OSError:
                self.close_connection = True  # the client gave up (timeout, kill -9)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 128

    server = Server(("127.0.0.1", listen_port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"proxy listening on 127.0.0.1:{listen_port} -> 127.0.0.1:{upstream_port}", flush=True)
    server.serve_forever(poll_interval=0.2)


# ============================================================================ helpers

T0 = time.time()
LOG_FILE = None
PRINT_LOCK = threading.Lock()


def say(message):
    line = f"[{time.time() - T0:7.1f}s] {message}"
    with PRINT_LOCK:
        print(line, flush=True)
        if LOG_FILE:
            LOG_FILE.write(line + "\n")
            LOG_FILE.flush()


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(text):
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(text).timestamp()


def request(method, url, body=None, headers=None, timeout=5.0):
    """(status, headers, bytes); status 0 on a connection failure."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        data = None
        all_headers = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        conn.request(method, parts.path + (("?" + parts.query) if parts.query else ""), body=data, headers=all_headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    except (OSError, http.client.HTTPException):
        return 0, {}, b""
    finally:
        conn.close()


def get_json(url, timeout=5.0, headers=None):
    status, _, data = request("GET", url, headers=headers, timeout=timeout)
    if status != 200:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def free_port(taken):
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in taken:
            taken.add(port)
            return port


def local_zone():
    if os.environ.get("TZ", "").strip(":") and "/" in os.environ["TZ"]:
        return os.environ["TZ"].strip(":")
    try:
        target = os.path.realpath("/etc/localtime")
        if "/zoneinfo/" in target:
            return target.split("/zoneinfo/", 1)[1]
    except OSError:
        pass
    try:
        with open("/etc/timezone") as f:
            return f.read().strip() or "UTC"
    except OSError:
        return "UTC"


def env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return float(default)


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.lock = threading.Lock()

    def check(self, ok, text):
        with self.lock:
            if ok:
                self.passed += 1
                say(f"PASS: {text}")
            else:
                self.failed += 1
                self.failures.append(text)
                say(f"FAIL: {text}")
        return ok


# ============================================================================ the soak

class Soak:
    def __init__(self, work, bin_dir, script):
        self.work = work
        self.bin_dir = bin_dir
        self.script = script
        self.warden = os.path.join(bin_dir, "ecs-warden")
        self.sim_bin = os.path.join(bin_dir, "ecs-sim")
        self.minutes = env_float("SOAK_MINUTES", 15)
        self.scale = self.minutes / 15.0
        self.fs = min(1.0, self.scale)
        self.seed = int(os.environ.get("SOAK_SEED", str(int(time.time()) % 100000)))
        self.rng = random.Random(self.seed)
        self.projects_n = int(os.environ.get("SOAK_PROJECTS", "3"))
        self.servers_n = int(os.environ.get("SOAK_SERVERS", "300"))
        self.speed = env_float("SOAK_SIM_SPEED", 240)
        self.recovery_limit = env_float("SOAK_RECOVERY_LIMIT", 120)
        self.request_timeout = 3.0
        self.schedule_interval = 10.0  # the schedule loop's interval in the generated configuration
        self.boundary_grace = 3600.0  # auto_stop.boundary_grace in the generated configuration (1h)
        self.subjob = None  # the sub-job failure phase's servers and figures
        self.checks = Checks()
        self.lock = threading.RLock()
        self.stop_flag = threading.Event()
        self.ports = set()
        self.procs = {}
        self.gens = []  # daemon generations
        self.daemon_proc = None
        self.daemon_lock = threading.RLock()
        self.creds_good = True
        self.expect_exit = False
        self.unexpected_exits = []
        self.sim_records = []
        self.sim_next = 0
        self.loop_snaps = []  # (t, pid, {loop: {...}})
        self.rss = []  # (t, pid, kB)
        self.notify = []  # (t, pid, text)
        self.phases = []
        self.kills = []
        self.kill_armed = False
        self.random_kills_armed = False
        self.kills_per_minute = collections.Counter()
        self.pending_kill = False
        self.random_kill_times = []
        self.person_starts = []  # (t, project_id, server_id, schedule)
        self.sighups = []  # (t, pid, valid)
        self.revokes = []
        self.memory = {}
        self.deadline = T0 + self.minutes * 60 * 1.7 + 900

    # ------------------------------------------------------------------ processes
    def spawn(self, name, argv, env=None, log_name=None):
        logf = open(os.path.join(self.work, log_name or f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=self.work)
        logf.close()
        with open(os.path.join(self.work, "pids"), "a") as f:
            f.write(f"{proc.pid}\n")
        self.procs[name] = proc
        return proc

    def wait_binary(self, path, seconds=900):
        deadline = time.time() + seconds
        warned = False
        while time.time() < deadline:
            if os.path.isfile(path) and os.access(path, os.X_OK):
                # someone may be writing it: wait until its size is stable
                size = os.path.getsize(path)
                time.sleep(0.5)
                if os.path.isfile(path) and os.path.getsize(path) == size:
                    return True
            if not warned:
                say(f"waiting for {path} (being rebuilt?)")
                warned = True
            time.sleep(5)
        return False

    def start_sim(self):
        if not self.wait_binary(self.sim_bin):
            raise RuntimeError(f"{self.sim_bin} missing")
        self.ak = f"SOAKAK{self.rng.randrange(10**8):08d}"
        self.sk = f"soak-sk-{self.rng.randrange(10**12):012d}"
        self.iam_password = f"soak-iam-{self.rng.randrange(10**8):08d}"
        first = "%032x" % self.rng.getrandbits(128)
        argv = [self.sim_bin, "--port", "0", "--access-key", self.ak, "--secret-key", self.sk, "--iam-user", "soak-robot",
                "--iam-password", self.iam_password, "--project-id", first, "--projects", str(self.projects_n),
                "--servers-per-project", str(self.servers_n), "--scheduled-share", "0.3", "--speed", str(self.speed),
                "--seed", str(self.seed)]
        self.spawn("sim", argv)
        log = os.path.join(self.work, "sim.log")
        deadline = time.time() + 60
        while time.time() < deadline:
            text = open(log).read()
            m = re.search(r"ecs-sim listening on http://127\.0\.0\.1:(\d+)", text)
            if m and "\nservers " in text:
                self.sim_port = int(m.group(1))
                self.sim_url = f"http://127.0.0.1:{self.sim_port}"
                break
            if self.procs["sim"].poll() is not None:
                raise RuntimeError("ecs-sim exited: " + text[-500:])
            time.sleep(0.2)
        else:
            raise RuntimeError("ecs-sim did not start")
        state = get_json(self.sim_url + "/_sim/state")
        self.project_ids = [p["id"] for p in state["projects"]]
        # keep the configured order: the first is the one we gave
        self.project_ids.sort(key=lambda p: (p != first, p))
        self.project_names = {pid: f"p{i}" for i, pid in enumerate(self.project_ids)}
        self.ports.add(self.sim_port)
        say(f"ecs-sim on {self.sim_url}: {state['servers']} servers in {len(self.project_ids)} projects, speed {self.speed}x, seed {self.seed}")

    def start_proxy(self):
        self.proxy_port = free_port(self.ports)
        self.proxy_records = os.path.join(self.work, "proxy-actions.jsonl")
        self.spawn("proxy", [sys.executable, self.script, "proxy", str(self.proxy_port), str(self.sim_port), self.proxy_records])
        deadline = time.time() + 15
        while time.time() < deadline:
            if request("GET", f"http://127.0.0.1:{self.proxy_port}/_sim/state")[0] == 200:
                say(f"recording proxy on 127.0.0.1:{self.proxy_port} (the daemon's endpoint)")
                return
            time.sleep(0.2)
        raise RuntimeError("the proxy did not start")

    def sim_faults(self, faults):
        status, _, data = request("PUT", self.sim_url + "/_sim/faults", body=faults)
        if status != 200:
            say(f"warning: PUT /_sim/faults -> {status} {data[:200]!r}")

    # ------------------------------------------------------------------ configuration
    def write_config(self, valid=True):
        zone = local_zone()
        self.zone = zone
        try:
            from zoneinfo import ZoneInfo
            tz = ZoneInfo(zone)
        except Exception:
            self.zone, tz = "UTC", datetime.timezone.utc
        if not hasattr(self, "boundaries"):
            horizon = int(min(22 * 60, self.minutes * 1.7 + 45))
            base = datetime.datetime.fromtimestamp(T0, tz).replace(second=0, microsecond=0)
            self.periods = {}
            self.boundaries = {}  # schedule -> [(epoch, action)]
            for offset, name in enumerate(SCHEDULES):
                periods, marks = [], []
                for k in range(-4, horizon // 4 + 2):
                    start = base + datetime.timedelta(minutes=offset + 4 * k)
                    stop = start + datetime.timedelta(minutes=2)
                    periods.append((start.strftime("%H:%M"), stop.strftime("%H:%M")))
                    marks += [(start.timestamp(), "start"), (stop.timestamp(), "stop")]
                self.periods[name] = periods
                self.boundaries[name] = sorted(marks)
        lines = [
            f"# generated by Tests/Soak/soak.py at {datetime.datetime.now().isoformat()}",
            f"state_dir: {self.work}/state",
            "dry_run: false",
            "listen:",
            f'  metrics: "127.0.0.1:{self.metrics_port}"',
            f'  control: "127.0.0.1:{self.control_port}"',
            f"  control_token: {{file: {self.work}/control-token}}",
            "accounts:",
            "  - {name: keys, access_key: {env: SOAK_AK}, secret_key: {env: SOAK_SK}}",
            "  - name: robot",
            f'    iam: {{endpoint: "http://127.0.0.1:{self.proxy_port}", user: soak-robot, domain: soak, password: {{file: {self.work}/iam-password}}}}',
            "regions:",
            "  - name: eu-west-0",
            f'    endpoint: "http://127.0.0.1:{self.proxy_port}"',
            f"    request_timeout: {int(self.request_timeout)}s",
            "    rate_limit: {requests_per_second: 50, burst: 100}",
            "projects:",
        ]
        for i, pid in enumerate(self.project_ids):
            account = "robot" if i == len(self.project_ids) - 1 and len(self.project_ids) > 1 else "keys"
            lines.append(f"  - {{name: p{i}, id: {pid}, account: {account}, region: eu-west-0}}")
        lines += [
            "loops:",
            "  quota: {interval: 5s, max_backoff: 15s}",
            "  stuck: {interval: 5s, max_backoff: 15s}",
            f"  schedule: {{interval: {int(self.schedule_interval)}s, max_backoff: 15s}}",
            "  flavors: {interval: 10s, max_backoff: 15s}",
            "  maintenance: {interval: 10s, max_backoff: 15s}",
            "stuck: {job_deadline: 10m}",
            f"auto_stop: {{max_stops_per_pass: 1000, max_starts_per_pass: 1000, batch_size: 1000, boundary_grace: {int(self.boundary_grace)}s}}",
            "schedules:",
        ]
        for name in SCHEDULES:
            lines += [f"  {name}:", f"    timezone: {self.zone}", "    manual_actions: boundaries-only", "    periods:"]
            for start, stop in self.periods[name]:
                lines.append(f'      - {{days: every day, start: "{start}", stop: "{stop}"}}')
        lines += ["log: {format: text, level: info}"]
        if not valid:
            # two problems the loader must reject: an unknown key and a bad duration
            lines.insert(3, "bogus_key: true")
            lines = [l.replace("quota: {interval: 5s", "quota: {interval: fives") for l in lines]
        text = "\n".join(lines) + "\n"
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)

    def write_secret(self, path, value):
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    # ------------------------------------------------------------------ notify socket
    def start_notify(self):
        self.notify_path = os.path.join(self.work, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(self.notify_path)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.settimeout(0.5)
        self.notify_sock = sock

        def run():
            while not self.stop_flag.is_set():
                try:
                    data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
                except socket.timeout:
                    continue
                except OSError:
                    return
                pid = None
                for level, kind, payload in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= 12:
                        pid = struct.unpack("iII", payload[:12])[0]
                with self.lock:
                    self.notify.append((time.time(), pid, data.decode(errors="replace")))

        threading.Thread(target=run, daemon=True, name="notify").start()

    # ------------------------------------------------------------------ the daemon
    @property
    def gen(self):
        return self.gens[-1] if self.gens else None

    def daemon_env(self):
        env = dict(os.environ)
        env["SOAK_AK"] = self.ak
        env["SOAK_SK"] = self.sk if self.creds_good else self.sk[::-1] + "x"
        env["NOTIFY_SOCKET"] = self.notify_path
        env["WATCHDOG_USEC"] = "20000000"
        env.pop("CREDENTIALS_DIRECTORY", None)
        return env

    def start_daemon(self, why):
        with self.daemon_lock:
            if not self.wait_binary(self.warden):
                raise RuntimeError(f"{self.warden} missing")
            self.write_secret(os.path.join(self.work, "iam-password"), self.iam_password if self.creds_good else "wrong-" + self.iam_password)
            number = len(self.gens) + 1
            with open(os.path.join(self.work, "daemon.log"), "ab") as f:
                f.write(f"===== generation {number} ({why}) at {iso(time.time())} =====\n".encode())
            proc = self.spawn("daemon", [self.warden, "run", "--config", self.config_path], env=self.daemon_env(), log_name="daemon.log")
            self.daemon_proc = proc
            self.expect_exit = False
            gen = {"n": number, "pid": proc.pid, "start": time.time(), "why": why, "creds_good": self.creds_good,
                   "end": None, "end_reason": None, "rc": None, "ready": None}
            self.gens.append(gen)
        deadline = time.time() + 30
        while time.time() < deadline:
            if proc.poll() is not None:
                break
            if request("GET", f"{self.control}/v1/status", timeout=1)[0] == 200:
                gen["ready"] = time.time()
                return gen
            time.sleep(0.1)
        self.checks.check(False, f"daemon generation {number} ({why}) answered /v1/status within 30 s (rc={proc.poll()})")
        return gen

    def _ended(self, gen, reason):
        proc = self.daemon_proc
        gen["end"] = time.time()
        gen["end_reason"] = reason
        gen["rc"] = proc.returncode

    def kill9(self, reason, detail=None, restart=True):
        with self.daemon_lock:
            proc, gen = self.daemon_proc, self.gen
            if proc is None or proc.poll() is not None:
                return None
            self.expect_exit = True
            t = time.time()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            self._ended(gen, "kill -9")
            kill = {"t": t, "reason": reason, "gen": gen["n"], "pid": proc.pid, "detail": detail or {},
                    "open_intents": self.open_intents_now()}
            with self.lock:
                self.kills.append(kill)
            what = f" {detail['operation']} {detail.get('project', '')} status {detail['status']} +{detail['delay_ms']:.0f} ms" if detail else ""
            say(f"kill -9 #{len(self.kills)} ({reason}{what}) generation {gen['n']}; open intents left: {len(kill['open_intents'])}")
            if restart:
                time.sleep(self.rng.uniform(0.1, 0.8))
                self.start_daemon(f"restart after kill -9 #{len(self.kills)}")
            return kill

    def term_daemon(self, why):
        with self.daemon_lock:
            proc, gen = self.daemon_proc, self.gen
            if proc is None or proc.poll() is not None:
                return None
            self.expect_exit = True
            t = time.time()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self._ended(gen, f"SIGTERM ({why})")
            return {"rc": proc.returncode, "seconds": time.time() - t}

    def sighup(self, valid):
        with self.daemon_lock:
            proc = self.daemon_proc
            before = self.reload_counts()
            self.write_config(valid=valid)
            t = time.time()
            os.kill(proc.pid, signal.SIGHUP)
            after = before
            deadline = time.time() + 15
            key = "applied" if valid else "rejected"
            while time.time() < deadline:
                after = self.reload_counts()
                if after and before and after.get(key, 0) > before.get(key, 0):
                    break
                time.sleep(0.2)
            if not valid:
                self.write_config(valid=True)
            alive = proc.poll() is None and request("GET", f"{self.control}/v1/status", timeout=2)[0] == 200
            with self.lock:
                self.sighups.append({"t": t, "pid": proc.pid, "valid": valid, "before": before, "after": after, "alive": alive})
            say(f"SIGHUP with {'a valid' if valid else 'an INVALID'} configuration: reloads {before} -> {after}; daemon alive: {alive}")
            return before, after, alive

    def reload_counts(self):
        status, _, data = request("GET", f"{self.metrics}/metrics", timeout=3)
        if status != 200:
            return None
        counts = {}
        for m in re.finditer(r'^ecs_warden_config_reloads_total\{result="(\w+)"\} ([0-9.e+]+)', data.decode(), re.M):
            counts[m.group(1)] = float(m.group(2))
        return counts

    def watch_daemon(self):
        while not self.stop_flag.is_set():
            time.sleep(0.2)
            with self.daemon_lock:
                proc, gen = self.daemon_proc, self.gen
                if proc is None or proc.poll() is None or self.expect_exit:
                    continue
                self._ended(gen, "exited by itself")
                self.expect_exit = True
            tail = open(os.path.join(self.work, "daemon.log"), "rb").read()[-1500:].decode(errors="replace")
            with self.lock:
                self.unexpected_exits.append({"t": time.time(), "gen": gen["n"], "rc": proc.returncode, "tail": tail})
            say(f"the daemon (generation {gen['n']}) EXITED BY ITSELF with status {proc.returncode}; restarting it")
            if not self.stop_flag.is_set():
                time.sleep(1)
                self.start_daemon("restart after an unexpected exit")

    def open_intents_now(self):
        try:
            db = sqlite3.connect(f"file:{self.work}/state/state.sqlite?mode=ro", uri=True, timeout=5)
            rows = db.execute(
                "SELECT seq, project, subject, action, client_token, json_array_length(servers) FROM journal i WHERE i.kind='intent' "
                "AND NOT EXISTS (SELECT 1 FROM journal o WHERE o.kind='outcome' AND o.intent_seq=i.seq)").fetchall()
            db.close()
            return [{"seq": r[0], "project": r[1], "schedule": r[2], "action": r[3], "token": r[4], "servers": r[5]} for r in rows]
        except sqlite3.Error as error:
            return [{"error": str(error)}]

    # ------------------------------------------------------------------ watchers
    def watch_sim_log(self):
        while not self.stop_flag.is_set():
            data = get_json(f"{self.sim_url}/_sim/requests?since={self.sim_next}", timeout=5)
            if data is None:
                time.sleep(0.2)
                continue
            records = data.get("requests", [])
            self.sim_next = data.get("next", self.sim_next + len(records))
            if records:
                with self.lock:
                    self.sim_records.extend(records)
                for record in records:
                    if is_batch(record):
                        self.on_batch_record(record)
            time.sleep(0.05)

    def on_batch_record(self, record):
        gen = self.gen
        if not self.kill_armed or gen is None or self.pending_kill:
            return
        if record["time"] < (gen.get("ready") or gen["start"]) + 0.2:
            return  # sent by an earlier generation
        minute = int(record["time"] // 60)
        if self.kills_per_minute[minute] >= 3:
            return
        self.kills_per_minute[minute] += 1
        self.pending_kill = True
        delay = self.rng.uniform(0.0, 0.5)

        def fire():
            try:
                time.sleep(max(0.0, record["time"] + delay - time.time()))
                if self.kill_armed and self.gen is gen:
                    detail = {"operation": batch_label(record), "status": record["status"],
                              "project": self.project_names.get(record.get("project_id") or record.get("path", "/v1/?").split("/")[2], "?"),
                              "record_time": record["time"], "delay_ms": (time.time() - record["time"]) * 1000}
                    self.kill9("batch", detail)
            finally:
                self.pending_kill = False

        threading.Thread(target=fire, daemon=True).start()

    def watch_random_kills(self):
        while not self.stop_flag.is_set():
            time.sleep(0.2)
            with self.lock:
                due = [t for t in self.random_kill_times if t <= time.time()]
                self.random_kill_times = [t for t in self.random_kill_times if t > time.time()]
            if due and self.random_kills_armed and not self.pending_kill:
                self.kill9("random moment")

    def watch_loops(self):
        while not self.stop_flag.is_set():
            gen = self.gen
            data = get_json(f"{self.control}/v1/loops", timeout=2) if gen else None
            t = time.time()
            if isinstance(data, list):
                snap = {loop["name"]: loop for loop in data}
                with self.lock:
                    self.loop_snaps.append((t, gen["pid"], snap))
            if gen and gen["end"] is None:
                try:
                    with open(f"/proc/{gen['pid']}/status") as f:
                        m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
                    if m:
                        idle = isinstance(data, list) and not any(l.get("running") for l in data)
                        with self.lock:
                            self.rss.append((t, gen["pid"], int(m.group(1)), idle))
                except OSError:
                    pass
            time.sleep(1.0)

    # ------------------------------------------------------------------ recovery
    def successes_after(self, since):
        """loop -> end time of the first successful pass seen finishing after `since`. A pass counts
        when it is newer than the one the last poll before `since` saw (another process, or a higher
        `passes` count) and its end (`lastFinished`, whole seconds) may lie after `since`."""
        first = {}
        with self.lock:
            before = [s for s in self.loop_snaps if s[0] < since]
            after = [s for s in self.loop_snaps if s[0] >= since]
        baseline = {}
        if before:
            t, pid, snap = before[-1]
            for name, loop in snap.items():
                baseline[name] = (pid, loop.get("passes", 0))
        for t, pid, snap in after:
            for name in LOOPS:
                if name in first or name not in snap:
                    continue
                loop = snap[name]
                finished = parse_iso(loop.get("lastFinished"))
                if loop.get("lastResult") != "success" or finished is None or finished + 1 <= since:
                    continue
                old = baseline.get(name)
                if old is None or old[0] != pid or loop.get("passes", 0) > old[1]:
                    first[name] = max(since, finished + 0.5)
        return first

    def wait_recovery(self, since, label, limit=None):
        limit = self.recovery_limit if limit is None else limit
        deadline = since + limit
        while time.time() < deadline and not self.stop_flag.is_set():
            first = self.successes_after(since)
            if all(name in first for name in LOOPS):
                seconds = max(first.values()) - since
                return seconds, first
            time.sleep(0.5)
        return None, self.successes_after(since)

    def run_phase(self, name, faults=None, seconds=10.0, action=None, check_recovery=True, kind="fault"):
        start = time.time()
        say(f"phase {name}: {json.dumps(faults) if faults else ''} for {seconds:.0f} s")
        if faults:
            self.sim_faults(faults)
        if action:
            action()
        self.sleep(seconds)
        if faults:
            self.sim_faults({})
        end = time.time()
        phase = {"name": name, "kind": kind, "start": start, "end": end, "faults": faults}
        with self.lock:
            self.phases.append(phase)
        if check_recovery:
            self.record_recovery(phase, "after the fault ended")
        return phase

    def record_recovery(self, phase, since_what, label=None):
        """Waits for every loop to pass again after phase["end"], records it in the phase and says it."""
        end = phase["end"]
        recovered, first = self.wait_recovery(end, phase["name"])
        phase["recovery"], phase["recovery_loops"] = recovered, {k: v - end for k, v in first.items()}
        label = label or phase["name"]
        if recovered is None:
            missing = [l for l in LOOPS if l not in first]
            say(f"  -> {label}: NOT recovered within {self.recovery_limit:.0f} s (no successful pass of {', '.join(missing)})")
        else:
            say(f"  -> {label}: every loop passed again {recovered:.1f} s {since_what}")

    def sleep(self, seconds):
        end = time.time() + seconds
        while time.time() < end and not self.stop_flag.is_set():
            if time.time() > self.deadline:
                raise RuntimeError("the soak ran past its time bound")
            time.sleep(min(0.25, max(0.0, end - time.time())))

    # ------------------------------------------------------------------ IAM tokens and sim reads (directly, not via the proxy)
    def sim_token(self, pid):
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "soak-robot", "password": self.iam_password,
                                                                                       "domain": {"name": "soak"}}}},
                         "scope": {"project": {"id": pid}}}}
        status, headers, _ = request("POST", self.sim_url + "/v3/auth/tokens", body=body)
        return headers.get("X-Subject-Token") if status == 201 else None

    def list_servers(self, pid, token):
        data = get_json(f"{self.sim_url}/v1/{pid}/cloudservers/detail?limit=1000", headers={"X-Auth-Token": token}, timeout=20)
        return data.get("servers", []) if data else None

    def person_start(self):
        """A person starts two stopped servers of a schedule whose last boundary was a stop."""
        pid = self.project_ids[0]
        now = time.time()
        for name in SCHEDULES:
            last = [b for b in self.boundaries[name] if b[0] <= now]
            nxt = [b for b in self.boundaries[name] if b[0] > now]
            if not last or last[-1][1] != "stop" or now - last[-1][0] < 8 or not nxt or nxt[0][0] - now < 15:
                continue
            token = self.sim_token(pid)
            servers = self.list_servers(pid, token) or []
            chosen = [s for s in servers if f"warden-schedule={name}" in s.get("tags", []) and s["status"] == "SHUTOFF"
                      and not s.get("OS-EXT-STS:task_state")][:2]
            for s in chosen:
                status, _, data = request("POST", f"{self.sim_url}/v2.1/{pid}/servers/{s['id']}/action", body={"os-start": None},
                                          headers={"X-Auth-Token": token})
                if status == 202:
                    with self.lock:
                        self.person_starts.append({"t": time.time(), "project_id": pid, "server": s["id"], "schedule": name})
                else:
                    say(f"person start of {s['id']} -> {status} {data[:200]!r}")
            if chosen:
                say(f"a person started {len(chosen)} servers of {name} in p0 by hand after its stop boundary")
                return True
        return False

    # ------------------------------------------------------------------ the run
    def run(self):
        global LOG_FILE
        LOG_FILE = open(os.path.join(self.work, "soak.log"), "a")
        say(f"soak: SOAK_MINUTES={self.minutes:g} (scale {self.scale:.2f}), work directory {self.work}, seed {self.seed}")
        self.start_sim()
        self.start_proxy()
        self.metrics_port = free_port(self.ports)
        self.control_port = free_port(self.ports)
        self.metrics = f"http://127.0.0.1:{self.metrics_port}"
        self.control = f"http://127.0.0.1:{self.control_port}"
        os.makedirs(os.path.join(self.work, "state"), exist_ok=True)
        self.write_secret(os.path.join(self.work, "control-token"), "%040x" % self.rng.getrandbits(160))
        self.config_path = os.path.join(self.work, "ecs-warden.yaml")
        self.write_config()
        self.start_notify()
        env = self.daemon_env()
        out = subprocess.run([self.warden, "check-config", self.config_path], capture_output=True, text=True, env=env, timeout=60)
        self.checks.check(out.returncode == 0, f"check-config accepts the generated configuration ({out.stdout.strip() or out.stderr.strip()[:300]})")
        say(f"schedules in {self.zone}: each starts every 4 min and stops 2 min after (offsets 0/1/2 min); boundaries every minute")
        say(f"daemon: {len(self.project_ids)} projects (p0..p{len(self.project_ids) - 2} AK/SK, p{len(self.project_ids) - 1} IAM password), "
            f"loops quota/stuck 5 s, schedule/flavors/maintenance 10 s, max_backoff 15 s, request_timeout {self.request_timeout:.0f} s, "
            f"boundary_grace {self.boundary_grace:.0f} s; recovery limit {self.recovery_limit:.0f} s")
        for target in (self.watch_sim_log, self.watch_loops, self.watch_daemon, self.watch_random_kills):
            threading.Thread(target=target, daemon=True, name=target.__name__).start()
        self.start_daemon("first start")
        first_ready = self.wait_recovery(self.gen["start"], "start", limit=60)[0]
        self.checks.check(first_ready is not None, f"first start: every loop passed within 60 s ({first_ready and round(first_ready, 1)} s)")

        fs = self.fs
        dur = lambda full, low: max(low, full * fs)
        outage = min(600.0, 600.0 * self.scale)
        required_kills = 10 if self.minutes >= 15 else max(2, int(round(10 * self.scale)))
        self.required_kills = required_kills

        # ---------------- section A: faults, kills at batch calls and at random moments
        self.kill_armed = True
        self.random_kills_armed = True
        section_a_estimate = sum(dur(a, b) for a, b in [(20, 10), (30, 8), (30, 8), (25, 8), (25, 8), (15, 5), (20, 8), (25, 8), (60, 15)])
        n_random = max(1, int(round(3 * fs)))
        self.random_kill_times = sorted(time.time() + self.rng.uniform(5, section_a_estimate) for _ in range(n_random))
        self.run_phase("warm-up", None, dur(20, 10), check_recovery=False, kind="calm")
        self.run_phase("5xx-503-50%", {"errorRate": 0.5, "errorStatus": 503}, dur(30, 8))
        self.run_phase("5xx-500-100%", {"errorRate": 1.0, "errorStatus": 500}, dur(30, 8))
        self.run_phase("throttle-429", {"throttleRequestsPerSecond": 1, "throttleBurst": 2, "throttleMode": "429"}, dur(25, 8))
        self.run_phase("throttle-202-Common.0024", {"throttleRequestsPerSecond": 1, "throttleBurst": 2, "throttleMode": "202"}, dur(25, 8))
        self.run_phase("latency-1500ms", {"latencyMs": 1500}, dur(15, 5))
        self.run_phase(f"latency-4500ms(>request_timeout {self.request_timeout:.0f}s)", {"latencyMs": 4500}, dur(20, 8))
        self.run_phase("drop-30%", {"dropRate": 0.3}, dur(25, 8))
        self.kill_armed = False
        while self.pending_kill:
            time.sleep(0.1)
        self.hostile_phase()
        self.second_instance()

        # Late delivery: batch calls reach the simulator 60 s after the daemon sent them (an API
        # gateway that queues the call while the daemon times out and gives up: 5 attempts of 3 s,
        # all with the same X-Client-Token). Aligned so that a boundary falls inside the phase, and
        # long enough that the daemon's next pass (recovery, then a new plan) is held too. Kills are
        # off: the phase is about the daemon's own recovery.
        self.kill_armed = False
        while self.pending_kill:
            time.sleep(0.1)
        wait = (60 - time.time() % 60) - 5
        self.sleep(wait if wait > 0 else wait + 60)

        def hold_on():
            with open(self.proxy_records + ".control", "w") as f:
                json.dump({"hold_batch_seconds": 60}, f)

        phase = self.run_phase("late-delivery(batch calls held 60 s)", None, 80, action=hold_on, check_recovery=False)
        os.remove(self.proxy_records + ".control")
        self.sleep(62)  # the last held calls go through
        phase["end"] = time.time()
        self.record_recovery(phase, "after the last held call", "late-delivery")
        self.subjob_failure_phase()
        self.kill_armed = True

        def bad_credentials():
            self.creds_good = False
            self.term_daemon("switch to wrong credentials")
            self.start_daemon("wrong SK and wrong IAM password")

        phase = self.run_phase("wrong-credentials", None, dur(60, 15), action=bad_credentials, check_recovery=False)
        self.creds_good = True
        self.term_daemon("switch back to the right credentials")
        self.start_daemon("right credentials again")
        phase["end"] = time.time()
        self.record_recovery(phase, "after the right credentials")
        self.random_kills_armed = False

        def revoke():
            for _ in range(3):
                t = time.time()
                request("POST", self.sim_url + "/_sim/tokens/revoke")
                with self.lock:
                    self.revokes.append(t)
                self.sleep(dur(5, 3))

        self.run_phase("iam-token-revoke", None, 0.5, action=revoke)
        self.kill_armed = False
        self.sleep(0.6)
        while self.pending_kill:
            time.sleep(0.1)
        phase_start = time.time()
        for valid in (False, False, True):
            self.sighup(valid)
        with self.lock:
            self.phases.append({"name": "sighup(invalid x2, valid x1)", "kind": "fault", "start": phase_start, "end": time.time(), "faults": None})
        self.phases[-1]["recovery"], first = self.wait_recovery(time.time(), "sighup")
        self.phases[-1]["recovery_loops"] = {k: v - self.phases[-1]["end"] for k, v in first.items()}

        # ---------------- section M: one long-lived process through the outage (memory)
        term = self.term_daemon("clean restart before the memory section")
        self.checks.check(term is not None and term["rc"] == 0 and term["seconds"] < 10,
                          f"SIGTERM: the daemon exits 0 within 10 s (status {term and term['rc']}, {term and round(term['seconds'], 1)} s)")
        mem_gen = self.start_daemon("long-lived process (memory, outage)")
        # Not scaled down: the warm-up must span at least one schedule boundary (one a minute), so
        # that P1 is taken after the process has acted once (journal, jobs followed, SQLite caches)
        # and not half-way up to its working set; then RSS must settle (settled_idle_rss).
        warm = 75.0
        say(f"memory: warm-up: the outage's code paths once (5 s of errors, 5 s of drops, SIGHUPs, a token revocation), "
            f"then {warm:.0f} s of normal work (at least one schedule boundary), then RSS at idle moments until it settles")
        self.sleep(3)
        self.sim_faults({"outage": "error"})
        self.sleep(5)
        self.sim_faults({"outage": "drop"})
        self.sleep(5)
        self.sim_faults({})
        self.sighup(False)
        self.sighup(True)
        request("POST", self.sim_url + "/_sim/tokens/revoke")
        self.sleep(warm)
        self.memory["p1"] = self.settled_idle_rss(mem_gen, "P1")
        self.memory["p1_t"] = time.time()
        say(f"memory P1 (after warm-up, idle): {self.memory['p1']} kB")

        half = outage / 2
        speed_up = max(self.speed, 1440.0)

        start = time.time()
        say(f"phase api-outage: every API call fails for {outage:.0f} s ('error' then 'drop'); simulated clock at {speed_up:g}x")
        request("POST", self.sim_url + "/_sim/clock", body={"speed": speed_up})
        self.sim_faults({"outage": "error"})
        self.sleep(half * 0.5)
        self.sighup(False)
        request("POST", self.sim_url + "/_sim/tokens/revoke")
        self.sleep(half * 0.5)
        self.sim_faults({"outage": "drop"})
        self.sleep(half * 0.5)
        self.sighup(False)
        self.sighup(True)
        self.sleep(max(0.0, start + outage - time.time()))
        self.sim_faults({})
        request("POST", self.sim_url + "/_sim/clock", body={"speed": self.speed})
        end = time.time()
        with self.lock:
            pings = [t for t, pid, text in self.notify if pid == mem_gen["pid"] and "WATCHDOG=1" in text and start <= t <= end]
        gaps = [b - a for a, b in zip([start] + pings, pings + [end])]
        self.checks.check(self.gen is mem_gen and pings and max(gaps) <= 25,
                          f"the daemon stayed alive through the outage: {len(pings)} WATCHDOG=1 (WATCHDOG_USEC 20 s), longest gap {max(gaps):.1f} s")
        phase = {"name": f"api-outage-{outage / 60:.1f}min", "kind": "fault", "start": start, "end": end, "faults": {"outage": "error|drop"}}
        self.phases.append(phase)
        self.record_recovery(phase, "after the outage", "api-outage")
        self.sleep(max(0.0, warm - (time.time() - end)))
        self.memory["p2"] = self.settled_idle_rss(mem_gen, "P2")
        self.memory["p2_t"] = time.time()
        self.memory["gen"] = mem_gen["n"]
        self.memory["same_process"] = self.gen is mem_gen
        say(f"memory P2 (after the outage, idle): {self.memory['p2']} kB")

        # ---------------- section B: kills at batch calls until enough, a person starts servers by hand
        # First half with a fast API (the answer is back before the kill: the outcome is usually
        # journaled), second half with 800 ms of latency (the call is done at the simulator but the
        # daemon is still waiting for the answer when it dies: an intent without an outcome).
        self.kill_armed = True
        b_start = time.time()
        b_min, b_max = dur(150, 60), dur(420, 150)
        self.random_kill_times = [time.time() + self.rng.uniform(5, b_min)]
        self.random_kills_armed = True
        person_done = False
        slow = False
        say(f"phase kills: kill -9 at batch calls until {required_kills} (have {self.batch_kills()}), {b_min:.0f}-{b_max:.0f} s")
        while time.time() - b_start < b_max:
            if not person_done and time.time() - b_start > 5:
                person_done = self.person_start()
            if not slow and time.time() - b_start >= b_min / 2:
                slow = True
                say("phase kills: API latency 800 ms from now on")
                self.sim_faults({"latencyMs": 800})
            if time.time() - b_start >= b_min and self.batch_kills() >= required_kills and person_done:
                break
            self.sleep(1)
        self.sim_faults({})
        self.kill_armed = False
        self.random_kills_armed = False
        while self.pending_kill:
            time.sleep(0.1)
        self.phases.append({"name": "kill-at-batches(fast, then 800 ms latency)", "kind": "kills", "start": b_start, "end": time.time(),
                            "faults": {"latencyMs": 800}})

        # ---------------- settle and analyse
        self.settle()
        self.analyse()

    # ------------------------------------------------------------------ hostile endpoint, second instance
    HOSTILE_RATE = 0.5
    HOSTILE_SECONDS = 25.0

    def hostile_phase(self):
        """A hostile endpoint: for HOSTILE_RATE of the GET answers of the simulator (server listings,
        jobs, limits, flavors) the proxy sends a value of the wrong type, drops a required key,
        answers a repeated page (a next link back to the same page; page N answered with page N-1),
        drips the body (headers at once, then a byte every 100 ms for request_timeout + 4 s, then
        the connection closes), or answers 429/503 with `Retry-After: 1e300`. Batch actions (POST)
        go through untouched, so the double-action accounting stays valid. Kills are off (random
        ones wait until after the phase): the daemon must survive this on its own. The phase starts
        5 s before a schedule boundary, so that listings, limits, flavors and the jobs of the
        boundary's batches are all read through it."""
        with self.lock:
            postponed, self.random_kill_times = self.random_kill_times, []
        gen = self.gen
        seconds = self.HOSTILE_SECONDS  # not scaled: a few schedule passes at any SOAK_MINUTES
        drip = self.request_timeout + 4
        control = self.proxy_records + ".control"
        name = f"hostile-endpoint({self.HOSTILE_RATE:.0%} of GET answers)"

        def on():
            with open(control + ".tmp", "w") as f:
                json.dump({"hostile": {"rate": self.HOSTILE_RATE, "drip_seconds": drip}}, f)
            os.replace(control + ".tmp", control)

        # a schedule boundary 5 s into the phase: its batches' jobs are followed through mangled answers
        now = time.time()
        boundary = min(b[0] for n in SCHEDULES for b in self.boundaries[n] if b[0] > now + 6)
        self.sleep(boundary - 5 - time.time())
        exits_before = len(self.unexpected_exits)
        phase = self.run_phase(name, None, seconds, action=on, check_recovery=False)
        os.remove(control)
        self.sleep(drip + 1)  # the last dripped bodies end
        phase["end"] = time.time()
        self.record_recovery(phase, "after the last mangled answer", "hostile-endpoint")
        counts = collections.Counter()
        paths = collections.Counter()
        try:
            with open(self.proxy_records + ".mangled") as f:
                for line in f:
                    m = json.loads(line)
                    if phase["start"] - 1 <= m["t"] <= phase["end"] + 1:
                        counts[m["kind"]] += 1
                        p = m["path"]
                        paths["jobs" if "/jobs/" in p else "limits" if "limits" in p else "flavors" if "flavors" in p else "listings" if "servers" in p else p] += 1
        except (OSError, ValueError):
            pass
        with self.lock:
            gets = sum(1 for r in self.sim_records if r.get("method") == "GET" and phase["start"] <= r["time"] <= phase["end"]
                       and HOSTILE_PATH.match(r.get("path", "")))
            self.random_kill_times = sorted(self.random_kill_times + postponed)
        self.hostile = {"counts": counts, "paths": paths, "gets": gets}
        say(f"  -> {name}: {sum(counts.values())} answers mangled of {gets} eligible GETs at the simulator: "
            + ", ".join(f"{k} {counts.get(k, 0)}" for k in HOSTILE_KINDS) + "; by path: " + ", ".join(f"{k} {v}" for k, v in sorted(paths.items())))
        with self.daemon_lock:
            alive = self.gen is gen and self.daemon_proc.poll() is None and gen["end"] is None
        served = request("GET", f"{self.control}/v1/status", timeout=3)[0] == 200
        exits = self.unexpected_exits[exits_before:]
        self.checks.check(all(counts.get(k, 0) > 0 for k in HOSTILE_KINDS),
                          f"{name}: every kind of mangled answer was sent (" + ", ".join(f"{k} {counts.get(k, 0)}" for k in HOSTILE_KINDS) + ")")
        self.checks.check(alive and served and not exits,
                          f"{name}: the daemon survived it (same process {gen['pid']}: {alive}, control API serving: {served}, "
                          f"unexpected exits during the phase: {len(exits)}"
                          + "".join(f"; gen {u['gen']} status {u['rc']}: ...{u['tail'][-300:]!r}" for u in exits) + ")")

    def second_instance(self):
        """A second `ecs-warden run` on the same configuration (same state directory) while the first
        runs: it must exit non-zero within 5 s with one line naming the state directory and the
        first's pid; the first keeps running; no batch call reaches the simulator meanwhile (the
        attempt is made in a quiet part of a minute, 15 s after a boundary and 20 s before the next)."""
        while True:
            now = time.time()
            last = max(b[0] for name in SCHEDULES for b in self.boundaries[name] if b[0] <= now)
            nxt = min(b[0] for name in SCHEDULES for b in self.boundaries[name] if b[0] > now)
            if now - last >= 15 and nxt - now >= 20:
                break
            self.sleep(1)
        gen = self.gen
        first_pid = gen["pid"]
        state_dir = f"{self.work}/state"
        env = self.daemon_env()
        env.pop("NOTIFY_SOCKET", None)
        env.pop("WATCHDOG_USEC", None)
        t0 = time.time()
        say(f"second instance: ecs-warden run --config {self.config_path} while generation {gen['n']} (pid {first_pid}) runs")
        try:
            out = subprocess.run([self.warden, "run", "--config", self.config_path], capture_output=True, text=True, env=env,
                                 timeout=30, cwd=self.work)
            rc, text = out.returncode, (out.stdout + out.stderr)
        except subprocess.TimeoutExpired as timeout:
            rc, text = None, ((timeout.stdout or b"") + (timeout.stderr or b"")).decode(errors="replace") if isinstance(timeout.stdout, bytes) else str(timeout.stdout or "")
        t1 = time.time()
        self.sleep(3)  # the simulator's request log is polled
        lines = [l for l in text.splitlines() if l.strip()]
        with self.lock:
            batches = [r for r in self.sim_records if is_batch(r) and t0 <= r["time"] <= t1 + 2]
        with self.daemon_lock:
            alive = self.gen is gen and self.daemon_proc.poll() is None and gen["end"] is None
        served = request("GET", f"{self.control}/v1/status", timeout=3)[0] == 200
        say(f"  -> second instance: exit status {rc} after {t1 - t0:.1f} s; output ({len(lines)} lines): {text.strip()[:400]!r}")
        named = any(state_dir in l and f"pid {first_pid}" in l for l in lines)
        self.checks.check(rc is not None and rc != 0 and t1 - t0 <= 5 and len(lines) == 1 and named,
                          f"a second instance on the same state directory exits non-zero within 5 s (status {rc}, {t1 - t0:.1f} s) with one line "
                          f"naming {state_dir} and the first's pid {first_pid} ({len(lines)} lines, named: {named})")
        self.checks.check(alive and served and not batches,
                          f"the first instance kept running (pid {first_pid}: {alive}, serving: {served}) and no batch call reached the "
                          f"simulator while the second was up ({len(batches)})")
        with self.lock:
            self.phases.append({"name": "second-instance", "kind": "calm", "start": t0, "end": t1, "faults": None})

    # ------------------------------------------------------------------ partial batch failures
    SUBJOB_CODE = "Ecs.0603"
    SUBJOB_RATE = 0.3
    SUBJOB_WAIT = 60.0  # the wait the API reference gives for Ecs.0603: "Try again 1 minute later."

    def proxy_entries(self):
        if not os.path.exists(self.proxy_records):
            return []
        with open(self.proxy_records) as f:
            return [json.loads(line) for line in f if line.strip()]

    def sim_job(self, project_id, job_id, tokens):
        if project_id not in tokens:
            tokens[project_id] = self.sim_token(project_id)
        return get_json(f"{self.sim_url}/v1/{project_id}/jobs/{job_id}", headers={"X-Auth-Token": tokens[project_id] or ""}, timeout=10)

    def subjob_failure_phase(self):
        """Sub-jobs failing with Ecs.0603 for part of a batch: failSubJobRate 0.3 from 5 s before a
        schedule boundary to 15 s after it (one batch per project and schedule acting there; each
        server fails at most once, so the daemon's retry after the code's wait succeeds). Then every
        server whose sub-job failed is watched until it is in its schedule's state or its window
        closes: the code's wait + 3 schedule passes + 5 s after the failure (the daemon learns of the
        failure from the job, waits, and acts on its next pass), within boundary_grace and before its
        schedule's next boundary. Kills are off (random ones wait until after the phase): the phase
        is about the retry."""
        with self.lock:
            postponed, self.random_kill_times = self.random_kill_times, []
        now = time.time()
        boundary = min(b[0] for name in SCHEDULES for b in self.boundaries[name] if b[0] > now + 8)
        self.sleep(boundary - 5 - time.time())
        faults = {"failSubJobRate": self.SUBJOB_RATE, "failSubJobCode": self.SUBJOB_CODE}
        name = f"subjob-fail-{self.SUBJOB_CODE}-{self.SUBJOB_RATE:.0%}"
        start = time.time()
        say(f"phase {name}: {json.dumps(faults)} from 5 s before the boundary at {iso(boundary)} to 15 s after it")
        self.sim_faults(faults)
        self.sleep(boundary + 15 - time.time())
        self.sim_faults({})
        end = time.time()
        window = min(self.boundary_grace, self.SUBJOB_WAIT + 3 * self.schedule_interval + 5)

        # the servers whose sub-job failed with the code, from the jobs of the calls made meanwhile
        tokens = {}
        calls = [p for p in self.proxy_entries() if p.get("job_id") and p["action"] in ("stop", "start") and start - 1 <= p["t0"] <= end + 1]
        failed = {}  # server -> {...}
        phase_jobs = set()
        for p in sorted(calls, key=lambda p: p["t0"]):
            if p["job_id"] in phase_jobs:
                continue  # a replay of the same X-Client-Token
            phase_jobs.add(p["job_id"])
            job = self.sim_job(p["project_id"], p["job_id"], tokens) or {}
            for sj in job.get("entities", {}).get("sub_jobs", []):
                server = sj.get("entities", {}).get("server_id")
                if sj.get("status") != "FAIL" or sj.get("error_code") != self.SUBJOB_CODE or server in failed:
                    continue
                info = get_json(f"{self.sim_url}/_sim/projects/{p['project_id']}/servers/{server}") or {}
                tags = dict(t.split("=", 1) for t in info.get("tags", []) if "=" in t)
                schedule = tags.get("warden-schedule")
                if schedule not in SCHEDULES:
                    continue
                failed_at = p["t1"]
                last = max((b for b in self.boundaries[schedule] if b[0] <= failed_at), default=None)
                nxt = min((b[0] for b in self.boundaries[schedule] if b[0] > failed_at), default=float("inf"))
                failed[server] = {"project_id": p["project_id"], "action": p["action"], "job_id": p["job_id"], "schedule": schedule,
                                  "boundary": last[0] if last else None, "failed_at": failed_at,
                                  "want": "SHUTOFF" if last and last[1] == "stop" else "ACTIVE",
                                  "deadline": min(failed_at + window, nxt - 1), "converged_at": None,
                                  "fail_reason": sj.get("fail_reason"), "errorcode_message": sj.get("entities", {}).get("errorcode_message")}
        say(f"  -> {name}: {len(phase_jobs)} stop/start jobs during the fault, {len(failed)} servers' sub-jobs failed with {self.SUBJOB_CODE}; "
            f"watching them for up to {window:.0f} s each (the {self.SUBJOB_WAIT:.0f} s wait + 3 schedule passes + 5 s)")

        # watch them until each is in its schedule's state or its window has closed
        while not self.stop_flag.is_set():
            now = time.time()
            open_ = [s for s, f in failed.items() if f["converged_at"] is None and now <= f["deadline"]]
            if not open_:
                break
            for server in open_:
                f = failed[server]
                info = get_json(f"{self.sim_url}/_sim/projects/{f['project_id']}/servers/{server}") or {}
                if info.get("status") == f["want"] and not info.get("task_state"):
                    f["converged_at"] = time.time()
            self.sleep(2)
        last_deadline = max([f["deadline"] for f in failed.values()] + [end])

        # retries: a later accepted call of the same action naming the server, and its sub-job
        later = [p for p in self.proxy_entries() if p.get("job_id") and p["action"] in ("stop", "start") and p["t0"] > start - 1]
        for server, f in failed.items():
            retry = next((p for p in sorted(later, key=lambda p: p["t0"])
                          if p["action"] == f["action"] and server in p["servers"] and p["job_id"] != f["job_id"] and p["t0"] > f["failed_at"]), None)
            f["retry_job"] = retry and retry["job_id"]
            f["retry_after"] = retry and retry["t0"] - f["failed_at"]
            if retry:
                job = self.sim_job(retry["project_id"], retry["job_id"], tokens) or {}
                f["retry_sub_status"] = next((sj.get("status") for sj in job.get("entities", {}).get("sub_jobs", [])
                                              if sj.get("entities", {}).get("server_id") == server), None)
        retried = [f for f in failed.values() if f["retry_job"]]
        converged = [f for f in failed.values() if f["converged_at"] is not None]
        self.subjob = {"name": name, "start": start, "end": end, "boundary": boundary, "window": window, "failed": failed,
                       "until": last_deadline}
        say(f"  -> {name}: servers failed {len(failed)}, retried {len(retried)}"
            + (f" (first retry {min(f['retry_after'] for f in retried):.1f}-{max(f['retry_after'] for f in retried):.1f} s after the failure)" if retried else "")
            + f", converged {len(converged)}/{len(failed)} within their window")
        phase = {"name": name, "kind": "fault", "start": start, "end": end, "faults": faults}
        with self.lock:
            self.phases.append(phase)
            self.random_kill_times = sorted(self.random_kill_times + postponed)
        self.record_recovery(phase, "after the fault ended")

    def analyse_subjob_phase(self, jobs, sub, twice, checks):
        """Checks of the sub-job failure phase: every failed server converged within its window, and
        no server in two accepted calls of one action for one boundary except the retry of a failed
        sub-job (`twice`: the double-action detector's findings, which already let a FAILed sub-job
        be retried)."""
        ph = self.subjob
        if ph is None:
            checks.check(False, "the sub-job failure phase ran")
            return
        failed = ph["failed"]
        say(f"-- {ph['name']} (boundary {iso(ph['boundary'])}, window {ph['window']:.0f} s after each failure)")
        retried = [f for f in failed.values() if f["retry_job"]]
        converged = [f for f in failed.values() if f["converged_at"] is not None]
        by_action = collections.Counter(f["action"] for f in failed.values())
        say(f"   servers failed {len(failed)} ({', '.join(f'{a} {n}' for a, n in sorted(by_action.items())) or '-'}), "
            f"retried {len(retried)} (retry sub-jobs: {', '.join(f'{k} {v}' for k, v in sorted(collections.Counter(str(f.get('retry_sub_status')) for f in retried).items())) or '-'}), "
            f"converged {len(converged)}")
        if converged:
            times = [f["converged_at"] - f["failed_at"] for f in converged]
            say(f"   time from the failed sub-job to the schedule's state: median {statistics.median(times):.1f} s, max {max(times):.1f} s")
        shapes = sum(1 for f in failed.values() if f["fail_reason"] and f["errorcode_message"] == f["fail_reason"])
        checks.check(failed and shapes == len(failed),
                     f"{ph['name']}: the fault failed part of the boundary's batches ({len(failed)} servers' sub-jobs FAIL {self.SUBJOB_CODE}, "
                     f"{shapes} with fail_reason and entities.errorcode_message)")
        for f in [f for f in failed.values() if f["converged_at"] is None][:5]:
            server = next(s for s, g in failed.items() if g is f)
            say(f"   not converged: {self.project_names.get(f['project_id'])} {server} ({f['schedule']}) wanted {f['want']} by "
                f"{iso(f['deadline'])}; {'retried ' + format(f['retry_after'], '.1f') + ' s after the failure, sub-job ' + str(f.get('retry_sub_status')) if f['retry_job'] else 'never retried'}")
        checks.check(failed and len(converged) == len(failed),
                     f"{ph['name']}: every server whose sub-job failed ({len(failed)}) was in its schedule's state within "
                     f"min(boundary_grace, {self.SUBJOB_WAIT:.0f} s wait + 3 passes + 5 s) = {ph['window']:.0f} s and before its next boundary "
                     f"({len(converged)} were; {len(retried)} retried)")
        window_jobs = {i for i, j in jobs.items() if ph["start"] - 1 <= j["t0"] <= ph["until"]}
        phase_twice = {k: v for k, v in twice.items() if v & window_jobs}
        for (action, server, schedule, boundary), ids in list(phase_twice.items())[:5]:
            say(f"   {action} twice: {server} ({schedule} @ {boundary}) in jobs "
                + ", ".join(f"{i[:12]} (sub-job {sub.get((i, server), ('?',))[0]})" for i in sorted(ids, key=lambda i: jobs[i]["t0"])))
        checks.check(not phase_twice,
                     f"{ph['name']}: no server in two accepted stop (or start) calls for the same boundary except the retry of a "
                     f"failed sub-job ({len(phase_twice)} servers; must be 0)")

    def batch_kills(self):
        with self.lock:
            return sum(1 for k in self.kills if k["reason"] == "batch")

    def settled_idle_rss(self, gen, label, window=10.0, tolerance=1.0, limit=90.0):
        """Idle RSS medians over consecutive windows until two in a row differ by at most
        `tolerance` percent (or `limit` seconds pass); returns the last one. Every window is printed,
        so a process still growing toward its working set shows as such instead of as a leak."""
        medians = []
        end = time.time() + limit
        while True:
            median = self.idle_rss(gen, window)
            if median is not None:
                medians.append(median)
            settled = len(medians) >= 2 and abs(medians[-1] - medians[-2]) * 100.0 <= tolerance * medians[-2]
            if settled or time.time() >= end:
                break
        say(f"memory {label}: idle RSS medians over {window:.0f} s windows: {', '.join(f'{m} kB' for m in medians) or 'none'}"
            f" ({'settled' if settled else f'not settled within {limit:.0f} s'})")
        return medians[-1] if medians else None

    def idle_rss(self, gen, seconds):
        """The median VmRSS of `gen` over moments when no loop is running, sampled for `seconds`
        (longer, up to 3 x, until 3 idle samples were seen)."""
        samples = []
        start = time.time()
        while time.time() - start < seconds or (len(samples) < 3 and time.time() - start < 3 * seconds):
            data = get_json(f"{self.control}/v1/loops", timeout=2)
            if isinstance(data, list) and not any(l.get("running") for l in data):
                try:
                    with open(f"/proc/{gen['pid']}/status") as f:
                        samples.append(int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)))
                except (OSError, AttributeError):
                    pass
            time.sleep(0.5)
        return int(statistics.median(samples)) if samples else None

    def settle(self):
        say("settle: faults cleared; waiting for the daemon to finish its jobs and handle the latest boundaries")
        self.sim_faults({})
        last_restart = self.gen["start"]
        recovered, _ = self.wait_recovery(last_restart, "final", limit=120)
        deadline = time.time() + 180
        self.final_snapshot = None
        while time.time() < deadline:
            time.sleep(2)
            now = time.time()
            latest = {name: max((b for b in self.boundaries[name] if b[0] <= now - 4), default=None) for name in SCHEDULES}
            # every boundary of the last 6 s, not only the latest ones counted above: a boundary of the
            # last 4 s is in neither `latest` nor the next ones, and a snapshot then holds it against
            # the boundary before (seen: 98 servers stopped at 13:38:00 judged against the 13:36 start)
            if any(0 <= now - b[0] < 6 for name in SCHEDULES for b in self.boundaries[name]):
                continue
            marks = self.read_marks()
            if marks is None:
                continue
            behind = [(s, p) for s in SCHEDULES for p in self.project_names.values()
                      if latest[s] and marks.get((s, p), 0) < latest[s][0]]
            state = get_json(self.sim_url + "/_sim/state") or {}
            if behind or self.open_intents_now() or state.get("pending_transitions", 1) != 0 or self.unclosed_jobs():
                continue
            # two passes of the schedule loop since the last restart, and a quiet moment before the next boundary
            nxt = min(b[0] for name in SCHEDULES for b in self.boundaries[name] if b[0] > now)
            if nxt - now < 8:
                continue
            self.final_snapshot = self.snapshot_servers(latest)
            if self.final_snapshot is not None:
                break
        self.settled_at = time.time()

    def unclosed_jobs(self):
        try:
            db = sqlite3.connect(f"file:{self.work}/state/state.sqlite?mode=ro", uri=True, timeout=5)
            n = db.execute("SELECT COUNT(*) FROM watched_jobs WHERE closed_at IS NULL").fetchone()[0]
            db.close()
            return n
        except sqlite3.Error:
            return 1

    def read_marks(self):
        try:
            db = sqlite3.connect(f"file:{self.work}/state/state.sqlite?mode=ro", uri=True, timeout=5)
            rows = db.execute("SELECT schedule, project, boundary FROM schedule_marks").fetchall()
            db.close()
            return {(s, p): b for s, p, b in rows}
        except sqlite3.Error:
            return None

    def snapshot_servers(self, latest):
        snap = {}
        for pid in self.project_ids:
            token = self.sim_token(pid)
            servers = self.list_servers(pid, token) if token else None
            if servers is None:
                return None
            snap[pid] = servers
        return {"t": time.time(), "latest": latest, "servers": snap}

    # ------------------------------------------------------------------ analysis
    def analyse(self):
        say("=" * 100)
        say("analysis")
        checks = self.checks
        db = sqlite3.connect(f"file:{self.work}/state/state.sqlite?mode=ro", uri=True, timeout=10)
        db.row_factory = sqlite3.Row
        journal = [dict(r) for r in db.execute("SELECT * FROM journal ORDER BY seq")]
        watched = [dict(r) for r in db.execute("SELECT * FROM watched_jobs")]
        failed_sub_jobs = {(r["intent_seq"], r["server_id"]) for r in db.execute("SELECT intent_seq, server_id FROM server_outcomes WHERE result = 'failed'")}
        db.close()
        for e in journal:
            e["servers"] = json.loads(e["servers"] or "[]")
        intents = [e for e in journal if e["kind"] == "intent" and e["loop"] == "schedule"]
        outcomes_by_intent = collections.defaultdict(list)
        for e in journal:
            if e["kind"] == "outcome" and e["intent_seq"] is not None:
                outcomes_by_intent[e["intent_seq"]].append(e)
        intent_by_token = {e["client_token"]: e for e in intents}

        def boundary_of(intent):
            m = re.search(r"at the (\S+) boundary", intent.get("message") or "")
            return m.group(1) if m else "enforce"

        # ---- phases and recovery
        say("-- faults and recovery (first successful pass of every loop after the fault ended)")
        for phase in self.phases:
            line = f"   {phase['name']:<44} {phase['start'] - T0:7.1f}s .. {phase['end'] - T0:7.1f}s ({phase['end'] - phase['start']:5.1f} s)"
            if "recovery" in phase:
                rec = phase["recovery"]
                slowest = max(phase.get("recovery_loops", {}).items(), key=lambda kv: kv[1], default=(None, None))
                line += f"  recovery {rec:5.1f} s (slowest: {slowest[0]})" if rec is not None else "  NOT RECOVERED"
            say(line)
        for phase in self.phases:
            if "recovery" in phase:
                checks.check(phase["recovery"] is not None and phase["recovery"] <= self.recovery_limit,
                             f"recovery after {phase['name']}: every loop passed again within {self.recovery_limit:.0f} s "
                             f"({'%.1f s' % phase['recovery'] if phase['recovery'] is not None else 'never'})")

        # ---- daemon generations, kills
        batch_kills = [k for k in self.kills if k["reason"] == "batch"]
        random_kills = [k for k in self.kills if k["reason"] != "batch"]
        say(f"-- daemon: {len(self.gens)} generations; kill -9: {len(batch_kills)} at batch calls, {len(random_kills)} at random moments")
        for i, k in enumerate(self.kills, 1):
            d = k["detail"]
            opened = k["open_intents"]
            fate = []
            for o in opened:
                if "seq" in o:
                    outs = outcomes_by_intent.get(o["seq"], [])
                    fate.append(f"intent {o['seq']} ({o['action']} {o['servers']} of {o['schedule']}/{o['project']}) -> "
                                + (",".join(x["result"] for x in outs) or "NO OUTCOME"))
                else:
                    fate.append(str(o))
            what = f"{d['operation']} {d['project']} status {d['status']}, kill {d['delay_ms']:.0f} ms after it was logged" if d else "random moment"
            say(f"   kill #{i:<2} {iso(k['t'])} gen {k['gen']}: {what}; open intents: {len(opened)}" + ("".join("\n" + " " * 20 + f for f in fate)))
        delays = [k["detail"]["delay_ms"] for k in batch_kills]
        checks.check(len(batch_kills) >= self.required_kills,
                     f"kill -9 during auto-stop/start batches: {len(batch_kills)} (required {self.required_kills}); "
                     f"delays after the logged call {min(delays or [0]):.0f}-{max(delays or [0]):.0f} ms")
        checks.check(len(random_kills) >= 1, f"kill -9 at random moments: {len(random_kills)}")
        kill_rec = []
        for k in self.kills:
            nxt = [g for g in self.gens if g["start"] > k["t"]]
            if nxt:
                seconds, first = self.wait_recovery_static(nxt[0]["start"])
                if seconds is not None:
                    kill_rec.append(seconds + (nxt[0]["start"] - k["t"]))
        if kill_rec:
            say(f"   time from kill -9 to every loop passing again: median {statistics.median(kill_rec):.1f} s, max {max(kill_rec):.1f} s "
                f"({len(kill_rec)}/{len(self.kills)} measured; kills inside a fault wait for the fault to end)")
        checks.check(not self.unexpected_exits,
                      f"the daemon never exited by itself ({len(self.unexpected_exits)} unexpected exits"
                      + "".join(f"; gen {u['gen']} status {u['rc']}: ...{u['tail'][-300:]!r}" for u in self.unexpected_exits) + ")")
        not_ready = [g["n"] for g in self.gens if g["ready"] is None]
        checks.check(not not_ready, f"every daemon start ({len(self.gens)}) answered the control API (not: {not_ready})")

        # ---- sd_notify
        with self.lock:
            notes = list(self.notify)
        ready_pids = {pid for _, pid, text in notes if "READY=1" in text}
        long_lived = [g for g in self.gens if (g["end"] or time.time()) - g["start"] > 5]
        missing_ready = [g["n"] for g in long_lived if g["pid"] not in ready_pids]
        checks.check(not missing_ready, f"sd_notify READY=1 from every daemon generation that lived > 5 s ({len(long_lived)}; missing: {missing_ready})")
        hup_ok = []
        for h in self.sighups:
            after = [(t, text) for t, pid, text in notes if pid == h["pid"] and t >= h["t"] - 0.05]
            reloading = next((t for t, text in after if "RELOADING=1" in text), None)
            ready = next((t for t, text in after if "READY=1" in text and reloading is not None and t >= reloading), None)
            hup_ok.append(reloading is not None and ready is not None)
        checks.check(all(hup_ok) and hup_ok, f"sd_notify RELOADING=1 then READY=1 on every SIGHUP ({sum(hup_ok)}/{len(hup_ok)})")
        stopping = [g["n"] for g in self.gens if g["end_reason"] and g["end_reason"].startswith("SIGTERM")
                    and not any(pid == g["pid"] and "STOPPING=1" in text for _, pid, text in notes)]
        checks.check(not stopping, f"sd_notify STOPPING=1 on every SIGTERM (missing: {stopping})")

        # ---- SIGHUP
        for h in self.sighups:
            key = "applied" if h["valid"] else "rejected"
            before, after = (h["before"] or {}).get(key), (h["after"] or {}).get(key)
            checks.check(h["alive"] and before is not None and after == before + 1,
                         f"SIGHUP with {'a valid' if h['valid'] else 'an invalid'} file at {h['t'] - T0:.0f}s: "
                         f"ecs_warden_config_reloads_total{{result=\"{key}\"}} {before} -> {after}, daemon still serving: {h['alive']}")

        # ---- IAM token revocation
        p_iam = self.project_ids[-1]
        with self.lock:
            records = list(self.sim_records)
        for t in self.revokes[:3]:
            later = [r for r in records if r["time"] > t and r.get("project_id") == p_iam or (r["time"] > t and r.get("operation") == "CreateIAMToken")]
            first_401 = next((r for r in later if r["status"] == 401), None)
            token = next((r for r in later if r.get("operation") == "CreateIAMToken" and r["status"] == 201), None)
            ok_after = next((r for r in later if token and r["time"] > token["time"] and r.get("project_id") == p_iam and 200 <= r["status"] < 300), None)
            checks.check(ok_after is not None and ok_after["time"] - t < 30,
                         f"IAM token revoked at {t - T0:.0f}s: 401 seen {first_401 is not None}, new token {token is not None}, "
                         f"p{len(self.project_ids) - 1} served again after {(ok_after['time'] - t) if ok_after else float('nan'):.1f} s")

        # ---- actions requested vs performed
        proxy = []
        if os.path.exists(self.proxy_records):
            with open(self.proxy_records) as f:
                proxy = [json.loads(line) for line in f if line.strip()]
        say("-- actions requested vs performed")
        for action in ("stop", "start"):
            mine = [e for e in intents if e["action"] == action]
            first_outcomes = collections.Counter()
            job_results = collections.Counter()
            accepted_servers = 0
            for e in mine:
                outs = outcomes_by_intent.get(e["seq"], [])
                first_outcomes[outs[0]["result"] if outs else "NO OUTCOME"] += 1
                if outs and outs[0]["result"] == "accepted":
                    accepted_servers += len(e["servers"])
                for o in outs[1:]:
                    job_results[o["result"]] += 1
            say(f"   journal {action:<5}: requested {len(mine)} intents / {sum(len(e['servers']) for e in mine)} servers; performed (accepted) "
                f"{first_outcomes.get('accepted', 0)} / {accepted_servers} servers; first outcomes: "
                + ", ".join(f"{k} {v}" for k, v in sorted(first_outcomes.items()))
                + "; job results (stuck loop): " + (", ".join(f"{k} {v}" for k, v in sorted(job_results.items())) or "-"))
        sim_batch = collections.Counter((batch_label(r), r["status"]) for r in records if is_batch(r))
        for op in ACTIONS + ("BatchServerAction",):
            line = ", ".join(f"HTTP {s or 'dropped'} x{n}" for (o, s), n in sorted(sim_batch.items()) if o == op)
            if line or op in ACTIONS:
                say(f"   sim log {op if op in ACTIONS else 'batch actions refused before routing (no operation name)'}: {line or '-'}")
        jobs = {}
        for p in proxy:
            if p.get("job_id"):
                j = jobs.setdefault(p["job_id"], {"job_id": p["job_id"], "action": p["action"], "project_id": p["project_id"], "t0": p["t0"],
                                                  "servers": p["servers"], "token": p["token"], "calls": 0})
                j["calls"] += 1
        for action in ("stop", "start"):
            js = [j for j in jobs.values() if j["action"] == action]
            statuses = collections.Counter((p["status"], p.get("error_code")) for p in proxy if p["action"] == action)
            say(f"   proxy {action}: {sum(statuses.values())} calls ("
                + ", ".join(f"HTTP {st or 'dropped'}{' ' + code if code else ''} x{n}" for (st, code), n in sorted(statuses.items(), key=str))
                + f"), {len(js)} distinct jobs, {sum(len(j['servers']) for j in js)} server actions, "
                f"{sum(j['calls'] - 1 for j in js)} replays of a client token (same job_id again)")
        no_intent = [p for p in proxy if p["action"] in ("stop", "start") and p.get("token") not in intent_by_token]
        checks.check(not no_intent, f"every batch call carried the X-Client-Token of an intent journaled before it ({len(no_intent)} without)"
                     + "".join(f"; {p['action']} at {iso(p['t0'])} token {p.get('token')}" for p in no_intent[:5]))
        accepted_jobs = {o["job_id"] for outs in outcomes_by_intent.values() for o in outs if o["result"] == "accepted" and o["job_id"]}
        unknown_jobs = accepted_jobs - set(jobs)
        checks.check(not unknown_jobs, f"every job the journal calls accepted was created at the simulator ({len(unknown_jobs)} not)")
        sim_only = [j for j in jobs.values() if j["job_id"] not in accepted_jobs]
        if sim_only:
            say(f"   {len(sim_only)} jobs ran at the simulator without an 'accepted' outcome in the journal (answer lost to kill -9 or a timeout):")
            for j in sim_only:
                intent = intent_by_token.get(j["token"])
                outs = outcomes_by_intent.get(intent["seq"], []) if intent else []
                say(f"      {j['action']} job {j['job_id'][:12]} ({len(j['servers'])} servers) intent "
                    f"{intent and intent['seq']} -> {','.join(o['result'] for o in outs) or 'NO OUTCOME'}")
        left = [o for k in self.kills for o in k["open_intents"] if "seq" in o]
        fates = collections.Counter(",".join(x["result"] for x in outcomes_by_intent.get(o["seq"], [])) or "NO OUTCOME" for o in left)
        say(f"   intents left open by kill -9: {len(left)} -> outcomes after recovery: " + (", ".join(f"{k} x{v}" for k, v in sorted(fates.items())) or "-"))
        unknown_closed = [e for e in intents if any(o["result"] == "unknown" for o in outcomes_by_intent.get(e["seq"], []))]
        went_out = sum(1 for e in unknown_closed if any(p.get("token") == e["client_token"] and p.get("status") for p in proxy))
        say(f"   intents closed 'unknown' by recovery: {len(unknown_closed)} ({went_out} of them did reach the simulator, "
            f"{len(unknown_closed) - went_out} never did)")
        resent = [e for e in journal if e["kind"] == "event" and e["action"] == "recovery-resend"]
        say(f"   recovery re-sends with the same client token: {len(resent)}")

        # ---- job details from the simulator
        sub = {}  # (job_id, server) -> (status, error_code)
        tokens = {pid: self.sim_token(pid) for pid in self.project_ids}
        missing_jobs = []
        for j in jobs.values():
            data = get_json(f"{self.sim_url}/v1/{j['project_id']}/jobs/{j['job_id']}", headers={"X-Auth-Token": tokens.get(j["project_id"]) or ""}, timeout=10)
            if not data:
                missing_jobs.append(j["job_id"])
                continue
            j["status"] = data.get("status")
            for s in data.get("entities", {}).get("sub_jobs", []):
                sub[(j["job_id"], s.get("entities", {}).get("server_id"))] = (s.get("status"), s.get("error_code"))
        if missing_jobs:
            say(f"   warning: {len(missing_jobs)} jobs could not be read back from the simulator")

        # ---- stopped twice
        say("-- servers stopped (or started) twice")
        say("   definition A (per boundary): a server in more than one distinct BatchStopServers job (distinct job_id at the simulator,")
        say("     client-token replays excluded) made for the same schedule boundary (the intent that carried the job's X-Client-Token).")
        say("   definition B (per server timeline): a stop job reaching a server whose previous effective action was a stop (the earlier")
        say("     stop's sub-job did not FAIL) with no start by the daemon or by a person (/_sim os-start) in between.")
        twice_a, started_twice_a, twice_b, started_twice_b, per_boundary, timeline = double_actions(
            jobs, sub, self.person_starts, lambda token: (lambda i: (i["subject"], boundary_of(i)) if i else ("?", "no-intent"))(intent_by_token.get(token)))
        synthetic = {
            "j1": {"job_id": "j1", "action": "stop", "t0": 1.0, "servers": ["s1", "s2"], "token": "a"},
            "j2": {"job_id": "j2", "action": "stop", "t0": 2.0, "servers": ["s1"], "token": "b"},
            "j3": {"job_id": "j3", "action": "stop", "t0": 3.0, "servers": ["s3"], "token": "c"},
            "j4": {"job_id": "j4", "action": "stop", "t0": 4.0, "servers": ["s3"], "token": "d"},
        }
        synthetic_sub = {("j3", "s3"): ("FAIL", "Ecs.0226")}
        got = double_actions(synthetic, synthetic_sub, [], lambda token: ("lab", "2026-01-01T00:00:00Z"))
        checks.check(len(got[0]) == 1 and len(got[2]) == 1 and list(got[0])[0][1] == "s1",
                     "the double-stop detector flags a synthetic double stop (s1 in two stop jobs of one boundary) and not a retry after a FAILed sub-job")
        # journal view: distinct accepted job ids per (server, boundary); a retry intent's job counts
        # for a server only if that server's sub-job in the retried intent did not fail (the journal's
        # per-server outcomes): retrying a failed sub-job is not acting twice.
        journal_pb = collections.defaultdict(set)
        for e in intents:
            for o in outcomes_by_intent.get(e["seq"], []):
                if o["result"] == "accepted" and o["job_id"] and e["action"] == "stop":
                    for s in e["servers"]:
                        if e.get("retry_of") is not None and (e["retry_of"], s) in failed_sub_jobs:
                            continue
                        journal_pb[(s, e["subject"], boundary_of(e))].add(o["job_id"])
        # a later job for a server whose earlier job's sub-job FAILed is the retry the daemon owes
        # (as in definitions A and B), not a second stop
        journal_twice = {k: v for k, v in journal_pb.items()
                         if len(v) > 1 and len([i for i in v if sub.get((i, k[0]), (None,))[0] != "FAIL"]) > 1}
        stop_pairs = [len(v) for k, v in per_boundary.items() if k[0] == "stop"]
        say(f"   {len(stop_pairs)} (server, stop boundary) pairs acted on; most distinct stop jobs for one pair: {max(stop_pairs or [0])}; "
            f"{len(timeline)} servers in {len(jobs)} jobs; {len(self.person_starts)} servers started by a person")
        held_tokens = {p["token"] for p in proxy if p.get("held")}
        def show_groups(label, found):
            groups = collections.defaultdict(list)
            for (action, server, schedule, boundary), v in found.items():
                groups[(action, schedule, boundary, tuple(sorted(v, key=lambda i: jobs[i]["t0"])))].append(server)
            for (action, schedule, boundary, job_ids), servers in list(groups.items())[:6]:
                say(f"   {label}: {len(servers)} servers of {self.project_names.get(jobs[job_ids[0]]['project_id'])} ({schedule} @ {boundary}, "
                    f"e.g. {servers[0]}) each in the same {len(job_ids)} {action} jobs:")
                for job_id in job_ids:
                    j = jobs[job_id]
                    intent = intent_by_token.get(j["token"])
                    outs = outcomes_by_intent.get(intent["seq"], []) if intent else []
                    calls = [p for p in proxy if p.get("job_id") == job_id]
                    say(f"      job {job_id}: token {j['token'][:8]}, first call {iso(j['t0'])}{' held by the proxy' if j['token'] in held_tokens else ''}, "
                        f"answered by the simulator {iso(calls[0]['t1']) if calls else '?'} ({len(calls)} calls), sub-job {sub.get((job_id, servers[0]), ('?',))[0]}; "
                        f"intent {intent and intent['seq']} (pass of {intent and iso(intent['at'])}) -> "
                        f"{', '.join(o['result'] + (' (' + o['message'][:60] + '…)' if o['result'] not in ('accepted', 'success') else '') for o in outs) or 'NO OUTCOME'}")

        show_groups("A stop", twice_a)
        pairs = collections.Counter((last[2], cur[1]) for server, last, cur in twice_b)
        for (first_job, second_job), n in list(pairs.items())[:10]:
            say(f"   B stop: {n} servers: stop job {first_job[:12]} then stop job {second_job[:12]} with no start in between")
        checks.check(not twice_a and not twice_b and not journal_twice,
                     f"servers stopped twice: {len(twice_a)} by definition A, {len(twice_b)} by definition B, "
                     f"{len(journal_twice)} in the journal (distinct accepted job ids per server and boundary); must be 0")
        show_groups("A start", started_twice_a)
        pairs = collections.Counter((last[2], cur[1]) for server, last, cur in started_twice_b)
        for (first_job, second_job), n in list(pairs.items())[:10]:
            say(f"   B start: {n} servers: start job {first_job[:12]} then start job {second_job[:12]} with no stop in between")
        checks.check(not started_twice_a and not started_twice_b,
                     f"servers started twice: {len(started_twice_a)} by definition A, {len(started_twice_b)} by definition B; must be 0")
        self.analyse_subjob_phase(jobs, sub, {**twice_a, **started_twice_a}, checks)
        for ps in self.person_starts:
            nxt_stop = next((b[0] for b in self.boundaries[ps["schedule"]] if b[0] > ps["t"] and b[1] == "stop"), float("inf"))
            early = [j for j in jobs.values() if j["action"] == "stop" and ps["server"] in j["servers"] and ps["t"] < j["t0"] < nxt_stop]
            checks.check(not early, f"server {ps['server'][:8]} started by a person at {iso(ps['t'])} was left running until the "
                                    f"next stop boundary of {ps['schedule']} ({len(early)} stop jobs before it)")

        # ---- intents without an outcome
        open_now = [e for e in intents if not outcomes_by_intent.get(e["seq"])]
        all_open = [e for e in journal if e["kind"] == "intent" and not outcomes_by_intent.get(e["seq"])]
        for e in all_open[:10]:
            say(f"   open intent {e['seq']} at {iso(e['at'])}: {e['loop']} {e['action']} {len(e['servers'])} servers of {e['subject']}/{e['project']} token {e['client_token']}")
        checks.check(not all_open, f"journal intents without an outcome after recovery: {len(all_open)} (schedule loop: {len(open_now)}); must be 0")
        unclosed = [w for w in watched if w["closed_at"] is None]
        not_watched = sorted(accepted_jobs - {w["job_id"] for w in watched})
        checks.check(not unclosed and not not_watched,
                     f"every accepted job was followed to its end by the stuck loop ({len(unclosed)} still open, "
                     f"{len(not_watched)} never watched{': ' + ', '.join(not_watched[:5]) if not_watched else ''})")

        # ---- convergence
        snap = self.final_snapshot
        if snap is None:
            checks.check(False, "final state: the daemon caught up with the latest boundaries within 180 s of the end")
        else:
            wrong, total = [], 0
            person = {p["server"] for p in self.person_starts}
            for pid, servers in snap["servers"].items():
                for s in servers:
                    tags = dict(t.split("=", 1) for t in s.get("tags", []) if "=" in t)
                    name = tags.get("warden-schedule")
                    if name not in SCHEDULES or s["id"] in person:
                        continue
                    total += 1
                    want = "SHUTOFF" if snap["latest"][name][1] == "stop" else "ACTIVE"
                    if s["status"] != want or s.get("OS-EXT-STS:task_state"):
                        wrong.append((self.project_names[pid], s["id"], name, s["status"], want))
            for project, server, name, status, want in wrong[:10]:
                boundary = snap["latest"][name][0]
                before = sorted((j for j in jobs.values() if server in j["servers"] and j["t0"] <= boundary + 60), key=lambda j: j["t0"])
                hint = ""
                if before:
                    j = before[-1]
                    hint = (f"; last daemon job on it: {j['action']} at {iso(j['t0'])} ({j['t0'] - boundary:+.1f} s from the "
                            f"{snap['latest'][name][1]} boundary at {iso(boundary)})")
                say(f"   not converged: {project} {server} ({name}) is {status}, its last boundary wants {want}{hint}")
            checks.check(not wrong, f"final state: {total - len(wrong)}/{total} scheduled servers in the state of their schedule's last boundary")

        # ---- memory
        say("-- memory (VmRSS of the daemon)")
        first_gen = self.gens[0]
        first_rss = [r[2] for r in self.rss if r[1] == first_gen["pid"]]
        last_rss = [r[2] for r in self.rss if r[1] == self.gen["pid"]]
        say(f"   first process (gen 1): {first_rss[0] if first_rss else '?'} kB at start, {max(first_rss) if first_rss else '?'} kB peak")
        say(f"   final process (gen {self.gen['n']}): {last_rss[-1] if last_rss else '?'} kB at the end")
        p1, p2 = self.memory.get("p1"), self.memory.get("p2")
        peak = max((r[2] for r in self.rss if r[1] == self.gens[self.memory.get("gen", 1) - 1]["pid"]), default=None)
        growth = (p2 - p1) / p1 * 100 if p1 and p2 else None
        say(f"   long-lived process (gen {self.memory.get('gen')}): P1 {p1} kB (idle, after warm-up) -> P2 {p2} kB (idle, same warm-up after "
            f"the outage, {((self.memory.get('p2_t', 0) - self.memory.get('p1_t', 0)) / 60):.1f} min later); peak {peak} kB")
        checks.check(growth is not None and self.memory.get("same_process") and growth <= 10.0,
                     f"memory: RSS growth between two equivalent idle points of one process {growth if growth is None else round(growth, 1)}% (limit 10%)")

        self.summary = {"phases": self.phases, "kills": self.kills, "gens": self.gens, "memory": self.memory}
        with open(os.path.join(self.work, "summary.json"), "w") as f:
            json.dump(self.summary, f, indent=1, default=str)

    def wait_recovery_static(self, since):
        first = self.successes_after(since)
        if all(name in first for name in LOOPS):
            return max(first.values()) - since, first
        return None, first

    # ------------------------------------------------------------------ cleanup
    def cleanup(self):
        self.stop_flag.set()
        self.kill_armed = False
        self.random_kills_armed = False
        with self.daemon_lock:
            self.expect_exit = True
            proc = self.daemon_proc
            if proc is not None and proc.poll() is None:
                rc = self.term_daemon("end of the soak")
                if rc is not None:
                    say(f"daemon stopped with SIGTERM: status {rc['rc']} in {rc['seconds']:.1f} s")
        for name in ("proxy", "sim"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def double_actions(jobs, sub, person_starts, boundary_of_token):
    """Servers acted on twice.

    A (per boundary): (action, server, schedule, boundary) -> distinct job ids, for keys with more than
    one job; the boundary is the one of the intent whose X-Client-Token the job's call carried.
    B (per server timeline): a stop job reaching a server whose previous effective action was a stop
    (the previous stop's sub-job did not FAIL) with no start (by the daemon or a person) in between;
    likewise for starts."""
    per_boundary = collections.defaultdict(set)
    for j in jobs.values():
        schedule, boundary = boundary_of_token(j["token"])
        for server in j["servers"]:
            per_boundary[(j["action"], server, schedule, boundary)].add(j["job_id"])

    def repeated(key, ids):
        # a second job counts once an earlier job of the same key did not FAIL for this server
        ordered = sorted(ids, key=lambda i: jobs[i]["t0"])
        effective = [i for i in ordered[:-1] if sub.get((i, key[1]), (None,))[0] != "FAIL"]
        return bool(effective) and any(jobs[i]["t0"] > jobs[effective[0]]["t0"] for i in ordered)

    twice_a = {k: v for k, v in per_boundary.items() if len(v) > 1 and k[0] == "stop" and repeated(k, v)}
    started_twice_a = {k: v for k, v in per_boundary.items() if len(v) > 1 and k[0] == "start" and repeated(k, v)}
    timeline = collections.defaultdict(list)
    for j in jobs.values():
        for server in j["servers"]:
            timeline[server].append((j["t0"], j["action"], j["job_id"]))
    for ps in person_starts:
        timeline[ps["server"]].append((ps["t"], "person-start", None))
    twice_b, started_twice_b = [], []
    for server, events in timeline.items():
        last = None
        for t, action, job_id in sorted(events, key=lambda e: e[0]):
            status = sub.get((job_id, server), (None, None))[0] if job_id else "SUCCESS"
            if action == "stop" and last and last[0] == "stop":
                twice_b.append((server, last, (t, job_id, status)))
            if action == "start" and last and last[0] == "start":
                started_twice_b.append((server, last, (t, job_id, status)))
            if status != "FAIL":
                last = ("stop" if action == "stop" else "start", t, job_id)
    return twice_a, started_twice_a, twice_b, started_twice_b, per_boundary, timeline


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "proxy":
        run_proxy(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return 0
    work = sys.argv[1]
    bin_dir = sys.argv[2]
    soak = Soak(work, bin_dir, os.path.abspath(__file__))

    def on_signal(number, _frame):
        raise KeyboardInterrupt(f"signal {number}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        soak.run()
    except KeyboardInterrupt as interrupt:
        soak.checks.check(False, f"the soak was interrupted ({interrupt})")
    except Exception as error:
        soak.checks.check(False, f"the soak aborted: {error}")
        traceback.print_exc()
    finally:
        try:
            soak.cleanup()
        except Exception:
            traceback.print_exc()
    checks = soak.checks
    if checks.failures:
        say("failed checks:")
        for failure in checks.failures:
            say(f"   - {failure}")
    say(f"wall time {(time.time() - T0) / 60:.1f} min; work directory {work}")
    print(f"soak: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
