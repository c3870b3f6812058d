#!/usr/bin/env python3
"""Cluster-mode failure soak of ecs-warden: real PostgreSQL, real processes, ecs-sim (stdlib only).

Run it through Tests/Cluster/cluster-soak.sh, which finds the binaries, bounds the run and cleans up;
`cluster_soak.py WORK BIN_DIR` is what it runs. PostgreSQL is read with the `psql` command-line
client; the recording proxy is the single-node soak's (`Tests/Soak/soak.py proxy ...`), one per
node, so every batch power action is known with its sender, its X-Client-Token and its arrival time.

What it does (details in cluster-soak.sh): a temporary PostgreSQL; ecs-sim with CLUSTER_SOAK_PROJECTS
projects whose schedules have a boundary every minute; three `ecs-warden run` replicas on it
(warden-a, -b, -c; a fourth, warden-d, joins later); then one scenario per minute, each around a
schedule boundary: kill -9 of a project's owner seconds before the boundary; SIGSTOP of an owner for
2 x TTL across a boundary, then SIGCONT; PostgreSQL stopped (immediate) across a boundary for 2 x
TTL, `pg_ctl restart -m immediate`, and every session terminated; a node joining then one leaving
(SIGTERM). Longer runs repeat the kills (and a freeze every fourth round). Then the checks, the
figures and `cluster soak: N passed, N failed`.
"""

import collections
import contextlib
import datetime
import json
import math
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

SCHEDULES = ["office-hours", "weeknights", "lab"]  # the tags of ecs-sim's generated fleet
REGION = "eu-west-0"
NODE_NAMES = ["warden-a", "warden-b", "warden-c", "warden-d"]
FINAL_RESULTS = {"refused", "unknown", "abandoned", "expired", "success", "failed", "partial"}

class Log:
    """Where say() writes: stdout and, once main() opened it, WORK/cluster-soak.log."""
    start = time.time()
    file = None
    lock = threading.Lock()


T0 = Log.start


def say(text):
    stamped = f"[{time.time() - Log.start:7.1f}s] {text}\n"
    with Log.lock:
        for out in (sys.stdout, Log.file):
            if out is not None:
                out.write(stamped)
                out.flush()


def hms(ts):
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def env_number(name, default):
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    m = re.fullmatch(r"([0-9.]+)\s*(s|m)?", text)
    if not m:
        raise SystemExit(f"{name}={text!r} is not a number of seconds (e.g. 15 or 15s)")
    value = float(m.group(1))
    return value * 60 if m.group(2) == "m" else value


def http(method, url, body=None, headers=None, timeout=5.0):
    """(status, body bytes, headers); status 0 when the connection fails."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers or {})
    except (OSError, ValueError):
        return 0, b"", {}


def fetch_json(url, timeout=5.0, headers=None):
    """The decoded body of a 200 answer; None otherwise."""
    status, data, _ = http("GET", url, headers=headers, timeout=timeout)
    with contextlib.suppress(ValueError):
        return json.loads(data) if status == 200 else None
    return None


def fleet_json(fleet):
    """{(project id, schedule): {server id: status}} as JSON (None stays None)."""
    return None if fleet is None else [[pid, schedule, servers] for (pid, schedule), servers in fleet.items()]


def fleet_from_json(rows):
    return None if rows is None else {(pid, schedule): servers for pid, schedule, servers in rows}


def poll(seconds, probe, every=0.2):
    """probe()'s first truthy answer within `seconds`; None when there is none."""
    end = time.time() + seconds
    while True:
        answer = probe()
        if answer:
            return answer
        if time.time() >= end:
            return None
        time.sleep(every)


def unused_port(taken):
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


class Results:
    """The checks' verdicts, printed as they come."""

    def __init__(self):
        self.verdicts = []  # (ok, text)

    @property
    def passed(self):
        return sum(1 for ok, _ in self.verdicts if ok)

    @property
    def failures(self):
        return [text for ok, text in self.verdicts if not ok]

    def check(self, ok, text):
        ok = bool(ok)
        self.verdicts.append((ok, text))
        say(("PASS: " if ok else "FAIL: ") + text)
        return ok

    def finish(self, work):
        """Repeats the failures, prints the closing line; the exit status."""
        if self.failures:
            say("failed checks:\n" + "\n".join(f"   - {text}" for text in self.failures))
        say(f"wall time {(time.time() - T0) / 60:.1f} min; work directory {work}")
        line = f"cluster soak: {self.passed} passed, {len(self.failures)} failed"
        print(line, flush=True)
        if Log.file:
            Log.file.write(line + "\n")
        return 1 if self.failures else 0


# ============================================================================ PostgreSQL

class Postgres:
    """A throw-away server (Tests/Postgres/pg-temp.sh when the tree has it) read through psql."""

    def __init__(self, repo, work, port):
        self.repo = repo
        self.dir = os.path.join(work, "pg")
        self.port = port
        self.bin = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
        self.url = None
        self.lock = threading.Lock()

    def _as_postgres(self, argv):
        return (["runuser", "-u", "postgres", "--"] + argv) if os.geteuid() == 0 else argv

    def start(self):
        helper = os.path.join(self.repo, "Tests", "Postgres", "pg-temp.sh")
        if os.path.isfile(helper):
            out = subprocess.run(["bash", helper, "start", self.dir, str(self.port)], capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                raise RuntimeError(f"pg-temp.sh start failed: {out.stderr[-800:]}")
            admin = out.stdout.strip().splitlines()[-1]
        else:
            os.makedirs(self.dir, mode=0o700)
            if os.geteuid() == 0:
                subprocess.run(["chown", "postgres:postgres", self.dir], check=True)
            subprocess.run(self._as_postgres([f"{self.bin}/initdb", "-D", self.dir, "-A", "trust", "-U", "postgres", "--no-sync"]),
                           check=True, capture_output=True, timeout=120)
            self.ctl("start", "-w", "-t", "30")
            admin = f"postgres://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"
        self.admin_url = admin
        self.psql(["-c", "CREATE DATABASE warden"], url=admin)
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/warden?sslmode=disable"

    def options(self):
        return f"-c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off -c max_connections=200 -k {self.dir}"

    def ctl(self, command, *extra):
        argv = [f"{self.bin}/pg_ctl", "-D", self.dir, "-l", os.path.join(self.dir, "server.log")]
        if command in ("start", "restart"):
            argv += ["-o", self.options()]
        out = subprocess.run(self._as_postgres(argv + list(extra) + [command]), capture_output=True, text=True, timeout=90)
        if out.returncode != 0:
            raise RuntimeError(f"pg_ctl {command} failed: {out.stderr[-500:]}")

    def stop(self):
        """Stops the server (fast) and leaves its directory (and server.log) to the wrapper."""
        if os.path.exists(os.path.join(self.dir, "postmaster.pid")):
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.ctl("stop", "-m", "fast", "-w")

    def psql(self, args, url=None, timeout=10):
        out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url or self.url] + args,
                             capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip()[-300:])
        return out.stdout

    def rows(self, sql, timeout=10):
        """The rows of a query as dicts; None when PostgreSQL cannot answer."""
        try:
            text = self.psql(["-c", f"SELECT coalesce(json_agg(row_to_json(q)), '[]'::json) FROM ({sql}) q"], timeout=timeout)
            return json.loads(text.strip() or "[]")
        except (RuntimeError, subprocess.TimeoutExpired, ValueError):
            return None


# ============================================================================ one replica

