#!/usr/bin/env python3
"""Scale benchmark of ecs-warden against ecs-sim: one full pass, its API calls against the minimum
the API allows, the official SDK as a baseline, schedule precision, and the daemon at rest
(/metrics latency, idle CPU, start-up to READY).

Called by Benchmarks/warden-bench.sh (which builds the binaries and the SDK's venv); it can also be
run on its own:

    python3 Benchmarks/warden_bench.py --warden .build/release/ecs-warden --sim .build/release/ecs-sim \\
        --sdk-python /tmp/ecs-warden-bench-venv/bin/python

Phases, all against one simulator (loopback only):
  1. ecs-sim with PROJECTS x SERVERS servers and FLAVORS flavors; project ids from GET /_sim/state.
  2. A configuration for every project (one account, credentials from the environment; one region;
     the fleet's schedules office-hours, weeknights and lab; state in a temporary directory).
  3. `ecs-warden run --once` under /usr/bin/time -v; its API calls per loop from the simulator's
     request log, split by the loops' "pass done" log lines (--once runs quota, flavors, schedule,
     stuck, maintenance in sequence), against the minimum.
  4. Benchmarks/sdk_baseline.py (official SDK only) doing the same reads, under /usr/bin/time -v.
  5. The daemon in run mode: start-up to READY=1 ($NOTIFY_SOCKET), first passes, idle CPU over a
     window without passes (the jobs loop's empty polls aside), /metrics latency at rest and during a
     full pass, memory, SIGTERM.
  6. Schedule precision: the daemon restarted with two schedules whose boundaries come every whole
     minute (one stops while the other starts), for servers re-tagged through the API; the delay
     from each boundary to the BatchStopServers calls in the request log.

Standard library only. Exit status: 0 when every measurement was taken (goals met or not), 1 on an
error (a process did not start or stop, a request failed, a loop failed, a phase timed out).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import http.client
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_common, next to this script
from bench_common import (SEPARATOR, BenchError, Http, Simulator, fmt_int, iam_token, load_average,  # noqa: E402
                          make_logger, percentile, print_table, process_cpu_seconds, process_memory_mib,
                          run_main, stop_process, system_busy_seconds, verdict)

GOAL_PASS_SECONDS = 5.0
GOAL_PASS_MB = 150.0
GOAL_SDK_RATIO = 5.0
GOAL_STOP_DELAY_S = 1.0
GOAL_SCRAPE_P99_MS = 10.0
GOAL_FLEET = 100_000
# Issue 12: CPU and peak memory of the whole --once pass, per fleet size (and the SDK CPU ratio).
GOAL_PASS_CPU_S = {100_000: 0.5, 1_000_000: 6.0}
GOAL_PASS_PEAK_MB = {100_000: 60.0, 1_000_000: 300.0}
GOAL_SDK_CPU_RATIO = 15.0
PAGE_MAX = 1000  # the API's largest page of server details
LOOP_ORDER = ["quota", "flavors", "schedule", "stuck", "maintenance"]  # the order of `run --once`
# Loops that wake often but read nothing while they have no work (the jobs loop, every 10 s by
# default, follows the jobs of the daemon's own calls): the idle window is chosen between the passes
# of the other loops, and these loops' empty passes inside it are counted apart (their CPU is part of
# the idle CPU; an API call from them still disturbs the window).
IDLE_POLLING_LOOPS = {"jobs"}
SCHEDULE_TAG = "warden-schedule"
FLEET_SCHEDULES = ["office-hours", "weeknights", "lab"]  # what ecs-sim's fleet generator tags with

log = make_logger("warden-bench")


# --------------------------------------------------------------------------------------------
# Child processes: each in its own session (so its whole group can be signalled), with a
# parent-death signal, and registered so that every exit path stops it.

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
CHILDREN: list[subprocess.Popen] = []


def _child_setup() -> None:
    try:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:  # noqa: BLE001 - best effort
        pass


def spawn(args: list[str], **kwargs: object) -> subprocess.Popen:
    proc = subprocess.Popen(args, start_new_session=True, preexec_fn=_child_setup, **kwargs)  # type: ignore[call-overload]
    CHILDREN.append(proc)
    return proc


def cleanup_children() -> None:
    for proc in reversed(CHILDREN):
        if proc.poll() is None:
            stop_process(proc, timeout=5.0)


# --------------------------------------------------------------------------------------------
# Parsing: GNU time's figures, ISO dates


def parse_time_v(path: str) -> dict[str, float]:
    """The figures of GNU time -v."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError as error:
        raise BenchError(f"cannot read /usr/bin/time output {path}: {error}")
    result: dict[str, float] = {}
    for key, pattern in (("user", r"User time \(seconds\): ([\d.]+)"), ("sys", r"System time \(seconds\): ([\d.]+)"),
                         ("max_rss_kb", r"Maximum resident set size \(kbytes\): (\d+)"), ("exit", r"Exit status: (\d+)")):
        match = re.search(pattern, text)
        if match:
            result[key] = float(match.group(1))
    match = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    if match:
        seconds = 0.0
        for part in match.group(1).split(":"):
            seconds = seconds * 60 + float(part)
        result["wall"] = seconds
    if "signal" in text and "Command terminated by signal" in text:
        result["signal"] = float(re.search(r"signal (\d+)", text).group(1))  # type: ignore[union-attr]
    return result