class Node:
    def __init__(self, soak, name):
        self.soak = soak
        self.name = name
        ports = soak.ports
        self.metrics_port = unused_port(ports)
        self.control_port = unused_port(ports)
        self.proxy_port = unused_port(ports)
        self.records = os.path.join(soak.work, f"proxy-{name}.jsonl")
        self.state_dir = os.path.join(soak.work, f"state-{name}")
        self.config = os.path.join(soak.work, f"{name}.yaml")
        self.log = os.path.join(soak.work, f"{name}.log")
        self.control = f"http://127.0.0.1:{self.control_port}"
        self.proc = None
        self.proxy = None
        self.generations = []  # {"pid", "start", "ready", "end", "how", "rc"}
        self.frozen = False

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start_proxy(self):
        argv = [sys.executable, self.soak.proxy_script, "proxy", str(self.proxy_port), str(self.soak.sim_port), self.records]
        self.proxy = self.soak.spawn(argv, os.path.join(self.soak.work, f"proxy-{self.name}.log"))
        deadline = time.time() + 15
        while time.time() < deadline:
            if http("GET", f"http://127.0.0.1:{self.proxy_port}/_sim/state", timeout=2)[0] == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the proxy of {self.name} did not start")

    def write_config(self):
        soak = self.soak
        lines = [
            f"# generated by Tests/Cluster/cluster_soak.py for {self.name}",
            f"state_dir: {self.state_dir}",
            "state:",
            "  backend: postgres",
            "  postgres: {url: {env: ECS_WARDEN_STATE_DB_URL}}",
            f"cluster: {{node: {self.name}, lease_ttl: {soak.ttl_text}}}",
            "dry_run: false",
            "listen:",
            f'  metrics: "127.0.0.1:{self.metrics_port}"',
            f'  control: "127.0.0.1:{self.control_port}"',
            f"  control_token: {{file: {soak.work}/control-token}}",
            "accounts:",
            "  - {name: keys, access_key: {env: CLUSTER_SOAK_AK}, secret_key: {env: CLUSTER_SOAK_SK}}",
            "regions:",
            f"  - name: {REGION}",
            f'    endpoint: "http://127.0.0.1:{self.proxy_port}"',
            "    request_timeout: 3s",
            "    rate_limit: {requests_per_second: 50, burst: 100}",
            "projects:",
        ]
        lines += [f"  - {{name: {soak.names[p]}, id: {p}, account: keys, region: {REGION}}}" for p in soak.project_ids]
        lines += [
            "loops:",
            "  quota: {interval: 10s, max_backoff: 15s}",
            "  stuck: {interval: 10s, max_backoff: 15s}",
            "  schedule: {interval: 10s, max_backoff: 15s}",
            "  flavors: {interval: 15s, max_backoff: 15s}",
            "  maintenance: {interval: 15s, max_backoff: 15s}",
            "stuck: {job_deadline: 10m}",
            "auto_stop: {max_stops_per_pass: 1000, max_starts_per_pass: 1000, batch_size: 1000, boundary_grace: 1h}",
            "schedules:",
        ]
        for name in SCHEDULES:
            lines += [f"  {name}:", "    timezone: UTC", "    manual_actions: boundaries-only", "    periods:"]
            lines += [f'      - {{days: every day, start: "{a}", stop: "{b}"}}' for a, b in soak.periods[name]]
        lines.append("log: {format: text, level: info}")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, why):
        soak = self.soak
        os.makedirs(self.state_dir, exist_ok=True)
        with open(self.log, "ab") as f:
            f.write(f"===== {self.name} generation {len(self.generations) + 1} ({why}) at {hms(time.time())} =====\n".encode())
        env = dict(os.environ)
        env.update(ECS_WARDEN_STATE_DB_URL=soak.pg.url, CLUSTER_SOAK_AK=soak.ak, CLUSTER_SOAK_SK=soak.sk)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("CREDENTIALS_DIRECTORY", None)
        self.proc = soak.spawn([soak.warden, "run", "--config", self.config], self.log, env=env)
        gen = {"pid": self.proc.pid, "start": time.time(), "ready": None, "end": None, "how": None, "rc": None, "why": why}
        self.generations.append(gen)
        self.frozen = False
        deadline = time.time() + 60
        while time.time() < deadline and self.proc.poll() is None:
            if http("GET", f"{self.control}/v1/status", timeout=1)[0] == 200:
                gen["ready"] = time.time()
                break
            time.sleep(0.1)
        return gen

    def ended(self, how):
        gen = self.generations[-1]
        gen["end"] = time.time()
        gen["how"] = how
        gen["rc"] = self.proc.returncode
        return gen

    def kill9(self):
        self.generations[-1]["expected"] = True  # the exit watcher must not report it
        t = time.time()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.ended("kill -9")
        return t

    def terminate(self, limit=30.0):
        """SIGTERM; (time sent, time exited, exit status)."""
        self.generations[-1]["expected"] = True
        t = time.time()
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.ended("SIGTERM (killed after the limit)")
            return t, None, None
        gen = self.ended("SIGTERM")
        return t, gen["end"], self.proc.returncode



# ============================================================================ the soak

class ClusterSoak:
    def __init__(self, work, bin_dir):
        self.work = work
        self.bin_dir = bin_dir
        self.repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
        self.proxy_script = os.path.join(self.repo, "Tests", "Soak", "soak.py")
        self.warden = os.path.join(bin_dir or "", "ecs-warden")
        self.sim_bin = os.path.join(bin_dir or "", "ecs-sim")
        self.minutes = env_number("CLUSTER_SOAK_MINUTES", 20)
        self.ttl = env_number("CLUSTER_LEASE_TTL", 15)
        self.ttl_text = f"{self.ttl:g}s"
        self.renew = self.ttl / 3
        self.projects_n = int(env_number("CLUSTER_SOAK_PROJECTS", 10))
        self.servers_n = int(env_number("CLUSTER_SOAK_SERVERS", 30))
        self.seed = int(os.environ.get("CLUSTER_SOAK_SEED", str(int(time.time()) % 100000)))
        self.rng = random.Random(self.seed)
        self.results = Results()
        self.ports = set()
        self.children = []
        self.nodes = {}
        self.stop_flag = threading.Event()
        self.samples = []  # (t, {shard: (holder, epoch, live)} or None)
        self.kills = []
        self.freezes = []
        self.outages = []
        self.membership = []
        self.unexpected = []
        self.before = {}  # boundary -> the fleet's states 8 s before it
        self.restarts = []
        self.consistency = []  # (t, label, {node: (live leases in the database, shards_owned on /metrics)})
        self.deadline = T0 + self.minutes * 60 * 1.5 + 600

    # ------------------------------------------------------------------ processes
    def spawn(self, argv, log_path, env=None):
        logf = open(log_path, "ab")
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=self.work)
        logf.close()
        with open(os.path.join(self.work, "pids"), "a") as f:
            f.write(f"{proc.pid}\n")
        self.children.append(proc)
        return proc

    def sleep_until(self, t):
        while True:
            now = time.time()
            if now >= t:
                return
            if now > self.deadline:
                raise RuntimeError("the cluster soak ran past its time bound")
            time.sleep(min(0.2, t - now))

    # ------------------------------------------------------------------ set-up
    def start_sim(self):
        self.ak = f"CLUSTERAK{self.rng.randrange(10**8):08d}"
        self.sk = f"cluster-sk-{self.rng.randrange(10**12):012d}"
        self.iam_password = f"cluster-iam-{self.rng.randrange(10**8):08d}"
        first = "%032x" % self.rng.getrandbits(128)
        log = os.path.join(self.work, "sim.log")
        self.spawn([self.sim_bin, "--port", "0", "--access-key", self.ak, "--secret-key", self.sk, "--iam-user", "cluster-robot",
                    "--iam-password", self.iam_password, "--project-id", first, "--projects", str(self.projects_n),
                    "--servers-per-project", str(self.servers_n), "--scheduled-share", "0.6", "--speed", "60",
                    "--seed", str(self.seed), "--region", REGION], log)

        def listening():  # the port, once the simulator printed it and its fleet
            text = open(log).read()
            m = re.search(r"ecs-sim listening on http://127\.0\.0\.1:(\d+)", text)
            return int(m.group(1)) if m and "\nservers " in text else None

        self.sim_port = poll(60, listening)
        if self.sim_port is None:
            raise RuntimeError("ecs-sim did not start: " + open(log).read()[-500:])
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.ports.add(self.sim_port)
        state = fetch_json(self.sim_url + "/_sim/state")
        self.project_ids = sorted(p["id"] for p in state["projects"])
        self.names = {p: f"p{i}" for i, p in enumerate(self.project_ids)}
        self.ids = {v: k for k, v in self.names.items()}
        self.shards = sorted([f"project:{p}" for p in self.project_ids] + [f"region:{REGION}"])
        say(f"ecs-sim on {self.sim_url}: {state['servers']} servers in {len(self.project_ids)} projects (seed {self.seed}); "
            f"{len(self.shards)} shards")

    def make_schedules(self):
        """Each schedule starts its servers, stops them 2 minutes later, every 4 minutes; the three are a
        minute apart, so some schedule has a boundary at every whole minute (UTC)."""
        base = int(T0 // 60) * 60
        horizon = int(self.minutes * 1.5) + 12
        self.periods, self.boundaries = {}, {}
        for offset, name in enumerate(SCHEDULES):
            periods, marks = [], []
            for k in range(-1, horizon // 4 + 2):
                start = base + 60 * (offset + 4 * k)
                stop = start + 120
                fmt = lambda t: time.strftime("%H:%M", time.gmtime(t))
                periods.append((fmt(start), fmt(stop)))
                marks += [(start, "start"), (stop, "stop")]
            self.periods[name] = periods
            self.boundaries[name] = sorted(marks)

    def fleet(self):
        """Scheduled servers per (project id, schedule), read from the simulator directly."""
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "cluster-robot", "password": self.iam_password, "domain": {"name": "cluster"}}}}}}
        servers = {}
        for pid in self.project_ids:
            body["auth"]["scope"] = {"project": {"id": pid}}
            status, _, headers = http("POST", self.sim_url + "/v3/auth/tokens", body=body)
            token = headers.get("X-Subject-Token")
            data = fetch_json(f"{self.sim_url}/v1/{pid}/cloudservers/detail?limit=1000", headers={"X-Auth-Token": token or ""}, timeout=20)
            if data is None:
                return None
            for s in data.get("servers", []):
                tags = s.get("tags") or []
                schedule = next((t.split("=", 1)[1] for t in tags if isinstance(t, str) and t.startswith("warden-schedule=")), None)
                if schedule in SCHEDULES:
                    servers.setdefault((pid, schedule), {})[s["id"]] = s.get("status")
        return servers

    def leases(self):
        return self.pg.rows("SELECT shard, holder, epoch, (holder IS NOT NULL AND expires_at > now()) AS live, "
                            "extract(epoch FROM acquired_at)::float8 AS acquired FROM shard_leases")

    def sample_leases(self):
        while not self.stop_flag.is_set():
            t = time.time()
            rows = self.pg.rows("SELECT shard, holder, epoch, (holder IS NOT NULL AND expires_at > now()) AS live FROM shard_leases", timeout=2)
            snap = None if rows is None else {r["shard"]: (r["holder"], r["epoch"], r["live"]) for r in rows}
            self.samples.append((t, snap))
            time.sleep(max(0.0, 0.2 - (time.time() - t)))

    def watch_exits(self):
        while not self.stop_flag.is_set():
            for node in list(self.nodes.values()):
                proc = node.proc
                gen = node.generations[-1] if node.generations else None
                if proc is not None and proc.poll() is not None and gen and gen["end"] is None and not gen.get("expected"):
                    gen = node.ended("exited by itself")
                    tail = open(node.log, errors="replace").read()[-600:]
                    self.unexpected.append((node.name, gen["rc"], tail))
                    say(f"{node.name} exited by itself with status {gen['rc']}: ...{tail[-300:]!r}")
            time.sleep(0.5)

    def watch_fleet(self):
        """The scheduled servers' states 8 s before every boundary: which (project, schedule) needs an
        action at it (a boundary whose servers are all in its state already is not expected to act)."""
        while not self.stop_flag.is_set():
            b = self.next_boundary(time.time() + 9)
            while time.time() < b - 8:
                if self.stop_flag.wait(min(0.5, b - 8 - time.time())):
                    return
            snap = self.fleet()
            if snap is not None:
                self.before[b] = snap

    def needs(self, pid, schedule, b, action):
        snap = self.before.get(b)
        servers = (snap if snap is not None else self.fleet_at_start or {}).get((pid, schedule), {})
        if snap is None:
            return bool(servers)
        want = "SHUTOFF" if action == "stop" else "ACTIVE"
        return any(status in ("ACTIVE", "SHUTOFF") and status != want for status in servers.values())

    def holders(self):
        rows = self.leases() or []
        return {r["shard"]: (r["holder"] if r["live"] else None) for r in rows}

    def wait_all_owned(self, limit):
        deadline = time.time() + limit
        while time.time() < deadline:
            h = self.holders()
            if len(h) == len(self.shards) and all(h.get(s) for s in self.shards):
                return h
            time.sleep(0.2)
        return None

    def next_boundary(self, after):
        return min(b for name in SCHEDULES for b, _ in self.boundaries[name] if b >= after)

    def schedules_at(self, b):
        return [(name, action) for name in SCHEDULES for t, action in self.boundaries[name] if t == b]

    def live_nodes(self):
        return [n for n in self.nodes.values() if n.running and not n.frozen]

    def pick_owner(self):
        """A project shard held by a running, unfrozen node: (shard, node, that node's shards with epochs)."""
        rows = self.leases() or []
        live = {n.name: n for n in self.live_nodes()}
        candidates = [r for r in rows if r["shard"].startswith("project:") and r["live"] and r["holder"] in live]
        if not candidates:
            return None, None, {}
        row = self.rng.choice(candidates)
        held = {r["shard"]: r["epoch"] for r in rows if r["holder"] == row["holder"] and r["live"]}
        return row["shard"], live[row["holder"]], held

    # ------------------------------------------------------------------ scenarios
    def round_kill(self, b):
        lead = self.rng.uniform(1.0, 4.0)
        self.sleep_until(b - lead)
        shard, victim, held = self.pick_owner()
        if victim is None:
            say("kill: no owner to kill")
            return
        t = victim.kill9()
        kill = {"t": t, "node": victim.name, "shard": shard, "held": held, "boundary": b, "lead": b - t}
        self.kills.append(kill)
        say(f"kill -9 #{len(self.kills)}: {victim.name} ({len(held)} shards, {self.names[shard.split(':', 1)[1]]} among them) "
            f"{b - t:.1f} s before the {hms(b)} boundary ({', '.join(f'{s} {a}' for s, a in self.schedules_at(b))})")
        self.sleep_until(t + self.ttl + self.renew + 4)
        victim.start(f"restart after kill -9 #{len(self.kills)}")

    def round_restart(self, b):
        """kill -9 of an owner 1-4 s before b and a restart 1 s later, as systemd's Restart= does (the
        shipped unit waits 5 s): well within the TTL, so the new process finds leases in its name still
        live. Someone must act on the boundary, and no lease may be renewed by a node that does not
        work on it."""
        self.sleep_until(b - self.rng.uniform(1.0, 4.0))
        shard, victim, held = self.pick_owner()
        if victim is None:
            say("restart: no owner to kill")
            return
        t = victim.kill9()
        time.sleep(1.0)
        victim.start("restarted 1 s after kill -9")
        self.restarts.append({"t": t, "node": victim.name, "shard": shard, "held": held, "boundary": b})
        say(f"kill -9 and restart 1 s later: {victim.name} ({len(held)} shards, {self.short(shard)} among them) "
            f"{b - t:.1f} s before the {hms(b)} boundary")
        self.sleep_until(t + self.ttl + 2 * self.renew)

    def owned_consistency(self, label):
        """Live leases per holder in the database against each running node's shards_owned (twice, a
        renew interval apart, so a round in progress is not taken for a mismatch)."""
        for attempt in range(2):
            rows = self.leases() or []
            db = collections.Counter(r["holder"] for r in rows if r["live"])
            seen = {}
            for node in self.live_nodes():
                status, data, _ = http("GET", f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=5)
                m = re.search(rf'^ecs_warden_cluster_shards_owned\{{[^}}]*node="{node.name}"[^}}]*\}} ([0-9.e+-]+)$', data.decode(errors="replace"), re.M)
                seen[node.name] = (db.get(node.name, 0), float(m.group(1)) if m else None)
            stray = {h: n for h, n in db.items() if h not in seen}
            if all(a == b for a, b in seen.values()) and not stray:
                break
            time.sleep(self.renew)
        self.consistency.append((time.time(), label, seen, stray))

    def round_freeze(self, b):
        self.sleep_until(b - 3.0)
        shard, victim, held = self.pick_owner()
        if victim is None:
            say("freeze: no owner to freeze")
            return
        t_stop = time.time()
        os.kill(victim.proc.pid, signal.SIGSTOP)
        victim.frozen = True
        say(f"SIGSTOP {victim.name} ({len(held)} shards) 3 s before the {hms(b)} boundary, for {2 * self.ttl:.0f} s")
        self.sleep_until(t_stop + 2 * self.ttl)
        os.kill(victim.proc.pid, signal.SIGCONT)
        victim.frozen = False
        t_cont = time.time()
        self.freezes.append({"t_stop": t_stop, "t_cont": t_cont, "node": victim.name, "shard": shard, "held": held, "boundary": b})
        say(f"SIGCONT {victim.name}")
        self.sleep_until(t_cont + self.renew + 3)

    def round_postgres(self, b):
        self.sleep_until(b - 5.0)
        t_down = time.time()
        self.pg.ctl("stop", "-m", "immediate", "-w")
        say(f"PostgreSQL stopped (immediate) 5 s before the {hms(b)} boundary, for {2 * self.ttl:.0f} s")
        self.sleep_until(t_down + self.ttl + 1)
        readyz_down = {n.name: http("GET", f"http://127.0.0.1:{n.metrics_port}/readyz", timeout=3)[0] for n in self.live_nodes()}
        self.sleep_until(t_down + 2 * self.ttl)
        self.pg.ctl("start", "-w", "-t", "60")
        t_up = time.time()
        say(f"PostgreSQL started again ({t_up - t_down:.1f} s down)")
        outage = {"t_down": t_down, "t_up": t_up, "boundary": b, "readyz_down": readyz_down}
        self.outages.append(outage)
        self.sleep_until(t_up + self.ttl)
        outage["readyz_up"] = {n.name: http("GET", f"http://127.0.0.1:{n.metrics_port}/readyz", timeout=3)[0] for n in self.live_nodes()}
        t = time.time()
        self.pg.ctl("restart", "-m", "immediate", "-w", "-t", "60")
        outage["restart"] = (t, time.time())
        say(f"pg_ctl restart -m immediate ({time.time() - t:.1f} s)")
        self.sleep_until(time.time() + self.renew + 2)
        t = time.time()
        killed = self.pg.rows("SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = 'warden' AND pid <> pg_backend_pid()")
        outage["terminated"] = (t, len(killed or []))
        say(f"pg_terminate_backend: {len(killed or [])} sessions of the warden database")

    def stable_holders(self, settle):
        """The holders once they stopped changing for `settle` seconds (bounded by 4 x settle)."""
        deadline = time.time() + 4 * settle
        last, since = self.holders(), time.time()
        while time.time() < deadline:
            time.sleep(0.5)
            now = self.holders()
            if now != last:
                last, since = now, time.time()
            elif time.time() - since >= settle:
                break
        return last

    def round_membership(self, b):
        newcomer = next((n for n in self.nodes.values() if not n.generations), None)
        before = self.stable_holders(3)
        if newcomer is not None:
            self.sleep_until(b + 3)
            t_join = time.time()
            newcomer.start("joins the cluster")
            after = self.stable_holders(self.renew * 2)
            moved = sorted(s for s in self.shards if before.get(s) != after.get(s))
            alive = len(self.live_nodes())
            self.membership.append({"event": f"{newcomer.name} joins", "t": t_join, "moved": moved, "nodes": alive,
                                    "limit": math.ceil(len(self.shards) / alive)})
            say(f"{newcomer.name} joined: {len(moved)} shard(s) moved ({', '.join(self.short(s) for s in moved) or 'none'})")
            before = after
        counts = collections.Counter(h for h in before.values() if h)
        leaver = max((n for n in self.live_nodes() if n is not newcomer), key=lambda n: counts.get(n.name, 0))
        held = {r["shard"]: r["epoch"] for r in (self.leases() or []) if r["holder"] == leaver.name and r["live"]}
        sent, exited, rc = leaver.terminate()
        say(f"SIGTERM {leaver.name} ({len(held)} shards): exited {('after %.2f s, status %s' % (exited - sent, rc)) if exited else 'NOT within 30 s'}")
        after = self.stable_holders(self.renew * 2)
        moved = sorted(s for s in self.shards if before.get(s) != after.get(s))
        alive = len(self.live_nodes())
        self.membership.append({"event": f"{leaver.name} leaves (SIGTERM)", "t": sent, "exited": exited, "rc": rc, "moved": moved,
                                "nodes": alive + 1, "limit": math.ceil(len(self.shards) / (alive + 1)), "held": held, "node": leaver.name})
        say(f"{leaver.name} left: {len(moved)} shard(s) moved")

    def short(self, shard):
        kind, _, rest = shard.partition(":")
        return self.names.get(rest, rest) if kind == "project" else shard

    # ------------------------------------------------------------------ the run
    def run(self):
        say(f"cluster soak: {self.minutes:g} min, lease TTL {self.ttl:g} s (renew every {self.renew:g} s), seed {self.seed}")
        self.make_schedules()
        self.pg = Postgres(self.repo, self.work, unused_port(self.ports))
        self.pg.start()
        say(f"PostgreSQL on 127.0.0.1:{self.pg.port} ({self.pg.dir})")
        self.start_sim()
        with open(os.path.join(self.work, "control-token"), "w") as f:
            f.write("cluster-soak-token-%016x\n" % self.rng.getrandbits(64))
        os.chmod(os.path.join(self.work, "control-token"), 0o600)
        for name in NODE_NAMES:
            node = Node(self, name)
            node.start_proxy()
            node.write_config()
            self.nodes[name] = node
        self.fleet_at_start = self.fleet()
        for name in NODE_NAMES[:3]:
            gen = self.nodes[name].start("first start")
            if not self.results.check(gen["ready"] is not None, f"{name} started and answered /v1/status "
                                      f"({(gen['ready'] or 0) - gen['start']:.1f} s)"):
                raise RuntimeError(f"{name} did not start: ...{open(self.nodes[name].log, errors='replace').read()[-700:]}")
        threading.Thread(target=self.watch_exits, daemon=True).start()
        owned = self.wait_all_owned(self.ttl * 3)
        self.ready_at = time.time()
        if not self.results.check(owned is not None, f"every shard ({len(self.shards)}) owned after the start "
                                  f"({dict(collections.Counter((owned or {}).values())) if owned else self.holders()})"):
            raise RuntimeError("the shards were not all owned within 3 x TTL of the start")
        threading.Thread(target=self.sample_leases, daemon=True).start()
        threading.Thread(target=self.watch_fleet, daemon=True).start()
        self.check_cluster_endpoint("at the start")

        rounds = ["kill", "freeze", "postgres", "membership"]
        total = max(len(rounds), int(self.minutes) - 1)
        while len(rounds) < total:
            rounds.append({4: "restart", 1: "freeze"}.get(len(rounds) % 8, "kill"))
        say(f"rounds: {', '.join(rounds)}")
        # A first boundary of normal work before the faults.
        first = self.next_boundary(time.time() + 20)
        for kind in rounds:
            b = self.next_boundary(max(first, time.time() + 6))
            first = 0
            say(f"--- round {kind} at the {hms(b)} boundary")
            getattr(self, f"round_{kind}")(b)
            self.owned_consistency(f"after the {kind} round at {hms(b)}")
            if time.time() > self.deadline - 150:
                say("stopping the rounds early: the time bound is near")
                break
        # Settle: the boundaries after the last fault are acted on, their jobs end.
        last = self.next_boundary(time.time() + 5)
        self.sleep_until(last + 40)
        self.end_at = time.time()
        self.check_cluster_endpoint("at the end")
        self.check_metrics()
        self.check_name_conflict()
        self.stop_flag.set()
        time.sleep(0.5)
        self.final_fleet = self.fleet()
        self.final_stops = []
        for node in self.nodes.values():
            if node.running:
                sent, exited, rc = node.terminate()
                self.final_stops.append((node.name, sent, exited, rc))
                self.results.check(exited is not None and rc == 0, f"{node.name} stops on SIGTERM with status 0 "
                                   f"({('%.2f s' % (exited - sent)) if exited else 'not within 30 s'}, status {rc})")
        self.collect()
        self.save()
        self.analyse()

    # ------------------------------------------------------------------ the data the analysis reads
    SAVED = ["minutes", "ttl", "renew", "seed", "shards", "names", "project_ids", "boundaries", "kills", "freezes", "outages",
             "membership", "unexpected", "samples", "ready_at", "end_at", "db", "restarts", "consistency"]

    def collect(self):
        """The journal, the handovers and the failed sub-jobs, read once the replicas stopped."""
        pg = self.pg
        self.db = {
            "journal": pg.rows("SELECT seq, at, kind, loop, project, subject, action, client_token, job_id, servers, result, intent_seq, "
                               "boundary, retry_of, shard, node, epoch FROM journal ORDER BY seq", timeout=60) or [],
            "handovers": pg.rows("SELECT shard, from_node, to_node, epoch, reason, extract(epoch FROM at)::float8 AS at "
                                 "FROM shard_handovers ORDER BY id", timeout=30) or [],
            "failed_subjobs": pg.rows("SELECT intent_seq, server_id FROM server_outcomes WHERE result = 'failed'") or [],
        }

    def save(self):
        """WORK/cluster-soak-data.json: `cluster_soak.py --analyse WORK` runs the analysis again from it."""
        data = {name: getattr(self, name) for name in self.SAVED}
        data["fleets"] = {"start": fleet_json(self.fleet_at_start), "final": fleet_json(self.final_fleet),
                          "before": {str(b): fleet_json(f) for b, f in self.before.items()}}
        with open(os.path.join(self.work, "cluster-soak-data.json"), "w") as f:
            json.dump(data, f)

    def load(self):
        with open(os.path.join(self.work, "cluster-soak-data.json")) as f:
            data = json.load(f)
        for name in self.SAVED:
            setattr(self, name, data[name])
        self.fleet_at_start = fleet_from_json(data["fleets"]["start"])
        self.final_fleet = fleet_from_json(data["fleets"]["final"])
        self.before = {float(b): fleet_from_json(f) for b, f in data["fleets"]["before"].items()}
        self.ids = {v: k for k, v in self.names.items()}

    # ------------------------------------------------------------------ checks on the live cluster
    def check_cluster_endpoint(self, when):
        node = self.live_nodes()[0]
        data = fetch_json(node.control + "/v1/cluster")
        ok = (isinstance(data, dict) and data.get("mode") == "cluster" and data.get("node") == node.name
              and len(data.get("leases", [])) == len(self.shards) and abs((data.get("lease_ttl_seconds") or 0) - self.ttl) < 0.01
              and {n.name for n in self.live_nodes()} <= {x.get("name") for x in data.get("nodes", []) if x.get("alive")})
        self.results.check(ok, f"GET /v1/cluster on {node.name} {when}: mode cluster, {len(self.shards)} leases, every running node alive"
                           + ("" if ok else f"; got {json.dumps(data)[:600] if data is not None else 'no answer'}"))
        out = subprocess.run([self.warden, "ctl", "cluster", "--url", node.control], capture_output=True, text=True, timeout=20)
        self.results.check(out.returncode == 0 and node.name in out.stdout,
                           f"ecs-warden ctl cluster {when}: exit {out.returncode}" + ("" if out.returncode == 0 else f" {out.stderr.strip()[-300:]}"))

    def check_metrics(self):
        # The node holding the most live leases (one with none has no ecs_warden_cluster_shard_epoch series).
        counts = collections.Counter(r["holder"] for r in (self.leases() or []) if r["live"])
        node = max(self.live_nodes(), key=lambda n: counts.get(n.name, 0))
        status, data, _ = http("GET", f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=5)
        text = data.decode(errors="replace") if status == 200 else ""
        wanted = ["ecs_warden_cluster_nodes_alive", "ecs_warden_cluster_shards_configured", "ecs_warden_cluster_shards_owned",
                  "ecs_warden_cluster_shards_unowned", "ecs_warden_cluster_handovers_total", "ecs_warden_cluster_renew_failures_total"]
        if counts.get(node.name):
            wanted.append("ecs_warden_cluster_shard_epoch")
        missing = [m for m in wanted if not re.search(rf"^{m}\{{[^}}]*node=\"{node.name}\"", text, re.M)]
        self.results.check(status == 200 and not missing, f"/metrics of {node.name} has every cluster series with node=\"{node.name}\" (missing: {missing})")
        if text and subprocess.run(["which", "promtool"], capture_output=True).returncode == 0:
            lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
            problems = [line for line in (lint.stdout + lint.stderr).splitlines() if line.strip()]
            mine = [line for line in problems if "ecs_warden_cluster_" in line]
            if len(mine) < len(problems):
                say(f"promtool check metrics, outside cluster mode's series (not checked here): {[p for p in problems if p not in mine]}")
            self.results.check(lint.returncode in (0, 3) and not mine,
                               f"promtool check metrics: no parse error and no lint warning on the cluster series (exit {lint.returncode}; {mine})")

    def check_name_conflict(self):
        """A copy of a live node's configuration started as a second process (its own state
        directory and ports, the same cluster.node and ECS endpoint, so any call it made would be
        in the node's proxy records): it stands by — /readyz 503 naming the node's process, no
        shard, the conflict gauge at 1 — while the node keeps its shards under the same epochs;
        stopped, it leaves the node alive (not marked left)."""
        check = self.results.check
        counts = collections.Counter(r["holder"] for r in (self.leases() or []) if r["live"])
        node = max(self.live_nodes(), key=lambda n: counts.get(n.name, 0))

        def held():
            return {r["shard"]: r["epoch"] for r in (self.leases() or []) if r["holder"] == node.name and r["live"]}

        before = held()
        metrics_port, control_port = unused_port(self.ports), unused_port(self.ports)
        state_dir = os.path.join(self.work, f"state-{node.name}-copy")
        os.makedirs(state_dir, exist_ok=True)
        with open(node.config) as f:
            text = f.read()
        text = text.replace(f"state_dir: {node.state_dir}", f"state_dir: {state_dir}")
        text = text.replace(f'metrics: "127.0.0.1:{node.metrics_port}"', f'metrics: "127.0.0.1:{metrics_port}"')
        text = text.replace(f'control: "127.0.0.1:{node.control_port}"', f'control: "127.0.0.1:{control_port}"')
        config = os.path.join(self.work, f"{node.name}-copy.yaml")
        with open(config, "w") as f:
            f.write(text)
        env = dict(os.environ)
        env.update(ECS_WARDEN_STATE_DB_URL=self.pg.url, CLUSTER_SOAK_AK=self.ak, CLUSTER_SOAK_SK=self.sk)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("CREDENTIALS_DIRECTORY", None)
        started = time.time()
        copy = self.spawn([self.warden, "run", "--config", config], os.path.join(self.work, f"{node.name}-copy.log"), env=env)

        def standing_by():
            status, data, _ = http("GET", f"http://127.0.0.1:{metrics_port}/readyz", timeout=2)
            return data.decode(errors="replace") if status == 503 and b"uses cluster.node" in data else None

        reason = poll(self.ttl * 3, standing_by)
        check(reason is not None and f"pid {node.proc.pid} " in reason,
              f"a second process with {node.name}'s cluster.node stands by within {time.time() - started:.1f} s, "
              f"/readyz 503 naming pid {node.proc.pid}: {reason}")
        status, data, _ = http("GET", f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        text = data.decode(errors="replace") if status == 200 else ""
        gauges = {m: re.search(rf'^{m}\{{node="{node.name}"\}} (\S+)$', text, re.M) for m in
                  ["ecs_warden_cluster_node_name_conflict", "ecs_warden_cluster_shards_owned"]}
        values = {m: (float(g.group(1)) if g else None) for m, g in gauges.items()}
        check(values == {"ecs_warden_cluster_node_name_conflict": 1.0, "ecs_warden_cluster_shards_owned": 0.0},
              f"the process standing by reports the conflict and holds nothing ({values})")
        after = held()
        check(after == before and node.running, f"{node.name} kept its {len(before)} shard(s) under the same epochs meanwhile "
                                                 f"({'same' if after == before else f'{before} -> {after}'})")
        t = time.time()
        os.kill(copy.pid, signal.SIGTERM)
        try:
            rc = copy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(copy.pid, signal.SIGKILL)
            rc = copy.wait()
        rows = self.pg.rows(f"SELECT left_at IS NULL AS alive FROM cluster_nodes WHERE name = '{node.name}'") or []
        check(rc == 0 and rows == [{"alive": True}] and held() == before,
              f"stopped ({time.time() - t:.2f} s, status {rc}), it leaves {node.name} alive and its shards where they were ({rows})")
        say(f"name conflict: a copy of {node.name} stood by; {len(before)} shard(s) stayed with {node.name}")

    # ------------------------------------------------------------------ analysis
    def analyse(self):
        check = self.results.check
        say("=" * 100)
        say("analysis")
        journal, handovers = self.db["journal"], self.db["handovers"]
        failed_subjobs = {(r["intent_seq"], r["server_id"]) for r in self.db["failed_subjobs"]}
        say(f"journal: {len(journal)} entries; shard_handovers: {len(handovers)} rows")
        intents = [e for e in journal if e["kind"] == "intent" and e["loop"] == "schedule"]
        intent_by_token = {e["client_token"]: e for e in journal if e["kind"] == "intent" and e["client_token"]}
        outcomes = collections.defaultdict(list)
        for e in journal:
            if e["kind"] == "outcome" and e["intent_seq"] is not None:
                outcomes[e["intent_seq"]].append(e)
        by_shard = collections.defaultdict(list)  # shard -> [(at, to_node, epoch, reason)]
        for h in handovers:
            by_shard[h["shard"]].append((h["at"], h["to_node"], h["epoch"], h["reason"]))

        def holder_at(shard, t):
            """(node, epoch) holding the shard's current term at time t per shard_handovers (None: nobody)."""
            current = (None, None)
            for at, to, epoch, _ in by_shard.get(shard, []):
                if at > t:
                    break
                current = (to, epoch)
            return current

        def superseded_at(shard, epoch):
            return min((at for at, _, e, _ in by_shard.get(shard, []) if e > epoch), default=None)

        calls = []
        for name in NODE_NAMES:
            try:
                with open(os.path.join(self.work, f"proxy-{name}.jsonl")) as f:
                    calls += [dict(json.loads(line), sender=name) for line in f if line.strip()]
            except OSError:
                pass
        calls.sort(key=lambda r: r["t0"])
        per_sender = collections.Counter(c["sender"] for c in calls)
        say(f"batch calls at the proxies: {len(calls)} ({', '.join(f'{n} {per_sender[n]}' for n in NODE_NAMES)})")

        # ---- (2) kill -9 of an owner before a boundary
        say("-- kill -9 of a project's owner seconds before a boundary")
        limit = self.ttl + self.renew
        takeovers = []
        for i, k in enumerate(self.kills, 1):
            per_shard = {}
            for shard, epoch in k["held"].items():
                nxt = next(((at, to, e, reason) for at, to, e, reason in by_shard.get(shard, []) if e > epoch and at >= k["t"] - 0.5), None)
                per_shard[shard] = nxt
            taken = [v[0] - k["t"] for v in per_shard.values() if v]
            worst = max(taken) if len(taken) == len(per_shard) and taken else None
            shard = k["shard"]
            pid = shard.split(":", 1)[1]
            new = per_shard.get(shard)
            first_intent = next((e for e in intents if e["shard"] == shard and new and e["epoch"] >= new[2] and e["at"] >= k["t"]), None)
            acted = self.boundary_actions(intents, outcomes, calls, failed_subjobs, pid, k["boundary"])
            say(f"   kill #{i:<2} {hms(k['t'])} {k['node']} ({len(k['held'])} shards), {k['lead']:.1f} s before {hms(k['boundary'])}: "
                f"taken over after {('%.1f s' % worst) if worst is not None else 'NOT ALL'} (by "
                f"{', '.join(sorted({v[1] for v in per_shard.values() if v}))}); {self.short(shard)}: new epoch "
                f"{new[2] if new else '-'} at +{(new[0] - k['t']) if new else float('nan'):.1f} s, first intent at "
                f"+{(first_intent['at'] - k['t']) if first_intent else float('nan'):.1f} s; boundary: {acted['text']}")
            check(worst is not None and worst <= limit + 0.5,
                  f"kill #{i}: every shard of {k['node']} taken over within TTL + renew interval ({limit:g} s): "
                  f"{('%.1f s' % worst) if worst is not None else 'not all taken over'}")
            check(acted["ok"], f"kill #{i}: the {hms(k['boundary'])} boundary of {self.short(shard)} acted on exactly once ({acted['text']})")
            if worst is not None:
                takeovers.append(worst)
            k["first_intent"] = (first_intent["at"] - k["t"]) if first_intent else None
        if self.kills:
            required = 10 if self.minutes >= 20 else len(self.kills)
            check(len(takeovers) >= required, f"failovers measured: {len(takeovers)} of {len(self.kills)} kills (required {required})")

        # ---- (3) SIGSTOP across a boundary
        say("-- SIGSTOP of an owner for 2 x TTL across a boundary")
        for i, f in enumerate(self.freezes, 1):
            taken = {}
            for shard, epoch in f["held"].items():
                taken[shard] = next(((at, to, e) for at, to, e, _ in by_shard.get(shard, []) if e > epoch and at >= f["t_stop"]), None)
            during = [v for v in taken.values() if v and v[0] <= f["t_cont"]]
            late = [c for c in calls if c["sender"] == f["node"] and c["t0"] >= f["t_stop"]
                    and taken.get(f"project:{c['project_id']}") and c["t0"] >= taken[f"project:{c['project_id']}"][0]
                    and holder_at(f"project:{c['project_id']}", c["t0"])[0] != f["node"]]
            acted = self.boundary_actions(intents, outcomes, calls, failed_subjobs, f["shard"].split(":", 1)[1], f["boundary"])
            say(f"   freeze #{i} {f['node']} {hms(f['t_stop'])}..{hms(f['t_cont'])}: {len(during)}/{len(f['held'])} shards taken over "
                f"while frozen (after {', '.join('%.1f s' % (v[0] - f['t_stop']) for v in during) or '-'}); calls from it for those "
                f"shards after the takeover: {len(late)}; boundary of {self.short(f['shard'])}: {acted['text']}")
            check(len(during) == len(f["held"]), f"freeze #{i}: every shard of the frozen {f['node']} taken over while it was stopped "
                  f"({len(during)}/{len(f['held'])})")
            check(not late, f"freeze #{i}: no batch call from {f['node']} for a shard after the next epoch was acquired ({len(late)}"
                  + "".join(f"; {hms(c['t0'])} {c['action']} {self.names.get(c['project_id'])} token {c['token']}" for c in late[:5]) + ")")
            check(acted["ok"], f"freeze #{i}: the {hms(f['boundary'])} boundary of {self.short(f['shard'])} acted on exactly once ({acted['text']})")

        # ---- kill -9 and an immediate restart (systemd's Restart=)
        if self.restarts:
            say("-- kill -9 of an owner and a restart 1 s later (within the TTL)")
        for i, r in enumerate(self.restarts, 1):
            acted = self.boundary_actions(intents, outcomes, calls, failed_subjobs, r["shard"].split(":", 1)[1], r["boundary"])
            say(f"   restart #{i} {hms(r['t'])} {r['node']} ({len(r['held'])} shards) before {hms(r['boundary'])}: "
                f"boundary of {self.short(r['shard'])}: {acted['text']}")
            check(acted["ok"], f"restart #{i}: the {hms(r['boundary'])} boundary of {self.short(r['shard'])} acted on exactly once after "
                  f"{r['node']} was killed and restarted within the TTL ({acted['text']})")
        say("-- leases in the database against the shards each node works on (ecs_warden_cluster_shards_owned), after every round")
        bad = [(t, label, seen, stray) for t, label, seen, stray in self.consistency
               if stray or any(a != b for a, b in seen.values())]
        for t, label, seen, stray in bad[:6]:
            say(f"   {hms(t)} {label}: " + ", ".join(f"{n} {a} in the database / {b} on /metrics" for n, (a, b) in sorted(seen.items()))
                + (f"; live leases of nodes not running: {stray}" if stray else ""))
        check(self.consistency and not bad, f"after every round each running node works on exactly the live leases the database gives it, "
              f"and no stopped node holds a live lease ({len(bad)} of {len(self.consistency)} samples differ)")

        # ---- (4) PostgreSQL down, restarted, sessions terminated
        say("-- PostgreSQL stopped (immediate) across a boundary, restarted (immediate), sessions terminated")
        for i, o in enumerate(self.outages, 1):
            per_node = {}
            for c in calls:
                if o["t_down"] <= c["t0"] <= o["t_up"]:
                    per_node[c["sender"]] = max(per_node.get(c["sender"], 0), c["t0"] - o["t_down"])
            after_deadline = [c for c in calls if o["t_down"] + self.ttl < c["t0"] < o["t_up"]]
            back = self.reowned_after(o["t_up"])
            say(f"   outage #{i} {hms(o['t_down'])}..{hms(o['t_up'])}: last batch call per node after the stop: "
                f"{', '.join(f'{n} +{s:.1f} s' for n, s in sorted(per_node.items())) or 'none'}; every shard owned again "
                f"{('%.1f s' % back) if back is not None else 'NEVER'} after PostgreSQL came back; "
                f"restart -m immediate took {o['restart'][1] - o['restart'][0]:.1f} s; {o['terminated'][1]} sessions terminated")
            check(not after_deadline, f"outage #{i}: no batch call from any node later than the TTL ({self.ttl:g} s) after PostgreSQL "
                  f"went down ({len(after_deadline)})")
            check(o["readyz_down"] and all(v == 503 for v in o["readyz_down"].values()),
                  f"outage #{i}: every node not ready (/readyz 503) a TTL after PostgreSQL went down ({o['readyz_down']})")
            check(o["readyz_up"] and all(v == 200 for v in o["readyz_up"].values()),
                  f"outage #{i}: every node ready again (/readyz 200) a TTL after PostgreSQL came back ({o['readyz_up']})")
            check(back is not None and back <= self.ttl + self.renew,
                  f"outage #{i}: every shard owned again within TTL + renew interval after PostgreSQL came back "
                  f"({('%.1f s' % back) if back is not None else 'never'})")
            for label, t in (("restart -m immediate", o["restart"][1]), ("pg_terminate_backend", o["terminated"][0])):
                nb = self.next_boundary(t + 1)
                acted = [self.boundary_actions(intents, outcomes, calls, failed_subjobs, pid, nb) for pid in self.project_ids]
                if nb < self.end_at - 30:
                    check(all(a["ok"] for a in acted),
                          f"outage #{i}: the first boundary after the {label} ({hms(nb)}) acted on exactly once in every project "
                          f"({sum(a['ok'] for a in acted)}/{len(acted)})")

        # ---- (5) join and leave
        say("-- a node joins, a node leaves (SIGTERM)")
        sigterm_handover = []
        for m in self.membership:
            say(f"   {m['event']}: {len(m['moved'])} shard(s) moved (at most ceil({len(self.shards)}/{m['nodes']}) = {m['limit']})")
            check(len(m["moved"]) <= m["limit"], f"{m['event']}: at most ceil(shards/nodes) = {m['limit']} shards moved ({len(m['moved'])})")
            if "held" in m:
                check(m["exited"] is not None and m["rc"] == 0, f"{m['event']}: exited with status 0 "
                      f"({('after %.2f s' % (m['exited'] - m['t'])) if m['exited'] else 'did not exit'}, status {m['rc']})")
                gaps, owned_again = [], []
                for shard, epoch in m["held"].items():
                    nxt = next((at for at, to, e, _ in by_shard.get(shard, []) if e > epoch and to), None)
                    gaps.append((nxt - m["exited"]) if nxt is not None and m["exited"] else None)
                    owned_again.append(nxt)
                worst = None if (None in gaps or not gaps) else max(gaps)
                if worst is not None:
                    sigterm_handover.append((max(owned_again) - m["t"], worst))
                say(f"   {m['node']}'s {len(gaps)} shards owned again after its exit: "
                    + ", ".join(("%+.2f s" % g) if g is not None else "never" for g in gaps))
                check(worst is not None and worst <= 1.0, f"{m['event']}: its shards owned again within 1 s of its exit "
                      f"({('%.2f s' % worst) if worst is not None else 'not all'})")
        # no shard without an owner longer than the TTL (sampled every 200 ms; PostgreSQL outages excluded)
        gaps = self.unowned_gaps()
        worst_gap = max((g[2] - g[1] for g in gaps), default=0.0)
        say(f"   samples of shard_leases: {sum(1 for _, s in self.samples if s is not None)} "
            f"({sum(1 for _, s in self.samples if s is None)} unanswered); unowned stretches: {len(gaps)}, longest {worst_gap:.1f} s"
            + "".join(f"\n{' ' * 20}{self.short(s)} {hms(a)}..{hms(b)} ({b - a:.1f} s)" for s, a, b in sorted(gaps, key=lambda g: g[1] - g[2])[:5]))
        check(worst_gap <= self.ttl, f"no shard without a live lease longer than the TTL while PostgreSQL was up (longest {worst_gap:.1f} s)")

        # ---- every call: journaled, sent by the current holder
        say("-- every batch call against the journal and the leases")
        unjournaled = [c for c in calls if c.get("token") not in intent_by_token]
        stale_epoch, not_holder = [], []
        for c in calls:
            intent = intent_by_token.get(c.get("token"))
            shard = f"project:{c['project_id']}"
            if intent and intent.get("shard") and intent.get("epoch") is not None and intent["node"] == c["sender"]:
                sup = superseded_at(intent["shard"], intent["epoch"])
                if sup is not None and c["t0"] > sup:
                    stale_epoch.append((c, sup))
            holder, _ = holder_at(shard, c["t0"])
            if holder != c["sender"]:
                not_holder.append((c, holder))
        resent = [c for c in calls if intent_by_token.get(c.get("token")) and intent_by_token[c["token"]]["node"] != c["sender"]]
        say(f"   calls re-sending another node's intent under its token (a takeover's recovery): {len(resent)}"
            + "".join(f"; {hms(c['t0'])} {c['sender']} re-sent {intent_by_token[c['token']]['node']}#{intent_by_token[c['token']]['epoch']}'s "
                      f"{c['action']} of {self.names.get(c['project_id'])}" for c in resent[:5]))
        check(not unjournaled, f"every batch call carries the X-Client-Token of a journaled intent ({len(unjournaled)} without)")
        check(not stale_epoch, f"calls after deadline: no call under a deposed epoch's token arrived after the next epoch was acquired "
              f"({len(stale_epoch)}" + "".join(f"; {hms(c['t0'])} {c['sender']} {c['action']} {self.names.get(c['project_id'])} "
                                               f"(superseded {hms(s)})" for c, s in stale_epoch[:5]) + ")")
        check(not not_holder, f"every batch call came from the node holding the shard's current epoch at its arrival ({len(not_holder)}"
              + "".join(f"; {hms(c['t0'])} from {c['sender']}, holder {h}" for c, h in not_holder[:5]) + ")")
        missing_node = [e for e in intents if not (e.get("shard") and e.get("node") and e.get("epoch") is not None)]
        check(not missing_node, f"every scheduler intent carries shard, node and epoch ({len(missing_node)} without)")

        # ---- journal: closing outcomes, duplicates
        say("-- the journal")
        open_intents, twice_closed = [], []
        for e in intents:
            outs = outcomes.get(e["seq"], [])
            finals = [o for o in outs if o["result"] in FINAL_RESULTS]
            if len(finals) > 1:
                twice_closed.append(e)
            elif not finals:
                open_intents.append((e, [o["result"] for o in outs]))
        explained = [(e, r) for e, r in open_intents if e["at"] > self.end_at - 60]
        unexplained = [(e, r) for e, r in open_intents if e["at"] <= self.end_at - 60]
        say(f"   scheduler intents: {len(intents)}; closed once: {len(intents) - len(open_intents) - len(twice_closed)}; open: "
            f"{len(open_intents)} ({len(explained)} written in the last minute, jobs still followed)")
        for e, r in unexplained[:8]:
            say(f"      open: seq {e['seq']} {hms(e['at'])} {e['node']} epoch {e['epoch']} {e['action']} {e['subject']}/{e['project']} "
                f"{len(e['servers'] or [])} servers, outcomes {r or 'none'}")
        check(not twice_closed, f"no intent with two closing outcomes ({len(twice_closed)})")
        check(not unexplained, f"every intent older than a minute has its closing outcome ({len(unexplained)} open)")
        per_key = collections.defaultdict(set)
        for e in intents:
            if e["retry_of"] is None and e["boundary"] is not None:
                for server in e["servers"] or []:
                    per_key[(e["action"], server, round(e["boundary"]))].add(e["client_token"])
        dup = {k: v for k, v in per_key.items() if len(v) > 1}
        check(not dup, f"no two intents (different tokens) for the same server, action and boundary ({len(dup)}"
              + "".join(f"; {a} {s} at {hms(b)}: {len(v)} tokens" for (a, s, b), v in list(dup.items())[:5]) + ")")

        # ---- boundaries acted on, double actions
        say("-- boundaries and actions")
        expected, acted_n, missed = 0, 0, []
        pairs = {k for k, v in (self.fleet_at_start or {}).items() if v}
        for pid, schedule in sorted(pairs):
            for b, action in self.boundaries[schedule]:
                if not (self.ready_at + 10 <= b <= self.end_at - 35) or not self.needs(pid, schedule, b, action):
                    continue
                expected += 1
                if any(self.same_project(e["project"], pid) and e["subject"] == schedule and e["boundary"] is not None
                       and abs(e["boundary"] - b) < 1 for e in intents):
                    acted_n += 1
                else:
                    missed.append((self.names[pid], schedule, b))
        say(f"   boundaries acted on / expected: {acted_n} / {expected}"
            + "".join(f"\n{' ' * 20}missed: {p} {s} {hms(b)}" for p, s, b in missed[:8]))
        check(expected > 0 and acted_n == expected, f"boundaries acted on / expected: {acted_n} / {expected}")
        doubles = self.double_actions(calls, intent_by_token, failed_subjobs)
        say(f"   double actions: {len(doubles)}" + "".join(f"\n{' ' * 20}{d}" for d in doubles[:8]))
        check(not doubles, f"no server stopped (or started) twice: {len(doubles)} double actions")
        final = self.final_fleet
        wrong = self.wrong_state(final)
        check(final is not None and not wrong, f"the fleet converged: every scheduled server in its schedule's state after the last "
              f"boundary ({len(wrong)} not" + "".join(f"; {w}" for w in wrong[:5]) + ")")

        # ---- processes
        check(not self.unexpected, f"no replica exited by itself ({len(self.unexpected)}"
              + "".join(f"; {n} status {rc}: ...{tail[-200:]!r}" for n, rc, tail in self.unexpected) + ")")

        # ---- figures
        say("=" * 100)
        say("figures")
        say(f"   failovers (kill -9): {len(takeovers)}; take-over time min / median / max: "
            + (f"{min(takeovers):.1f} / {statistics.median(takeovers):.1f} / {max(takeovers):.1f} s" if takeovers else "-")
            + f" (TTL {self.ttl:g} s + renew interval {self.renew:g} s = {limit:g} s)")
        firsts = [k["first_intent"] for k in self.kills if k.get("first_intent") is not None]
        if firsts:
            say(f"   kill -9 to the new owner's first intent on the project: min / median / max {min(firsts):.1f} / "
                f"{statistics.median(firsts):.1f} / {max(firsts):.1f} s")
        say(f"   freezes (SIGSTOP 2 x TTL): {len(self.freezes)}; PostgreSQL outages: {len(self.outages)}")
        say("   SIGTERM handover time (SIGTERM sent -> every shard of the node owned again; relative to its exit): "
            + (", ".join(f"{a:.2f} s ({b:+.2f} s)" for a, b in sigterm_handover) or "-"))
        say(f"   boundaries acted on / expected: {acted_n} / {expected}")
        say(f"   double actions: {len(doubles)}")
        say(f"   calls after deadline: {len(stale_epoch)} (calls from a node not holding the current epoch: {len(not_holder)})")
        say(f"   longest shard without a live lease (PostgreSQL up): {worst_gap:.1f} s")

    # ------------------------------------------------------------------ analysis helpers
    def same_project(self, value, pid):
        return value == pid or value == self.names.get(pid)

    def boundary_actions(self, intents, outcomes, calls, failed_subjobs, pid, b):
        """Whether boundary b of project pid was acted on exactly once: at least one intent for it (for
        every schedule with a boundary then and servers in the project), no server in two intents of it
        under different tokens (retries of failed sub-jobs aside), no server in two accepted jobs."""
        schedules = [s for s, a in self.schedules_at(b) if self.needs(pid, s, b, a)]
        mine = [e for e in intents if self.same_project(e["project"], pid) and e["boundary"] is not None and abs(e["boundary"] - b) < 1]
        tokens = {e["client_token"] for e in mine}
        per_server = collections.defaultdict(set)
        for e in mine:
            if e["retry_of"] is None:
                for s in e["servers"] or []:
                    per_server[s].add(e["client_token"])
        jobs = collections.defaultdict(set)
        for c in calls:
            if c.get("token") in tokens and c.get("job_id"):
                for s in c.get("servers") or []:
                    jobs[s].add(c["job_id"])
        twice = [s for s, v in per_server.items() if len(v) > 1]
        twice_jobs = [s for s, v in jobs.items() if len(v) > 1 and not any(
            (e["seq"], s) in failed_subjobs for e in mine if s in (e["servers"] or []))]
        covered = {e["subject"] for e in mine}
        missing = [s for s in schedules if s not in covered]
        nodes = sorted({f"{e['node']}#{e['epoch']}" for e in mine})
        text = (f"{len(mine)} intent(s) by {', '.join(nodes) or 'nobody'}, {sum(len(v) for v in per_server.values())} servers, "
                f"{len({j for v in jobs.values() for j in v})} job(s)" + (f", NOT ACTED: {missing}" if missing else "")
                + (f", {len(twice)} servers in two intents" if twice else "") + (f", {len(twice_jobs)} servers in two jobs" if twice_jobs else ""))
        return {"ok": not missing and not twice and not twice_jobs, "text": text}

    def reowned_after(self, t):
        for ts, snap in self.samples:
            if ts >= t and snap is not None and len(snap) == len(self.shards) and all(live for _, _, live in snap.values()):
                return ts - t
        return None

    def unowned_gaps(self):
        """(shard, from, to) stretches of samples where the shard had no live lease, PostgreSQL answering."""
        gaps, start = [], {}
        down = [(o["t_down"], o["t_up"]) for o in self.outages]
        for ts, snap in self.samples:
            if snap is None:
                start = {}  # PostgreSQL not answering: restart every stretch after it
                continue
            for shard in self.shards:
                holder, _, live = snap.get(shard, (None, None, False))
                if not live:
                    start.setdefault(shard, ts)
                elif shard in start:
                    gaps.append((shard, start.pop(shard), ts))
        end = self.samples[-1][0] if self.samples else time.time()
        gaps += [(s, a, end) for s, a in start.items()]
        return [g for g in gaps if not any(d <= g[1] <= u + 1 for d, u in down)]

    def double_actions(self, calls, intent_by_token, failed_subjobs):
        """Servers acted on twice: per server, two accepted jobs in a row with the same action (the
        earlier one not failed for that server), by the timeline of arrival at the proxies."""
        timeline = collections.defaultdict(list)
        seen = set()
        for c in calls:
            if not c.get("job_id") or c["job_id"] in seen or c.get("action") not in ("stop", "start"):
                continue
            seen.add(c["job_id"])
            intent = intent_by_token.get(c.get("token"))
            for s in c.get("servers") or []:
                failed = intent is not None and (intent["seq"], s) in failed_subjobs
                timeline[s].append((c["t0"], c["action"], c["job_id"], failed, c["sender"]))
        doubles = []
        for server, events in timeline.items():
            last = None
            for t, action, job, failed, sender in sorted(events):
                if last and last[1] == action:
                    doubles.append(f"{server}: {action} job {last[2]} ({last[4]}, {hms(last[0])}) then {job} ({sender}, {hms(t)})")
                if not failed:
                    last = (t, action, job, failed, sender)
        return doubles

    def wrong_state(self, fleet):
        if fleet is None:
            return ["the fleet could not be read"]
        now = self.end_at
        wrong = []
        for (pid, schedule), servers in fleet.items():
            latest = max(((b, a) for b, a in self.boundaries[schedule] if b <= now - 30), default=None)
            if latest is None or (pid, schedule) not in (self.fleet_at_start or {}):
                continue
            want = "SHUTOFF" if latest[1] == "stop" else "ACTIVE"
            for sid, status in servers.items():
                if status in ("ACTIVE", "SHUTOFF") and status != want and (self.fleet_at_start or {}).get((pid, schedule), {}).get(sid) in ("ACTIVE", "SHUTOFF"):
                    wrong.append(f"{self.names[pid]} {schedule} {sid} {status} (want {want})")
        return wrong

    def cleanup(self):
        self.stop_flag.set()
        for node in self.nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                try:
                    os.kill(node.proc.pid, signal.SIGCONT)
                    node.proc.terminate()
                    node.proc.wait(timeout=15)
                except (OSError, subprocess.TimeoutExpired):
                    node.proc.kill()
        for proc in self.children:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if getattr(self, "pg", None) is not None:
            self.pg.stop()


def main():
    if sys.argv[1] == "--analyse":  # again, from a finished run's WORK/cluster-soak-data.json
        soak = ClusterSoak(sys.argv[2], None)
        soak.load()
        soak.analyse()
        return soak.results.finish(sys.argv[2])
    work, bin_dir = sys.argv[1], sys.argv[2]
    Log.file = open(os.path.join(work, "cluster-soak.log"), "a")
    soak = ClusterSoak(work, bin_dir)
    # SIGTERM (the wrapper's bound, the trap) interrupts like ^C; cleanup runs either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        soak.run()
    except KeyboardInterrupt:
        soak.results.check(False, "the cluster soak was interrupted (SIGINT or SIGTERM)")
    except Exception as error:  # a broken set-up or scenario: report it as a failed check
        traceback.print_exc()
        soak.results.check(False, f"the cluster soak aborted: {error!r}")
    try:
        soak.cleanup()
    except Exception as error:
        say(f"cleanup: {error!r}")
    return soak.results.finish(work)


if __name__ == "__main__":
    sys.exit(main())