def parse_iso(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# The simulator's request log


class RequestLog:
    """The simulator's request log (GET /_sim/requests?since=N)."""

    def __init__(self, http_: Http):
        self.http = http_

    def end(self) -> int:
        state = self.http.json("GET", "/_sim/state")
        return int(state["requests_logged"])  # type: ignore[index]

    def since(self, index: int) -> list[dict]:
        document = self.http.json("GET", f"/_sim/requests?since={index}")
        return list(document["requests"])  # type: ignore[index]


# --------------------------------------------------------------------------------------------
# Configuration


def q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def fleet_zone(now: float) -> tuple[str, int]:
    """A fixed-offset IANA zone in which it is about 13:00 now: the fleet's schedules (boundaries at
    06:00, 08:00, 09:00, 18:00, 19:00 and 20:00 local) are then hours away, so the measured passes
    are read-only and no boundary wakes the daemon during the idle measurement."""
    hour = dt.datetime.fromtimestamp(now, dt.timezone.utc).hour
    offset = (13 - hour) % 24
    if offset > 14:
        offset -= 24
    if offset == 0:
        return "Etc/GMT", 0
    # POSIX sign convention: Etc/GMT-3 is UTC+3.
    return (f"Etc/GMT-{offset}" if offset > 0 else f"Etc/GMT+{-offset}"), offset


def fleet_schedules_yaml(zone: str) -> list[str]:
    return [
        "  office-hours:",
        f"    timezone: {q(zone)}",
        "    periods:",
        '      - {days: mon-fri, start: "08:00", stop: "19:00"}',
        "    skip_dates: [2026-12-24, 2026-12-25, 2026-12-31]",
        "    manual_actions: boundaries-only",
        "    mode: stop-and-start",
        "  weeknights:",
        f"    timezone: {q(zone)}",
        "    periods:",
        '      - {days: mon-fri, start: "20:00", stop: "06:00"}   # overnight',
        "    mode: stop-and-start",
        "  lab:",
        f"    timezone: {q(zone)}",
        "    periods:",
        '      - {days: weekdays, start: "09:00", stop: "18:00"}',
        "    mode: stop-only",
    ]


def minute_of_day(epoch: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    return f"{moment.hour:02d}:{moment.minute:02d}"


def precision_schedule_yaml(name: str, boundaries: list[float], first: int) -> list[str]:
    """A UTC schedule that stops at boundaries[first], first+2, … and starts at first+1, first+3, …"""
    stops = [boundaries[i] for i in range(first, len(boundaries), 2)]
    starts = [boundaries[i] for i in range(first + 1, len(boundaries), 2)]
    periods = [f'      - {{days: every day, stop: "{minute_of_day(stops[0])}"}}']
    for index, start in enumerate(starts):
        if index + 1 < len(stops):
            periods.append(f'      - {{days: every day, start: "{minute_of_day(start)}", stop: "{minute_of_day(stops[index + 1])}"}}')
        else:
            periods.append(f'      - {{days: every day, start: "{minute_of_day(start)}"}}')
    return [f"  {name}:", '    timezone: "UTC"', "    periods:", *periods, "    mode: stop-and-start"]


def write_config(path: str, *, state_dir: str, endpoint: str, region: str, projects: list[tuple[str, str]], zone: str,
                 rps: float, burst: int, extra_schedules: list[str] | None = None) -> None:
    lines = [
        "# Written by Benchmarks/warden_bench.py",
        f"state_dir: {q(state_dir)}",
        "dry_run: false",
        "listen:",
        '  metrics: "127.0.0.1:0"',
        '  control: "127.0.0.1:0"',
        "  control_token: {env: WB_CONTROL_TOKEN}",
        "accounts:",
        "  - name: sim",
        "    access_key: {env: WB_AK}",
        "    secret_key: {env: WB_SK}",
        "regions:",
        f"  - name: {q(region)}",
        f"    endpoint: {q(endpoint)}",
        f"    rate_limit: {{requests_per_second: {rps:g}, burst: {burst}}}",
        "    request_timeout: 60s",
        "    page_size: 1000",
        "projects:",
    ]
    for name, pid in projects:
        lines.append(f"  - {{name: {q(name)}, id: {q(pid)}, account: sim, region: {q(region)}}}")
    lines += [
        "loops:",
        "  quota: {interval: 5m, jitter: 0.1}",
        "  stuck: {interval: 1m}",
        "  schedule: {interval: 1m}",
        "  flavors: {interval: 10m}",
        "  maintenance: {interval: 1h}",
        "tags:",
        f"  schedule: {SCHEDULE_TAG}",
        "auto_stop:",
        "  max_stops_per_pass: 200",
        "  max_starts_per_pass: 1000",
        "  batch_size: 1000",
        "  boundary_grace: 1h",
        "schedules:",
        *fleet_schedules_yaml(zone),
        *(extra_schedules or []),
        "log:",
        "  format: text",
        "  level: info",
    ]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# Phase 3: one pass with --once


@dataclass
class OnceResult:
    wall: float
    cpu: float
    user: float
    sys: float
    max_rss_mib: float
    # Peaks of the resident memory split, sampled every 50 ms: anonymous (heap, stacks) and
    # file-backed (code and data of the binary and libraries, shared and reclaimable); 0 when not sampled.
    peak_anon_mib: float
    peak_file_mib: float
    exit_status: int
    summary: list[str]
    pass_seconds: dict[str, float]
    calls: dict[str, Counter]
    unattributed: Counter
    non_2xx: int
    sim_cpu: float
    others_share: float
    per_project_lists: dict[str, Counter]


@dataclass
class OnceRuns:
    """The repeated --once passes: the first carries the call counts; time, CPU and memory are
    reported as the median of all passes, with their range."""
    passes: list[OnceResult]

    def median_of_first(self) -> OnceResult:
        def median(values: list[float]) -> float:
            ordered = sorted(values)
            middle = len(ordered) // 2
            return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        by_cpu = sorted(self.passes, key=lambda run: run.cpu)
        typical = by_cpu[len(by_cpu) // 2]
        return replace(self.passes[0], wall=median([r.wall for r in self.passes]), cpu=typical.cpu, user=typical.user, sys=typical.sys,
                       max_rss_mib=median([r.max_rss_mib for r in self.passes]),
                       peak_anon_mib=median([r.peak_anon_mib for r in self.passes]),
                       peak_file_mib=median([r.peak_file_mib for r in self.passes]))

    def spread(self, field: str, unit: str, digits: int) -> str:
        values = [getattr(run, field) for run in self.passes]
        if len(values) < 2:
            return ""
        return f"; median of {len(values)} passes on fresh state, range {min(values):.{digits}f}–{max(values):.{digits}f} {unit}"


def sample_resident_split(proc: subprocess.Popen, peaks: dict[str, int], skip: bool) -> None:
    """Samples RssAnon and RssFile (kB) of the process /usr/bin/time runs (its only child) every
    50 ms until it ends, keeping each one's peak. Skipped under a profiler (another process tree).
    Not more often: reading /proc/PID/status every 5 ms added ~0.04 s (8 %) to the pass's CPU."""
    if skip:
        return
    child = None
    while proc.poll() is None:
        if child is None:
            try:
                with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as handle:
                    pids = handle.read().split()
                child = int(pids[0]) if pids else None
            except OSError:
                return
        if child is not None:
            try:
                with open(f"/proc/{child}/status") as handle:
                    for line in handle:
                        if line.startswith("RssAnon:"):
                            peaks["anon"] = max(peaks["anon"], int(line.split()[1]))
                        elif line.startswith("RssFile:"):
                            peaks["file"] = max(peaks["file"], int(line.split()[1]))
            except OSError:
                return
        time.sleep(0.05)


def run_once(warden: str, config: str, env: dict[str, str], workdir: str, requests: RequestLog, sim_pid: int,
             timeout: float, label: str = "once", extra_prefix: list[str] | None = None) -> OnceResult:
    since = requests.end()
    time_file = os.path.join(workdir, f"{label}.time")
    stdout_file = os.path.join(workdir, f"{label}.stdout")
    command = [*(extra_prefix or []), "/usr/bin/time", "-v", "-o", time_file, warden, "run", "--config", config, "--once",
               "--log-level", "debug"]
    log("running " + " ".join(command))
    pass_done: dict[str, float] = {}
    stderr_lines: list[str] = []
    sim_cpu0, busy0 = process_cpu_seconds(sim_pid), system_busy_seconds()
    started = time.time()
    with open(stdout_file, "wb") as out:
        proc = spawn(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, env=env)

        def read_stderr() -> None:
            assert proc.stderr
            for raw in proc.stderr:
                now = time.time()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                match = re.search(r"pass done loop=(\w+)", line)
                if match:
                    pass_done[match.group(1)] = now
                if len(stderr_lines) < 2000:
                    stderr_lines.append(line)

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        peaks = {"anon": 0, "file": 0}
        sampler = threading.Thread(target=sample_resident_split, args=(proc, peaks, bool(extra_prefix)), daemon=True)
        sampler.start()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(proc, 5)
            raise BenchError(f"`ecs-warden run --once` did not finish within {timeout:.0f} s")
        reader.join(5)
        sampler.join(5)
    finished = time.time()
    sim_cpu = process_cpu_seconds(sim_pid) - sim_cpu0
    busy = system_busy_seconds() - busy0
    figures = parse_time_v(time_file)
    with open(stdout_file, "rb") as handle:
        summary = [l for l in handle.read().decode("utf-8", "replace").splitlines() if l.strip()]
    if "wall" not in figures:
        raise BenchError(f"no figures from /usr/bin/time; stderr: {stderr_lines[-5:]}")
    status = int(figures.get("exit", proc.returncode))
    if "signal" in figures:
        raise BenchError(f"`ecs-warden run --once` was killed by signal {int(figures['signal'])}")

    # Per-loop windows: [start, quota done], (quota done, flavors done], …
    bounds: list[tuple[str, float]] = []
    previous = started
    for loop in LOOP_ORDER:
        end = pass_done.get(loop)
        if end is None:
            continue
        bounds.append((loop, end))
    pass_seconds: dict[str, float] = {}
    for loop, end in bounds:
        pass_seconds[loop] = end - previous
        previous = end
    records = requests.since(since)
    calls: dict[str, Counter] = {loop: Counter() for loop in LOOP_ORDER}
    unattributed: Counter = Counter()
    per_project_lists: dict[str, Counter] = {loop: Counter() for loop in LOOP_ORDER}
    non_2xx = 0
    for record in records:
        if not (200 <= int(record["status"]) < 300):
            non_2xx += 1
        when = float(record["time"])
        owner = None
        for loop, end in bounds:
            if when <= end:
                owner = loop
                break
        if owner is None:
            unattributed[record["operation"]] += 1
            continue
        calls[owner][record["operation"]] += 1
        if record["operation"] == "NovaListServersDetails":
            per_project_lists[owner][record.get("project_id") or "?"] += 1
    cpu = figures.get("user", 0.0) + figures.get("sys", 0.0)
    wall = figures["wall"]
    others = max(0.0, busy - sim_cpu - cpu)
    return OnceResult(
        wall=wall, cpu=cpu, user=figures.get("user", 0.0), sys=figures.get("sys", 0.0),
        max_rss_mib=figures.get("max_rss_kb", 0.0) / 1024.0, peak_anon_mib=peaks["anon"] / 1024.0, peak_file_mib=peaks["file"] / 1024.0,
        exit_status=status, summary=summary, pass_seconds=pass_seconds, calls=calls, unattributed=unattributed, non_2xx=non_2xx, sim_cpu=sim_cpu,
        others_share=others / max(1e-6, finished - started), per_project_lists=per_project_lists)


# --------------------------------------------------------------------------------------------
# Phase 4: the SDK baseline


@dataclass
class BaselineResult:
    wall: float
    cpu: float
    max_rss_mib: float
    reads_wall: float
    reads_cpu: float
    import_seconds: float
    api: str
    microversion: str | None
    servers: int
    calls_claimed: dict[str, int]
    calls_logged: Counter
    non_2xx: int
    sim_cpu: float


def run_baseline(python: str, script: str, endpoint: str, project_ids: list[str], env: dict[str, str], workdir: str,
                 requests: RequestLog, sim_pid: int, api: str, timeout: float) -> BaselineResult:
    since = requests.end()
    time_file = os.path.join(workdir, "sdk.time")
    json_file = os.path.join(workdir, "sdk.json")
    command = ["/usr/bin/time", "-v", "-o", time_file, python, script, "--endpoint", endpoint, "--projects",
               ",".join(project_ids), "--api", api, "--json", json_file]
    log(f"running the SDK baseline ({python} {os.path.basename(script)} --api {api}, {len(project_ids)} projects)")
    sim_cpu0 = process_cpu_seconds(sim_pid)
    proc = spawn(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(proc, 5)
        raise BenchError(f"the SDK baseline did not finish within {timeout:.0f} s")
    sim_cpu = process_cpu_seconds(sim_pid) - sim_cpu0
    if proc.returncode != 0:
        raise BenchError(f"the SDK baseline failed ({proc.returncode}): {err.decode('utf-8', 'replace')[-1500:]}")
    figures = parse_time_v(time_file)
    with open(json_file) as handle:
        result = json.load(handle)
    records = requests.since(since)
    logged = Counter(r["operation"] for r in records)
    non_2xx = sum(1 for r in records if not (200 <= int(r["status"]) < 300))
    return BaselineResult(
        wall=figures["wall"], cpu=figures.get("user", 0.0) + figures.get("sys", 0.0),
        max_rss_mib=figures.get("max_rss_kb", 0.0) / 1024.0, reads_wall=result["reads_wall_seconds"],
        reads_cpu=result["reads_cpu_seconds"], import_seconds=result["import_seconds"], api=result["api"],
        microversion=result.get("microversion"), servers=result["servers"], calls_claimed=result["calls"],
        calls_logged=logged, non_2xx=non_2xx, sim_cpu=sim_cpu)


# --------------------------------------------------------------------------------------------
# Phases 5-6: the daemon in run mode


class Daemon:
    """`ecs-warden run` with $NOTIFY_SOCKET bound here; ports from its 'listening on' log lines."""

    def __init__(self, warden: str, config: str, env: dict[str, str], workdir: str, label: str, token: str):
        self.warden = warden
        self.config = config
        self.env = dict(env)
        self.workdir = workdir
        self.label = label
        self.token = token
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.ports: list[int] = []
        self.notifications: list[tuple[float, str]] = []
        self.ready_at: float | None = None
        self.exec_at = 0.0
        self.metrics_port = 0
        self.control_port = 0
        self._ready = threading.Event()
        self._sock: socket.socket | None = None

    def start(self, timeout: float) -> None:
        path = os.path.join(self.workdir, f"notify-{self.label}.sock")
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(path)
        threading.Thread(target=self._read_notify, daemon=True).start()
        self.env["NOTIFY_SOCKET"] = path
        self.env.pop("WATCHDOG_USEC", None)
        self.exec_at = time.monotonic()
        self.proc = spawn([self.warden, "run", "--config", self.config], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env)
        threading.Thread(target=self._read_stderr, daemon=True).start()
        deadline = self.exec_at + timeout
        while not (self._ready.is_set() and len(self.ports) >= 2):
            if self.proc.poll() is not None:
                raise BenchError(f"ecs-warden ({self.label}) exited with status {self.proc.returncode}: {self.lines[-10:]}")
            if time.monotonic() > deadline:
                raise BenchError(f"ecs-warden ({self.label}) sent no READY=1 / listening lines within {timeout:.0f} s "
                                 f"(notifications {self.notifications[:5]}, log {self.lines[-5:]})")
            time.sleep(0.01)
        for port in self.ports[:2]:
            status, _, body = Http(port, 10).request("GET", "/metrics")
            if status == 200 and b"ecs_warden_" in body:
                self.metrics_port = port
            else:
                self.control_port = port
        if not self.metrics_port or not self.control_port:
            raise BenchError(f"cannot tell the metrics port from the control port among {self.ports}")

    def _read_notify(self) -> None:
        assert self._sock
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            now = time.monotonic()
            for line in data.decode("utf-8", "replace").splitlines():
                self.notifications.append((now, line))
                if line == "READY=1" and self.ready_at is None:
                    self.ready_at = now
                    self._ready.set()

    def _read_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if match:
                self.ports.append(int(match.group(1)))
            if len(self.lines) < 5000:
                self.lines.append(line)

    @property
    def pid(self) -> int:
        assert self.proc
        return self.proc.pid

    def loops(self, control: Http) -> dict[str, dict]:
        document = control.json("GET", "/v1/loops")
        return {item["name"]: item for item in document}  # type: ignore[union-attr]

    def run_loop(self, control: Http, loop: str) -> None:
        control.json("POST", f"/v1/loops/{loop}/run", headers={"Authorization": f"Bearer {self.token}"}, expect=(200, 202))

    def stop(self) -> tuple[int, float]:
        assert self.proc
        if self.proc.poll() is not None:
            raise BenchError(f"ecs-warden ({self.label}) had already exited with status {self.proc.returncode}: {self.lines[-10:]}")
        status, seconds, killed = stop_process(self.proc, 40.0)
        if self._sock:
            self._sock.close()
        if killed:
            raise BenchError(f"ecs-warden ({self.label}) did not exit within 40 s of SIGTERM (killed)")
        return status, seconds


def wait_first_passes(daemon: Daemon, control: Http, timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        loops = daemon.loops(control)
        if loops and all(l.get("passes", 0) >= 1 and not l.get("running") for l in loops.values()):
            return loops
        if time.monotonic() > deadline:
            raise BenchError(f"the daemon's first passes did not finish within {timeout:.0f} s: "
                             f"{ {k: (v.get('passes'), v.get('running')) for k, v in loops.items()} }")
        if daemon.proc and daemon.proc.poll() is not None:
            raise BenchError(f"ecs-warden exited with status {daemon.proc.returncode}: {daemon.lines[-10:]}")
        time.sleep(0.2)


@dataclass
class IdleResult:
    seconds: float
    cpu: float
    api_calls: int
    passes: int
    attempts: int
    polling_passes: int = 0
    note: str = ""


def measure_idle(daemon: Daemon, control: Http, requests: RequestLog, seconds: float, max_wait: float) -> IdleResult:
    """CPU of the daemon over `seconds` in which no loop is due (the IDLE_POLLING_LOOPS aside, which
    wake every few seconds and read nothing while idle); retried after the next passes if one was due
    (bounded by max_wait)."""
    def working(loops: dict) -> dict:
        return {name: l for name, l in loops.items() if name not in IDLE_POLLING_LOOPS}

    def passes_of(loops: dict, polling: bool) -> int:
        return sum(int(l.get("passes", 0)) for name, l in loops.items() if (name in IDLE_POLLING_LOOPS) == polling)

    deadline = time.monotonic() + max_wait
    attempts = 0
    while True:
        all_loops = daemon.loops(control)
        loops = working(all_loops)
        if any(l.get("running") for l in loops.values()):
            if time.monotonic() > deadline:
                raise BenchError(f"no idle window within {max_wait:.0f} s: a pass is always running")
            time.sleep(0.5)
            continue
        now = time.time()
        due = [parse_iso(l.get("nextPassAt")) for l in loops.values()]
        due = [d for d in due if d is not None]
        next_due = min(due) if due else now + 1e9
        if next_due - now >= seconds + 1.5:
            attempts += 1
            passes0 = passes_of(all_loops, polling=False)
            polling0 = passes_of(all_loops, polling=True)
            log_index = requests.end()
            cpu0 = process_cpu_seconds(daemon.pid)
            t0 = time.monotonic()
            time.sleep(seconds)
            cpu1 = process_cpu_seconds(daemon.pid)
            elapsed = time.monotonic() - t0
            calls = len(requests.since(log_index))
            loops1 = daemon.loops(control)
            passes1 = passes_of(loops1, polling=False)
            result = IdleResult(seconds=elapsed, cpu=cpu1 - cpu0, api_calls=calls, passes=passes1 - passes0, attempts=attempts,
                                polling_passes=passes_of(loops1, polling=True) - polling0)
            if (calls == 0 and passes1 == passes0) or time.monotonic() + seconds > deadline:
                if calls or passes1 != passes0:
                    result.note = "a pass ran during the window"
                return result
            log(f"idle window disturbed ({calls} API calls, {passes1 - passes0} passes); measuring again")
            continue
        wait = next_due - now + 2.0
        if time.monotonic() + wait + seconds > deadline:
            raise BenchError(f"no idle window of {seconds:.0f} s within {max_wait:.0f} s (next pass due in {next_due - now:.0f} s)")
        log(f"a pass is due in {next_due - now:.1f} s: waiting for it before the idle window")
        time.sleep(max(0.5, wait))


@dataclass
class ScrapeResult:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    size_bytes: int
    samples: int


def scrape(port: int, count: int, until: "callable | None" = None, max_seconds: float = 60.0) -> ScrapeResult:
    """Sequential GET /metrics on one keep-alive connection, timed to the last byte."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    size = 0
    samples = 0
    started = time.monotonic()
    try:
        index = 0
        while True:
            if until is None and index >= count:
                break
            if until is not None and (index % 10 == 0 and until() or time.monotonic() - started > max_seconds or index >= 20 * count):
                break
            t0 = time.perf_counter()
            conn.request("GET", "/metrics", headers={"Accept": "text/plain;version=0.0.4"})
            response = conn.getresponse()
            data = response.read()
            latencies.append((time.perf_counter() - t0) * 1000.0)
            if response.status != 200:
                raise BenchError(f"GET /metrics -> {response.status}: {data[:200]!r}")
            if index == 0:
                size = len(data)
                samples = sum(1 for line in data.split(b"\n") if line and not line.startswith(b"#"))
            index += 1
    finally:
        conn.close()
    if not latencies:
        raise BenchError("no /metrics scrape completed")
    return ScrapeResult(count=len(latencies), p50_ms=percentile(latencies, 0.5), p99_ms=percentile(latencies, 0.99),
                        max_ms=max(latencies), size_bytes=size, samples=samples)


# --------------------------------------------------------------------------------------------
# Phase 6: schedule precision


def tag_precision_servers(sim: Http, projects: list[str], per_schedule: int, schedules: list[str], user: str,
                          password: str) -> dict[str, dict[str, list[str]]]:
    """Re-tags running, idle, untagged servers with the precision schedules through the API (the fleet
    keeps its size). Returns project → schedule → server ids."""
    chosen: dict[str, dict[str, list[str]]] = {}
    for project in projects:
        token = iam_token(sim, user, password, project)
        auth = {"X-Auth-Token": token}
        servers: list[dict] = []
        marker = None
        while True:
            path = f"/v2.1/{project}/servers/detail?limit=1000" + (f"&marker={marker}" if marker else "")
            page = sim.json("GET", path, headers={**auth, "X-OpenStack-Nova-API-Version": "2.26"})
            batch = page.get("servers", [])  # type: ignore[union-attr]
            servers += batch
            if not batch or not any(l.get("rel") == "next" for l in page.get("servers_links") or []):  # type: ignore[union-attr]
                break
            marker = batch[-1]["id"]
        candidates = sorted(
            (s["id"] for s in servers
             if s.get("status") == "ACTIVE" and not s.get("OS-EXT-STS:task_state") and s.get("locked") is not True
             and not any(str(t).split("=", 1)[0] == SCHEDULE_TAG for t in s.get("tags") or [])))
        needed = per_schedule * len(schedules)
        if len(candidates) < needed:
            raise BenchError(f"project {project} has only {len(candidates)} running untagged servers; {needed} needed")
        chosen[project] = {}
        for index, schedule in enumerate(schedules):
            ids = candidates[index * per_schedule:(index + 1) * per_schedule]
            chosen[project][schedule] = ids
            for server_id in ids:
                sim.json("POST", f"/v1/{project}/servers/{server_id}/tags/action",
                         {"action": "create", "tags": [{"key": SCHEDULE_TAG, "value": schedule}]},
                         headers={**auth, "Content-Type": "application/json"}, expect=(200, 204))
    return chosen


@dataclass
class BoundaryResult:
    index: int
    at: float
    schedule: str
    stop_delays: list[float]
    expected_stops: int
    start_delays: list[float]
    lists_before_first_stop: int


def analyse_precision(records: list[dict], boundaries: list[float], schedules: list[str], expected: dict[str, int],
                      settle_end: float) -> list[BoundaryResult]:
    results = []
    for index, at in enumerate(boundaries):
        window_end = boundaries[index + 1] - 2.0 if index + 1 < len(boundaries) else settle_end
        window = [r for r in records if at - 2.0 <= float(r["time"]) < window_end]
        stops = sorted(float(r["time"]) - at for r in window if r["operation"] == "BatchStopServers")
        starts = sorted(float(r["time"]) - at for r in window if r["operation"] == "BatchStartServers")
        first_stop = at + stops[0] if stops else window_end
        lists = sum(1 for r in window if r["operation"] == "NovaListServersDetails" and float(r["time"]) < first_stop)
        schedule = schedules[index % len(schedules)]
        results.append(BoundaryResult(index=index, at=at, schedule=schedule, stop_delays=stops,
                                      expected_stops=expected.get(schedule, 0), start_delays=starts,
                                      lists_before_first_stop=lists))
    return results


# --------------------------------------------------------------------------------------------
# Report


@dataclass
class ListingBytes:
    projects_sampled: int
    bytes_sampled: int
    servers_sampled: int
    bytes_total: float
    servers_total: int

    @property
    def bytes_per_server(self) -> float:
        return self.bytes_sampled / max(1, self.servers_sampled)


def measure_listing_bytes(sim: Http, projects: list[dict], sample: int, user: str, password: str) -> ListingBytes:
    """The JSON bytes of the Nova listing (microversion 2.26, pages of 1,000) the pass reads, counted on
    the first `sample` projects and scaled to the fleet by servers."""
    chosen = projects[:max(1, min(sample, len(projects)))]
    total_bytes = 0
    total_servers = 0
    for project in chosen:
        token = iam_token(sim, user, password, project["id"])
        headers = {"X-Auth-Token": token, "X-OpenStack-Nova-API-Version": "2.26"}
        marker = None
        while True:
            path = f"/v2.1/{project['id']}/servers/detail?limit={PAGE_MAX}" + (f"&marker={marker}" if marker else "")
            status, _, data = sim.request("GET", path, headers=headers)
            if status != 200:
                raise BenchError(f"GET {path} -> {status}: {data[:300]!r}")
            page = json.loads(data)
            batch = page.get("servers", [])
            total_bytes += len(data)
            total_servers += len(batch)
            if not batch or not any(l.get("rel") == "next" for l in page.get("servers_links") or []):
                break
            marker = batch[-1]["id"]
    fleet = sum(int(p["servers"]) for p in projects)
    return ListingBytes(projects_sampled=len(chosen), bytes_sampled=total_bytes, servers_sampled=total_servers,
                        bytes_total=total_bytes / max(1, total_servers) * fleet, servers_total=fleet)


def describe_calls(counter: Counter) -> str:
    if not counter:
        return "none"
    return ", ".join(f"{op} {n}" for op, n in sorted(counter.items()))


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warden", required=True, help="ecs-warden binary")
    parser.add_argument("--sim", required=True, help="ecs-sim binary")
    parser.add_argument("--sdk-python", default="", help="python of a venv with huaweicloudsdkecs 3.1.219; empty = no baseline")
    parser.add_argument("--sdk-api", choices=("nova", "v1"), default="nova")
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--servers", type=int, default=1000, help="servers per project")
    parser.add_argument("--flavors", type=int, default=200)
    parser.add_argument("--scheduled-share", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rps", type=float, default=500.0, help="ecs-warden's rate limit (requests per second)")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--precision-boundaries", type=int, default=3, help="stop boundaries measured (one a minute)")
    parser.add_argument("--precision-projects", type=int, default=10)
    parser.add_argument("--precision-servers", type=int, default=5, help="servers per schedule and project")
    parser.add_argument("--precision-settle", type=float, default=60.0, help="seconds to wait after the last boundary at most")
    parser.add_argument("--once-timeout", type=float, default=600.0)
    parser.add_argument("--once-repeats", type=int, default=3, help="--once passes on fresh state; figures are their median")
    parser.add_argument("--start-timeout", type=float, default=600.0)
    parser.add_argument("--profile", default="", help="'perf': profile a second --once pass with perf and list the hottest symbols")
    parser.add_argument("--iam-user", default="sim-user")
    parser.add_argument("--iam-password", default="sim-password")
    parser.add_argument("--keep-workdir", action="store_true")
    parser.add_argument("--json", default="", help="also write the results here as JSON")
    parser.add_argument("--note", action="append", default=[], help="extra line under the table")
    parser.add_argument("--footprint", default="", help="the 'listing footprint:' line of ListingFootprintTests")
    parser.add_argument("--listing-sample", type=int, default=20,
                        help="projects whose listing is fetched to count its JSON bytes (scaled to the fleet)")
    options = parser.parse_args()

    for label, path in (("ecs-warden", options.warden), ("ecs-sim", options.sim)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise BenchError(f"no executable {label} at {path}")
    if not os.access("/usr/bin/time", os.X_OK):
        raise BenchError("/usr/bin/time (GNU time) is required: apt-get install time")
    baseline_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk_baseline.py")
    bench_started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="warden-bench-")
    fleet = options.projects * options.servers
    errors: list[str] = []
    results: dict[str, object] = {"warden": os.path.abspath(options.warden), "sim": os.path.abspath(options.sim),
                                  "projects": options.projects, "servers_per_project": options.servers, "servers": fleet,
                                  "flavors": options.flavors, "cpus": os.cpu_count()}
    ak, sk = "SIMACCESSKEY", "SIMSECRETKEY"  # the simulator's test credentials (it holds no real secret)
    control_token = secrets.token_hex(24)
    env = {**os.environ, "WB_AK": ak, "WB_SK": sk, "WB_CONTROL_TOKEN": control_token}
    env.pop("NOTIFY_SOCKET", None)
    sim = Simulator(options.sim,
                    ["--port", "0", "--projects", str(options.projects), "--servers-per-project", str(options.servers),
                     "--flavors", str(options.flavors), "--scheduled-share", str(options.scheduled_share),
                     "--seed", str(options.seed), "--access-key", ak, "--secret-key", sk,
                     "--iam-user", options.iam_user, "--iam-password", options.iam_password],
                    options.start_timeout, os.path.join(workdir, "ecs-sim.stderr"), spawn=spawn, group=True)
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = []
    load_before = load_average()
    try:
        # ---- 1. simulator
        log(f"starting ecs-sim: {options.projects} projects x {options.servers} servers, {options.flavors} flavors")
        sim.start()
        log(f"ecs-sim listening on port {sim.port} after {sim.startup_seconds:.1f} s")
        assert sim.proc
        sim_http = Http(sim.port, 120)
        requests = RequestLog(sim_http)
        state = sim_http.json("GET", "/_sim/state")
        assert isinstance(state, dict)
        projects = sorted(state["projects"], key=lambda p: p["name"])
        if len(projects) != options.projects or state.get("servers") != fleet:
            raise BenchError(f"/_sim/state lists {len(projects)} projects and {state.get('servers')} servers, "
                             f"expected {options.projects} and {fleet}")
        region = state["region"]
        endpoint = f"http://127.0.0.1:{sim.port}"
        project_ids = [p["id"] for p in projects]
        config_projects = [(f"bench-{i:03d}", p["id"]) for i, p in enumerate(projects)]
        pages = {p["id"]: max(1, math.ceil(int(p["servers"]) / PAGE_MAX)) for p in projects}
        min_list_calls = sum(pages.values())

        # ---- 2. configuration
        zone, offset = fleet_zone(time.time())
        once_config = os.path.join(workdir, "once.yaml")
        write_config(once_config, state_dir=os.path.join(workdir, "state-once"), endpoint=endpoint, region=region,
                     projects=config_projects, zone=zone, rps=options.rps, burst=options.burst)
        check = subprocess.run([options.warden, "check-config", once_config, "--secrets"], env=env, capture_output=True,
                               text=True, timeout=60)
        if check.returncode != 0:
            raise BenchError(f"ecs-warden check-config rejected the generated configuration: {check.stdout}{check.stderr}")
        log(check.stdout.strip())

        # ---- 3. one full pass (the calls are counted on the first), repeated on fresh state: the
        # figures are the median of the passes, with their range (a single pass varies by ~10 %
        # on this shared machine, the first after the simulator starts most)
        once = run_once(options.warden, once_config, env, workdir, requests, sim.proc.pid, options.once_timeout)
        log(f"--once: {once.wall:.2f} s wall, {once.cpu:.2f} s CPU, {once.max_rss_mib:.0f} MiB; exit {once.exit_status}")
        passes = [once]
        for repeat in range(2, options.once_repeats + 1):
            repeat_config = os.path.join(workdir, f"once{repeat}.yaml")
            write_config(repeat_config, state_dir=os.path.join(workdir, f"state-once{repeat}"), endpoint=endpoint, region=region,
                         projects=config_projects, zone=zone, rps=options.rps, burst=options.burst)
            again = run_once(options.warden, repeat_config, env, workdir, requests, sim.proc.pid, options.once_timeout,
                             label=f"once{repeat}")
            log(f"--once #{repeat}: {again.wall:.2f} s wall, {again.cpu:.2f} s CPU, {again.max_rss_mib:.0f} MiB; exit {again.exit_status}")
            if again.exit_status != 0:
                errors.append(f"`ecs-warden run --once` (pass {repeat}) exited {again.exit_status}: " + " | ".join(again.summary))
            passes.append(again)
        once_runs = OnceRuns(passes)
        once = once_runs.median_of_first()
        if once.exit_status != 0:
            errors.append(f"`ecs-warden run --once` exited {once.exit_status}: " + " | ".join(once.summary))
        if once.non_2xx:
            errors.append(f"{once.non_2xx} API calls of the --once pass were answered with a non-2xx status")
        missing_loops = [l for l in LOOP_ORDER if l not in once.pass_seconds]
        if missing_loops:
            errors.append(f"no 'pass done' line for {missing_loops}: per-loop attribution is incomplete")

        # ---- 4. SDK baseline
        baseline: BaselineResult | None = None
        if options.sdk_python:
            baseline = run_baseline(options.sdk_python, baseline_script, endpoint, project_ids, env, workdir, requests,
                                    sim.proc.pid, options.sdk_api, options.once_timeout * 4)
            log(f"SDK baseline: {baseline.wall:.2f} s wall, {baseline.cpu:.2f} s CPU")
            if baseline.non_2xx:
                errors.append(f"{baseline.non_2xx} API calls of the SDK baseline were answered with a non-2xx status")

        # ---- 4b. the JSON a pass digests: the listing pages of a sample of projects, scaled
        listing_bytes = measure_listing_bytes(sim_http, projects, options.listing_sample, options.iam_user, options.iam_password)
        log(f"listing: {listing_bytes.bytes_total / 1e6:.1f} MB of JSON for {fmt_int(listing_bytes.servers_total)} servers "
            f"(measured on {listing_bytes.projects_sampled} projects, {listing_bytes.bytes_per_server:.0f} B/server)")

        # ---- 5. run mode
        run_config = os.path.join(workdir, "run.yaml")
        run_state = os.path.join(workdir, "state-run")
        write_config(run_config, state_dir=run_state, endpoint=endpoint, region=region, projects=config_projects,
                     zone=zone, rps=options.rps, burst=options.burst)
        log("starting the daemon in run mode")
        daemon = Daemon(options.warden, run_config, env, workdir, "run", control_token)
        daemon.start(options.start_timeout)
        assert daemon.ready_at is not None
        ready_ms = (daemon.ready_at - daemon.exec_at) * 1000.0
        control = Http(daemon.control_port, 120)
        log(f"READY=1 after {ready_ms:.0f} ms; metrics :{daemon.metrics_port}, control :{daemon.control_port}")
        first_loops = wait_first_passes(daemon, control, options.once_timeout)
        first_done = time.monotonic() - daemon.exec_at
        first_durations = {name: float(l.get("lastDurationSeconds") or 0.0) for name, l in first_loops.items()}
        first_failed = [f"{name}: {l.get('lastResult')} {l.get('lastError') or ''}".strip()
                        for name, l in first_loops.items() if l.get("lastResult") != "success"]
        if first_failed:
            errors.append("first passes in run mode did not all succeed: " + "; ".join(first_failed))
        log(f"first passes done {first_done:.1f} s after exec: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(first_durations.items())))
        memory_after_passes = process_memory_mib(daemon.pid)
        idle = measure_idle(daemon, control, requests, options.idle_seconds, max_wait=240.0)
        log(f"idle: {idle.cpu * 1000:.0f} ms CPU in {idle.seconds:.1f} s ({idle.api_calls} API calls, {idle.passes} passes, "
            f"{idle.polling_passes} empty passes of {', '.join(sorted(IDLE_POLLING_LOOPS))})")
        scrapes = scrape(daemon.metrics_port, options.scrapes)
        log(f"/metrics at rest: p50 {scrapes.p50_ms:.2f} ms, p99 {scrapes.p99_ms:.2f} ms, {scrapes.size_bytes} B")
        # Scrapes while the stuck loop reads the whole fleet.
        passes_before = int(daemon.loops(control)["stuck"].get("passes", 0))
        daemon.run_loop(control, "stuck")
        busy = scrape(daemon.metrics_port, options.scrapes,
                      until=lambda: int(daemon.loops(control)["stuck"].get("passes", 0)) > passes_before,
                      max_seconds=options.once_timeout)
        log(f"/metrics during a stuck pass: p50 {busy.p50_ms:.2f} ms, p99 {busy.p99_ms:.2f} ms ({busy.count} scrapes)")
        memory_run = process_memory_mib(daemon.pid)
        run_status, run_stop_seconds = daemon.stop()
        control.close()
        if run_status != 0:
            errors.append(f"ecs-warden (run mode) exited {run_status} after SIGTERM")
        log(f"daemon stopped: status {run_status} after {run_stop_seconds:.2f} s")

        # ---- 6. schedule precision
        precision: list[BoundaryResult] = []
        boundaries: list[float] = []
        precision_schedules: list[str] = []
        tagged: dict[str, dict[str, list[str]]] = {}
        if options.precision_boundaries > 0:
            precision_schedules = ["bench-a", "bench-b"] if options.precision_boundaries >= 2 else ["bench-a"]
            chosen_projects = project_ids[:max(1, min(options.precision_projects, len(project_ids)))]
            tagged = tag_precision_servers(sim_http, chosen_projects, options.precision_servers, precision_schedules,
                                           options.iam_user, options.iam_password)
            # The first boundary: a whole minute after start-up and the first passes (as measured above).
            lead = max(20.0, first_done * 1.5 + 10.0)
            first = math.ceil((time.time() + lead) / 60.0) * 60.0
            boundaries = [first + 60.0 * i for i in range(options.precision_boundaries)]
            extra: list[str] = []
            for index, name in enumerate(precision_schedules):
                extra += precision_schedule_yaml(name, boundaries, index)
            precision_config = os.path.join(workdir, "precision.yaml")
            write_config(precision_config, state_dir=run_state, endpoint=endpoint, region=region,
                         projects=config_projects, zone=zone, rps=options.rps, burst=options.burst, extra_schedules=extra)
            check = subprocess.run([options.warden, "check-config", precision_config], env=env, capture_output=True,
                                   text=True, timeout=60)
            if check.returncode != 0:
                raise BenchError(f"check-config rejected the precision configuration: {check.stdout}{check.stderr}")
            log(f"precision: {len(boundaries)} stop boundaries from "
                f"{dt.datetime.fromtimestamp(first, dt.timezone.utc):%H:%M:%S} UTC, one a minute; "
                f"{len(chosen_projects)} projects x {options.precision_servers} servers per schedule")
            log_index = requests.end()
            daemon2 = Daemon(options.warden, precision_config, env, workdir, "precision", control_token)
            daemon2.start(options.start_timeout)
            expected = {name: sum(1 for p in tagged.values() if p.get(name)) for name in precision_schedules}
            last = boundaries[-1]
            settle_end = last + options.precision_settle
            while time.time() < settle_end:
                if daemon2.proc and daemon2.proc.poll() is not None:
                    raise BenchError(f"ecs-warden (precision) exited with status {daemon2.proc.returncode}: {daemon2.lines[-10:]}")
                if time.time() > last:
                    records = requests.since(log_index)
                    seen = sum(1 for r in records if r["operation"] == "BatchStopServers" and float(r["time"]) >= last - 2.0)
                    if seen >= expected[precision_schedules[(len(boundaries) - 1) % len(precision_schedules)]]:
                        settle_end = time.time()
                        break
                    time.sleep(0.5)
                else:
                    time.sleep(min(5.0, max(0.2, last - time.time())))
            records = requests.since(log_index)
            with open(os.path.join(workdir, "precision-requests.json"), "w") as handle:
                json.dump({"boundaries": boundaries, "daemon_exec": daemon2.exec_at - time.monotonic() + time.time(),
                           "requests": records}, handle)
            precision = analyse_precision(records, boundaries, precision_schedules, expected, settle_end)
            stop_failures = [r for r in records if r["operation"] in ("BatchStopServers", "BatchStartServers")
                             and not (200 <= int(r["status"]) < 300)]
            if stop_failures:
                errors.append(f"{len(stop_failures)} batch calls failed in the precision phase")
            status2, _ = daemon2.stop()
            if status2 != 0:
                errors.append(f"ecs-warden (precision) exited {status2} after SIGTERM")

        # ---- optional profile
        profile_lines: list[str] = []
        if options.profile == "perf":
            profile_lines = profile_once(options.warden, workdir, endpoint, region, config_projects, zone, options, env,
                                         requests, sim.proc.pid)

        sim_http.close()
        sim_status, _ = sim.stop()
        if sim_status != 0:
            errors.append(f"ecs-sim exited {sim_status} after SIGTERM")
    finally:
        cleanup_children()
        if not options.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    load_after = load_average()
    total_seconds = time.monotonic() - bench_started

    # ---- table
    full = fleet == GOAL_FLEET
    fleet_suffix = "" if full else f" (fleet {fmt_int(fleet)})"
    rows.append(("ecs-sim start-up (incl. fleet)", f"{sim.startup_seconds:.1f} s", "", ""))
    rows.append(SEPARATOR)
    rows.append(("Full pass: `run --once` wall", f"{once.wall:.2f} s{once_runs.spread('wall', 's', 2)}", f"< {GOAL_PASS_SECONDS:g} s",
                 verdict(once.wall < GOAL_PASS_SECONDS) + fleet_suffix))
    cpu_goal = GOAL_PASS_CPU_S.get(fleet)
    peak_goal = GOAL_PASS_PEAK_MB.get(fleet)
    rows.append(("  CPU user+sys", f"{once.cpu:.2f} s ({once.user:.2f} + {once.sys:.2f}){once_runs.spread('cpu', 's', 2)}",
                 f"<= {cpu_goal:g} s" if cpu_goal else "", verdict(once.cpu <= cpu_goal) if cpu_goal else ""))
    rows.append(("  CPU per server", f"{once.cpu / fleet * 1e6:.2f} us", "", ""))
    rows.append(("  JSON digested", f"{listing_bytes.bytes_total / 1e6 / max(once.cpu, 1e-9):.0f} MB/s of CPU "
                 f"({listing_bytes.bytes_total / 1e6:.0f} MB of listing, {listing_bytes.bytes_per_server:.0f} B/server)", "", ""))
    rows.append(("  peak memory (max RSS)", f"{once.max_rss_mib:.0f} MB{once_runs.spread('max_rss_mib', 'MB', 0)}", f"< {GOAL_PASS_MB:g} MB",
                 verdict(once.max_rss_mib < GOAL_PASS_MB) + fleet_suffix))
    if peak_goal:
        rows.append(("  peak memory (issue 12)", f"{once.max_rss_mib:.0f} MB", f"<= {peak_goal:g} MB",
                     verdict(once.max_rss_mib <= peak_goal)))
        if once.peak_anon_mib > 0:
            rows.append(("    of which (peaks, 50 ms samples)",
                         f"anonymous (heap, stacks) {once.peak_anon_mib:.0f} MB; file-backed (code of the binary and "
                         f"libraries, shared, reclaimable) {once.peak_file_mib:.0f} MB", "", ""))
    if options.footprint:
        rows.append(("  kept between passes", options.footprint, "", ""))
    rows.append(("  time per loop (quota incl. start)", ", ".join(f"{k} {v:.2f}" for k, v in once.pass_seconds.items()) + " s", "", ""))
    minimum = {
        "quota": Counter({"ShowServerLimits": len(project_ids)}),
        "flavors": Counter({"ListFlavors": 1, "NovaListAvailabilityZones": 1}),
        "schedule": Counter({"NovaListServersDetails": min_list_calls}),
        "stuck": Counter(),
        "maintenance": Counter(),
    }
    minimum_text = {
        "quota": "1/project",
        "flavors": "1 + 1 AZ/region",
        "schedule": f"{PAGE_MAX}/page/project",
        "stuck": "reuses schedule's listing",
        "maintenance": "none",
    }
    all_minimal = True
    total_actual = 0
    total_minimum = 0
    for loop in LOOP_ORDER:
        actual = once.calls[loop]
        # ShowJob is needed only for jobs being followed (none on a fresh state).
        ok = actual == minimum[loop]
        all_minimal &= ok
        total_actual += sum(actual.values())
        total_minimum += sum(minimum[loop].values())
        rows.append((f"  API calls: {loop}", describe_calls(actual),
                     f"= {sum(minimum[loop].values())} ({minimum_text[loop]})", verdict(ok)))
    if once.unattributed:
        all_minimal = False
        rows.append(("  API calls outside the loops", describe_calls(once.unattributed), "none", "MISS"))
    rows.append(("  API calls: whole pass", f"{fmt_int(total_actual)}", f"= minimum {fmt_int(total_minimum)}", verdict(all_minimal)))
    rows.append(SEPARATOR)
    if baseline:
        listing = ("Nova servers/detail, microversion " + str(baseline.microversion)) if baseline.api == "nova" \
            else "v1 cloudservers/detail"
        rows.append(("Official SDK baseline (sequential)", f"{baseline.wall:.2f} s wall, {baseline.cpu:.2f} s CPU, "
                     f"{baseline.max_rss_mib:.0f} MB", "", ""))
        rows.append(("  reads", f"{listing}, pages of 1,000: {fmt_int(baseline.servers)} servers", "", ""))
        rows.append(("  API calls", describe_calls(baseline.calls_logged), "", ""))
        rows.append(("  of which", f"SDK import {baseline.import_seconds:.2f} s, reads {baseline.reads_wall:.2f} s "
                     f"({baseline.reads_cpu:.2f} s CPU)", "", ""))
        rows.append(("  per server, JSON", f"{baseline.cpu / fleet * 1e6:.1f} us CPU per server, "
                     f"{listing_bytes.bytes_total / 1e6 / max(baseline.cpu, 1e-9):.0f} MB/s of CPU", "", ""))
        rows.append(("  ecs-sim CPU meanwhile", f"{baseline.sim_cpu:.2f} s (during the --once pass: {once.sim_cpu:.2f} s)", "", ""))
        ratio = baseline.wall / once.wall if once.wall > 0 else float("inf")
        rows.append(("ecs-warden speed-up over the SDK", f"{ratio:.1f}x wall ({baseline.cpu / max(once.cpu, 1e-9):.1f}x CPU)",
                     f">= {GOAL_SDK_RATIO:g}x", verdict(ratio >= GOAL_SDK_RATIO)))
        cpu_ratio = baseline.cpu / max(once.cpu, 1e-9)
        rows.append(("  CPU ratio (issue 12)", f"{cpu_ratio:.1f}x less CPU than the SDK", f">= {GOAL_SDK_CPU_RATIO:g}x",
                     verdict(cpu_ratio >= GOAL_SDK_CPU_RATIO)))
        rows.append(SEPARATOR)
    rows.append(("Run mode: start-up to READY=1", f"{ready_ms:.0f} ms (exec to sd_notify)", "", ""))
    rows.append(("  first passes (concurrent)", f"all done {first_done:.1f} s after exec", "", ""))
    rows.append(("    per loop", ", ".join(f"{k} {first_durations[k]:.2f}" for k in LOOP_ORDER if k in first_durations) + " s", "", ""))
    rows.append(("  idle CPU between passes", f"{idle.cpu * 1000:.0f} ms in {idle.seconds:.0f} s "
                 f"({idle.cpu / idle.seconds * 100:.2f}% of a CPU)", "", ""))
    rows.append(("    in that window", f"{idle.api_calls} API calls, {idle.passes} passes "
                 f"(+ {idle.polling_passes} empty passes of {', '.join(sorted(IDLE_POLLING_LOOPS))})", "0, 0",
                 verdict(idle.api_calls == 0 and idle.passes == 0)))
    rows.append((f"  /metrics at rest ({scrapes.count} scrapes)", f"p50 {scrapes.p50_ms:.2f} ms, p99 {scrapes.p99_ms:.2f} ms, "
                 f"max {scrapes.max_ms:.1f} ms", f"p99 < {GOAL_SCRAPE_P99_MS:g} ms", verdict(scrapes.p99_ms < GOAL_SCRAPE_P99_MS)))
    rows.append(("    response", f"{fmt_int(scrapes.size_bytes)} B, {fmt_int(scrapes.samples)} samples", "", ""))
    rows.append((f"  /metrics during a stuck pass ({busy.count})", f"p50 {busy.p50_ms:.2f} ms, p99 {busy.p99_ms:.2f} ms, "
                 f"max {busy.max_ms:.1f} ms", "", ""))
    rows.append(("  memory", f"VmHWM {memory_run['VmHWM']:.0f} MB (after the first passes {memory_after_passes['VmHWM']:.0f}), "
                 f"RSS {memory_run['VmRSS']:.0f} MB", "", ""))
    rows.append(("  SIGTERM", f"exit {run_status} in {run_stop_seconds:.2f} s", "exit 0", verdict(run_status == 0)))
    if precision:
        rows.append(SEPARATOR)
        delays = [d for b in precision for d in b.stop_delays]
        missing = sum(max(0, b.expected_stops - len(b.stop_delays)) for b in precision)
        worst = max(delays) if delays else float("inf")
        med = statistics.median(delays) if delays else float("inf")
        ok = bool(delays) and missing == 0 and worst < GOAL_STOP_DELAY_S and min(delays) >= 0
        rows.append((f"Schedule precision ({len(precision)} boundaries)",
                     f"stop calls {med:.2f} s median, {worst:.2f} s worst", f"< {GOAL_STOP_DELAY_S:g} s", verdict(ok)))
        rows.append(("  BatchStopServers calls", f"{len(delays)} of {sum(b.expected_stops for b in precision)} expected"
                     + (f", {missing} MISSING" if missing else ""), "", ""))
        starts = [d for b in precision for d in b.start_delays]
        if starts:
            rows.append(("  BatchStartServers (other one)", f"{statistics.median(starts):.2f} s median, {max(starts):.2f} s worst "
                         f"({len(starts)} calls)", "", ""))
        rows.append(("  list calls before 1st stop", ", ".join(str(b.lists_before_first_stop) for b in precision)
                     + " (per boundary)", "", ""))
        if min(delays, default=0) < 0:
            errors.append("a stop call came before its boundary")
        if missing:
            errors.append(f"{missing} expected stop calls did not come within {options.precision_settle:.0f} s")

    title = [
        f"ecs-warden scale benchmark — {os.path.abspath(options.warden)}",
        f"fleet {options.projects} projects x {fmt_int(options.servers)} servers = {fmt_int(fleet)} servers, "
        f"{options.flavors} flavors, {options.scheduled_share:g} scheduled; {os.cpu_count()} CPUs; MB = MiB; "
        f"run took {total_seconds:.0f} s",
    ]
    notes.append(f"Schedules of the fleet (office-hours, weeknights, lab) are real definitions in {zone} (it is about 13:00 "
                 f"there during the run), so their boundaries are hours away: the passes measured are reads only.")
    notes.append("Per-loop API calls: the simulator's request log, split at the loops' 'pass done' log lines (--once runs "
                 "quota, flavors, schedule, stuck, maintenance in sequence). Minimum, what the API allows: quota 1 "
                 "ShowServerLimits per project; flavors 1 ListFlavors + 1 NovaListAvailabilityZones per region; one "
                 f"listing of the fleet, ceil(servers/{PAGE_MAX}) NovaListServersDetails per project (pages of {PAGE_MAX}, "
                 "the API's largest), made by schedule and shared with stuck; no ShowJob (no job to follow on a fresh "
                 "state); maintenance none.")
    extra_lists = {loop: {p: n for p, n in once.per_project_lists[loop].items() if n > pages.get(p, 1)}
                   for loop in ("stuck", "schedule")}
    for loop, extra in extra_lists.items():
        if extra:
            sample = next(iter(extra.items()))
            notes.append(f"Note: the {loop} loop listed {len(extra)} projects with more pages than needed "
                         f"(e.g. {sample[0]}: {sample[1]} calls for {pages[sample[0]]} page(s) of servers).")
    if baseline:
        notes.append("SDK baseline: Benchmarks/sdk_baseline.py, official huaweicloudsdkecs only, one EcsClient per project, "
                     "sequential; per project one listing + show_server_limits, list_flavors and the AZs once. Both list "
                     "each project once (ecs-warden's stuck loop reuses the schedule loop's listing). Both times include "
                     "process start-up (Python imports the SDK).")
    if precision:
        notes.append(f"Precision: the daemon restarted with schedules {', '.join(precision_schedules)} (UTC) whose boundaries "
                     f"come every whole minute (one stops while the other starts), for "
                     f"{sum(len(v) for p in tagged.values() for v in p.values())} servers re-tagged through the tag API in "
                     f"{len(tagged)} projects; delay = the request log's time of each BatchStopServers call minus the "
                     f"boundary. The issue asks for 20 boundaries: PRECISION_BOUNDARIES=20 (the phase then takes about 21 minutes).")
        for b in precision:
            notes.append(f"  boundary {b.index + 1} {dt.datetime.fromtimestamp(b.at, dt.timezone.utc):%H:%M:%S} UTC "
                         f"({b.schedule} stops): stop calls at +" + ", +".join(f"{d:.2f}" for d in b.stop_delays)
                         + f" s (expected {b.expected_stops}); start calls at +" + (", +".join(f"{d:.2f}" for d in b.start_delays) or "-")
                         + f" s; {b.lists_before_first_stop} listing calls before the first stop")
    if idle.note:
        notes.append(f"Note: idle window: {idle.note}.")
    if not full:
        notes.append(f"Note: the goals are stated for {fmt_int(GOAL_FLEET)} servers; this fleet has {fmt_int(fleet)}.")
    notes.append(f"Load average (1 min) before: {load_before}, after: {load_after}; CPU of other processes during the "
                 f"--once pass: {once.others_share * 100:.0f}% of a CPU"
                 + (" -- WARNING: the machine was busy, wall-clock figures are pessimistic." if once.others_share > 0.15 else "."))
    notes.extend(options.note)
    if profile_lines:
        notes.append("perf profile of a second --once pass (fresh state), share of all samples:")
        notes.extend("  " + line for line in profile_lines)
    for error in errors:
        notes.append("ERROR: " + error)
    print_table(title, rows, notes)

    if options.json:
        results.update({
            "once": {k: (dict(v) if isinstance(v, Counter) else v) for k, v in once.__dict__.items() if k != "calls"},
            "once_calls": {k: dict(v) for k, v in once.calls.items()},
            "minimum_calls": {k: dict(v) for k, v in minimum.items()},
            "baseline": ({k: (dict(v) if isinstance(v, Counter) else v) for k, v in baseline.__dict__.items()} if baseline else None),
            "ready_ms": ready_ms, "first_passes": first_durations, "idle": idle.__dict__,
            "scrape_rest": scrapes.__dict__, "scrape_busy": busy.__dict__, "memory_run": memory_run,
            "precision": [b.__dict__ for b in precision], "errors": errors, "seconds": total_seconds,
            "listing": listing_bytes.__dict__, "cpu_us_per_server": once.cpu / fleet * 1e6,
            "once_passes": [{"cpu": r.cpu, "wall": r.wall, "max_rss_mib": r.max_rss_mib} for r in once_runs.passes],
            "json_mb_per_cpu_second": listing_bytes.bytes_total / 1e6 / max(once.cpu, 1e-9), "footprint": options.footprint,
            "goals": {
                "pass_seconds": once.wall < GOAL_PASS_SECONDS, "pass_mb": once.max_rss_mib < GOAL_PASS_MB,
                "api_minimum": all_minimal,
                "sdk_ratio": (baseline.wall / once.wall >= GOAL_SDK_RATIO) if baseline else None,
                "scrape_p99": scrapes.p99_ms < GOAL_SCRAPE_P99_MS,
                "stop_delay": (max((d for b in precision for d in b.stop_delays), default=float("inf")) < GOAL_STOP_DELAY_S)
                if precision else None,
            },
        })
        with open(options.json, "w") as handle:
            json.dump(results, handle, indent=2, default=str)
        log(f"results written to {options.json}")
    return 1 if errors else 0


def profile_once(warden: str, workdir: str, endpoint: str, region: str, config_projects: list[tuple[str, str]], zone: str,
                 options: argparse.Namespace, env: dict[str, str], requests: RequestLog, sim_pid: int) -> list[str]:
    """A second --once pass (fresh state) under `perf record -g`: the hottest functions of the
    project's own modules (inclusive time) and the hottest symbols (self time), demangled."""
    perf = shutil.which("perf")
    if not perf:
        return ["(perf is not installed: apt-get install linux-perf)"]
    config = os.path.join(workdir, "profile.yaml")
    write_config(config, state_dir=os.path.join(workdir, "state-profile"), endpoint=endpoint, region=region,
                 projects=config_projects, zone=zone, rps=options.rps, burst=options.burst)
    data = os.path.join(workdir, "perf.data")
    try:
        run_once(warden, config, env, workdir, requests, sim_pid, options.once_timeout, label="profile",
                 extra_prefix=[perf, "record", "-F", "499", "-g", "-o", data, "--"])
        inclusive = subprocess.run([perf, "report", "-i", data, "--stdio", "--children", "--sort", "symbol",
                                    "--percent-limit", "2", "-g", "none"], capture_output=True, text=True, timeout=600)
        own = subprocess.run([perf, "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
                              "--percent-limit", "2", "-g", "none"], capture_output=True, text=True, timeout=600)
    except (BenchError, subprocess.TimeoutExpired) as error:
        return [f"(profiling failed: {error})"]
    demangler = shutil.which("swift-demangle")

    def demangle(lines: list[str]) -> list[str]:
        if not demangler or not lines:
            return lines
        done = subprocess.run([demangler, "--simplified", "--compact"], input="\n".join(lines), capture_output=True,
                              text=True, timeout=60)
        return done.stdout.splitlines() if done.returncode == 0 else lines

    modules = ("ECSAPI", "WardenCore", "WardenDaemon", "WardenHTTP", "ECSSigning")
    inclusive_lines = []
    for line in inclusive.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].endswith("%") and any(m in parts[3] for m in modules):
            inclusive_lines.append(f"{parts[0]:>7} {parts[3]}")
    self_lines = []
    for line in own.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].endswith("%") and parts[2] in ("[.]", "[k]"):
            self_lines.append(f"{parts[0]:>7} {parts[1]}: {parts[3]}")
    result = ["inclusive, the project's own functions:"] + [l[:160] for l in demangle(inclusive_lines)[:12]]
    result += ["self time, every library:"] + [l[:160] for l in demangle(self_lines)[:12]]
    return result


if __name__ == "__main__":
    run_main(main, log, signals=(signal.SIGTERM, signal.SIGHUP), cleanup=cleanup_children)
