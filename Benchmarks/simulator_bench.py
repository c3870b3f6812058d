#!/usr/bin/env python3
"""Benchmark of ecs-sim: start-up, big pages, small-call throughput, memory.

Called by Benchmarks/simulator-bench.sh (which builds the binary and installs wrk); it can
also be run on its own:

    python3 Benchmarks/simulator_bench.py --bin .build/release/ecs-sim --projects 100 --servers 1000

Standard library only. Exit status: 0 when every measurement was taken (goals met or not),
1 on an error (simulator did not start, a request failed, the simulator did not stop).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_common, next to this script
from bench_common import (BenchError, Http, Simulator, fmt_int, iam_token, load_average,  # noqa: E402
                          make_logger, percentile, print_table, process_cpu_seconds, run_main,
                          system_busy_seconds, verdict)

PAGE_GOAL_MS = 50.0
RPS_GOAL = 5000.0
MEMORY_GOAL_MB = 500.0
MEMORY_GOAL_SERVERS = 100_000

log = make_logger("bench")


# --------------------------------------------------------------------------------------------
# CPU accounting: the simulator's own CPU time per request does not depend on what else runs on
# the machine; the CPU the rest of the machine used tells how much the wall-clock figures suffer.


def own_cpu_seconds() -> float:
    """This process and its waited-for children (wrk, the load processes)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class CpuUse:
    wall: float
    simulator: float
    others: float

    @property
    def others_share(self) -> float:
        """Other processes' CPU as a share of one CPU."""
        return self.others / self.wall if self.wall > 0 else 0.0


class CpuMeter:
    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self) -> "CpuMeter":
        self._start = (time.monotonic(), process_cpu_seconds(self.pid), system_busy_seconds(), own_cpu_seconds())
        return self

    def __exit__(self, *_: object) -> None:
        wall, simulator, busy, own = self._start
        d_sim = process_cpu_seconds(self.pid) - simulator
        d_busy = system_busy_seconds() - busy
        d_own = own_cpu_seconds() - own
        self.use = CpuUse(wall=time.monotonic() - wall, simulator=d_sim, others=max(0.0, d_busy - d_sim - d_own))


# --------------------------------------------------------------------------------------------
# HTTP helpers


@dataclass
class PageResult:
    label: str
    path: str
    requests: int
    median_ms: float
    p95_ms: float
    max_ms: float
    ttfb_median_ms: float
    size_bytes: int
    servers: int
    cpu: CpuUse | None = None


def bench_page(port: int, label: str, path: str, headers: dict[str, str], requests: int, warmup: int,
               expected: int) -> PageResult:
    """`requests` sequential GETs on one keep-alive connection; time from send to last body byte."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    totals: list[float] = []
    ttfbs: list[float] = []
    size = 0
    servers = -1
    try:
        for index in range(warmup + requests):
            started = time.perf_counter()
            conn.request("GET", path, headers={"Accept": "application/json", **headers})
            response = conn.getresponse()
            first = time.perf_counter()
            data = response.read()
            finished = time.perf_counter()
            if response.status != 200:
                raise BenchError(f"GET {path} → {response.status}: {data[:300]!r}")
            if response.getheader("Connection", "").lower() == "close":
                raise BenchError(f"GET {path}: server closed the keep-alive connection")
            if index == 0:
                document = json.loads(data)
                servers = len(document.get("servers", []))
                if servers != expected:
                    raise BenchError(f"GET {path}: {servers} servers in the page, expected {expected}")
            size = len(data)
            if index >= warmup:
                totals.append((finished - started) * 1000.0)
                ttfbs.append((first - started) * 1000.0)
    finally:
        conn.close()
    return PageResult(label=label, path=path, requests=requests, median_ms=statistics.median(totals),
                      p95_ms=percentile(totals, 0.95), max_ms=max(totals),
                      ttfb_median_ms=statistics.median(ttfbs), size_bytes=size, servers=servers)


# --------------------------------------------------------------------------------------------
# Small-call load: wrk, or a Python fallback


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    note: str = ""
    raw: str = field(default="", repr=False)


WRK_LUA = """\
wrk.method = "GET"
wrk.headers["X-Auth-Token"] = "{token}"
wrk.headers["Accept"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def run_wrk(wrk: str, url: str, token: str, threads: int, connections: int, duration: str) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_LUA.format(token=token))
        script_path = script.name
    try:
        command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}", "--latency", "-s", script_path, url]
        log("running " + " ".join(command))
        completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(script_path)
    output = completed.stdout
    if completed.returncode != 0:
        raise BenchError(f"wrk failed ({completed.returncode}): {completed.stderr.strip() or output.strip()}")
    match = re.search(r"^BENCH (.*)$", output, re.M)
    if not match:
        raise BenchError(f"unexpected wrk output:\n{output}")
    values = {k: int(v) for k, v in (item.split("=") for item in match.group(1).split())}
    rps_match = re.search(r"Requests/sec:\s*([\d.]+)", output)
    seconds = values["duration_us"] / 1e6
    rps = float(rps_match.group(1)) if rps_match else values["requests"] / seconds
    return LoadResult(tool="wrk", requests=values["requests"], seconds=seconds, rps=rps,
                      p50_ms=values["p50_us"] / 1000.0, p99_ms=values["p99_us"] / 1000.0,
                      non_2xx=values["non2xx"],
                      socket_errors=values["connect"] + values["read"] + values["write"] + values["timeout"],
                      raw=output)


async def _python_load_worker(port: int, path: str, token: str, connections: int, seconds: float) -> tuple[int, int, int, list[float]]:
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
               f"X-Auth-Token: {token}\r\n\r\n").encode()
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    counts = {"ok": 0, "bad": 0, "errors": 0}

    async def one_connection() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["errors"] += 1
            return
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                counts["ok" if 200 <= status < 300 else "bad"] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            counts["errors"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return counts["ok"], counts["bad"], counts["errors"], latencies


def _python_load_process(args: tuple[int, str, str, int, float]) -> tuple[int, int, int, list[float]]:
    return asyncio.run(_python_load_worker(*args))


def run_python_load(port: int, path: str, token: str, processes: int, connections: int, seconds: float) -> LoadResult:
    log(f"running the Python load generator: {processes} processes, {connections} connections, {seconds:g} s")
    per_process = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    started = time.perf_counter()
    with multiprocessing.Pool(processes) as pool:
        results = pool.map(_python_load_process, [(port, path, token, n, seconds) for n in per_process if n])
    elapsed = time.perf_counter() - started
    ok = sum(r[0] for r in results)
    bad = sum(r[1] for r in results)
    errors = sum(r[2] for r in results)
    latencies = [x for r in results for x in r[3]]
    if not latencies:
        raise BenchError("the Python load generator completed no request")
    return LoadResult(tool="python-asyncio", requests=ok + bad, seconds=elapsed, rps=(ok + bad) / elapsed,
                      p50_ms=percentile(latencies, 0.50) * 1000.0, p99_ms=percentile(latencies, 0.99) * 1000.0,
                      non_2xx=bad, socket_errors=errors,
                      note="small calls measured with the Python asyncio load generator, not wrk (it is CPU-bound itself: the figure is a lower bound)")


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|m)?", text.strip())
    if not match:
        raise BenchError(f"bad duration {text!r}")
    value = float(match.group(1))
    return value / 1000.0 if match.group(2) == "ms" else value * 60.0 if match.group(2) == "m" else value


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="ecs-sim binary")
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--servers", type=int, default=1000, help="servers per project")
    parser.add_argument("--page-requests", type=int, default=50)
    parser.add_argument("--page-warmup", type=int, default=3)
    parser.add_argument("--wrk", default="", help="wrk binary; empty = Python load generator")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--start-timeout", type=float, default=900.0)
    parser.add_argument("--iam-user", default="sim-user")
    parser.add_argument("--iam-password", default="sim-password")
    parser.add_argument("--json", default="", help="also write the results here as JSON")
    parser.add_argument("--note", action="append", default=[], help="extra line under the table")
    options = parser.parse_args()

    if not (os.path.isfile(options.bin) and os.access(options.bin, os.X_OK)):
        raise BenchError(f"no executable ecs-sim at {options.bin}")
    fleet = options.projects * options.servers
    stderr_path = os.path.join(tempfile.gettempdir(), f"ecs-sim-bench-{os.getpid()}.stderr")
    simulator = Simulator(
        options.bin,
        ["--port", "0", "--projects", str(options.projects), "--servers-per-project", str(options.servers),
         "--iam-user", options.iam_user, "--iam-password", options.iam_password],
        options.start_timeout, stderr_path)
    results: dict[str, object] = {"binary": os.path.abspath(options.bin), "projects": options.projects,
                                  "servers_per_project": options.servers, "servers": fleet, "cpus": os.cpu_count()}
    try:
        load_before = load_average()
        log(f"starting {options.bin} with {options.projects} projects × {options.servers} servers")
        simulator.start()
        log(f"listening on port {simulator.port} after {simulator.startup_seconds:.2f} s (pid {simulator.proc.pid})")
        time.sleep(0.3)  # let the remaining banner lines arrive
        memory_fleet = simulator.memory()

        conn = Http(simulator.port, 60, reconnect=False)
        status, _, data = conn.request("GET", "/_sim/state")
        if status != 200:
            raise BenchError(f"GET /_sim/state → {status}: {data[:300]!r}")
        state = json.loads(data)
        project_ids = [p["id"] for p in state.get("projects", [])]
        if len(project_ids) != options.projects or state.get("servers") != fleet:
            raise BenchError(f"/_sim/state lists {len(project_ids)} projects and {state.get('servers')} servers, "
                             f"expected {options.projects} and {fleet}")
        # The first project (--project-id) is the one every token below is scoped to.
        first_line_projects = next((l for l in simulator.lines if l.startswith("projects ")), "")
        project = first_line_projects.split(": ", 1)[1].split(",")[0].strip() if ": " in first_line_projects else project_ids[0]
        token = iam_token(conn, options.iam_user, options.iam_password, project, arrow="→")
        conn.close()
        log(f"project {project}, token {token[:12]}…")

        expected_page = min(1000, options.servers)
        auth = {"X-Auth-Token": token}
        with CpuMeter(simulator.proc.pid) as meter:
            nova = bench_page(simulator.port, "Nova servers/detail, limit=1000",
                              f"/v2.1/{project}/servers/detail?limit=1000",
                              {**auth, "X-OpenStack-Nova-API-Version": "2.26"},
                              options.page_requests, options.page_warmup, expected_page)
        nova.cpu = meter.use
        log(f"Nova page: median {nova.median_ms:.1f} ms, p95 {nova.p95_ms:.1f} ms, {nova.size_bytes} bytes")
        with CpuMeter(simulator.proc.pid) as meter:
            v1 = bench_page(simulator.port, "v1 cloudservers/detail, limit=1000",
                            f"/v1/{project}/cloudservers/detail?limit=1000&offset=1", auth,
                            options.page_requests, options.page_warmup, expected_page)
        v1.cpu = meter.use
        log(f"v1 page: median {v1.median_ms:.1f} ms, p95 {v1.p95_ms:.1f} ms, {v1.size_bytes} bytes")
        memory_pages = simulator.memory()

        small_path = f"/v1/{project}/cloudservers/limits"
        with CpuMeter(simulator.proc.pid) as meter:
            if options.wrk:
                load = run_wrk(options.wrk, f"http://127.0.0.1:{simulator.port}{small_path}", token,
                               options.threads, options.connections, options.duration)
            else:
                load = run_python_load(simulator.port, small_path, token, options.threads, options.connections,
                                       parse_duration(options.duration))
        load_cpu = meter.use
        log(f"small calls: {load.rps:.0f} req/s, p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms")
        if load.requests == 0 or load.non_2xx == load.requests:
            raise BenchError(f"the small-call load got no successful response ({load.non_2xx} non-2xx)")
        memory_load = simulator.memory()

        conn = Http(simulator.port, 60, reconnect=False)
        _, _, data = conn.request("GET", "/_sim/state")
        conn.close()
        requests_logged = json.loads(data).get("requests_logged", -1)

        load_after = load_average()
        exit_status, stop_seconds = simulator.stop()
        stopped_line = any("ecs-sim stopped" in line for line in simulator.lines)
        if exit_status != 0:
            raise BenchError(f"ecs-sim exited with status {exit_status} after SIGTERM; stderr: {simulator.stderr_tail()}")
        log(f"ecs-sim exited with status 0, {stop_seconds:.2f} s after SIGTERM")
    except BaseException:
        simulator.kill_if_running()
        raise
    finally:
        try:
            os.unlink(stderr_path)
        except OSError:
            pass

    # ---- table
    full_fleet = fleet == MEMORY_GOAL_SERVERS
    page_goal = f"p95 < {PAGE_GOAL_MS:.0f} ms"
    rows: list[tuple[str, str, str, str]] = []
    rows.append(("Start-up to listening (incl. fleet)", f"{simulator.startup_seconds:.2f} s", "", ""))
    for page in (nova, v1):
        rows.append((page.label,
                     f"median {page.median_ms:.1f} ms, p95 {page.p95_ms:.1f} ms (max {page.max_ms:.1f})",
                     page_goal, verdict(page.p95_ms < PAGE_GOAL_MS)))
        rows.append(("  response", f"{fmt_int(page.size_bytes)} B, {page.servers} servers, "
                     f"first byte at {page.ttfb_median_ms:.1f} ms (median)", "", ""))
        assert page.cpu
        pages_total = page.requests + options.page_warmup
        rows.append(("  ecs-sim CPU; other processes", f"{page.cpu.simulator / pages_total * 1000:.1f} ms per page; "
                     f"others {page.cpu.others_share * 100:.0f}% of a CPU", "", ""))
    conc = f"{options.threads} threads, {options.connections} conns" if load.tool == "wrk" else \
        f"{options.threads} procs, {options.connections} conns"
    rows.append((f"Small calls: v1 cloudservers/limits",
                 f"{load.rps:,.0f} req/s ({fmt_int(load.requests)} in {load.seconds:.1f} s)",
                 f"> {RPS_GOAL:,.0f} req/s", verdict(load.rps > RPS_GOAL)))
    rows.append((f"  {load.tool}, {conc}; latency", f"p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms", "", ""))
    rows.append(("  ecs-sim CPU; other processes",
                 f"{load_cpu.simulator / max(1, load.requests) * 1e6:.0f} µs per request "
                 f"({load_cpu.simulator / load_cpu.wall * 100:.0f}% of a CPU); others {load_cpu.others_share * 100:.0f}%",
                 "", ""))
    rows.append(("  errors", f"{fmt_int(load.non_2xx)} non-2xx, {fmt_int(load.socket_errors)} socket errors",
                 "0", verdict(load.non_2xx == 0 and load.socket_errors == 0)))
    memory_goal = f"< {MEMORY_GOAL_MB:.0f} MB @ {fmt_int(MEMORY_GOAL_SERVERS)} servers"
    memory_rows = [("after loading the fleet", memory_fleet), ("after the page requests", memory_pages),
                   ("after the small-call load", memory_load)]
    for label, memory in memory_rows:
        is_last = memory is memory_load
        goal = memory_goal if is_last else ""
        result = ""
        if is_last:
            result = verdict(memory["VmHWM"] < MEMORY_GOAL_MB) + ("" if full_fleet else f" (fleet {fmt_int(fleet)})")
        rows.append((f"VmHWM {label}",
                     f"{memory['VmHWM']:.0f} MB (RSS {memory['VmRSS']:.0f} MB)", goal, result))
    rows.append(("Request log after the run", f"{fmt_int(requests_logged)} entries", "", ""))
    rows.append(("Stop with SIGTERM", f"exited 0 in {stop_seconds:.2f} s"
                 + ("" if stopped_line else " (no 'ecs-sim stopped' line)"), "exit 0", verdict(True)))

    title = [
        f"ecs-sim benchmark — {os.path.abspath(options.bin)}",
        f"fleet {options.projects} projects × {fmt_int(options.servers)} servers = {fmt_int(fleet)} servers; "
        f"{os.cpu_count()} CPUs; {options.page_requests} page requests each (after {options.page_warmup} warm-up) "
        "on one keep-alive connection; MB = MiB",
    ]
    notes = [f"Pages: GET /v2.1/{{p}}/servers/detail?limit=1000 (X-OpenStack-Nova-API-Version: 2.26) and "
             f"GET /v1/{{p}}/cloudservers/detail?limit=1000&offset=1; small calls: GET /v1/{{p}}/cloudservers/limits; "
             f"p = {project}, X-Auth-Token from POST /v3/auth/tokens.", *options.note]
    if load.note:
        notes.append("Note: " + load.note)
    if not full_fleet:
        notes.append(f"Note: the memory goal is stated for {fmt_int(MEMORY_GOAL_SERVERS)} servers; this fleet has "
                     f"{fmt_int(fleet)}.")
    notes.append(f"Note: the load generator runs on the same machine as the simulator and shares its CPUs "
                 f"({load.tool}'s own CPU is not in 'others').")
    busiest = max(nova.cpu.others_share, v1.cpu.others_share, load_cpu.others_share)  # type: ignore[union-attr]
    notes.append(f"Load average (1 min) before the start: {load_before}, after the load: {load_after}; "
                 f"CPU of other processes during the measurements: up to {busiest * 100:.0f}% of a CPU"
                 + (" -- WARNING: the machine was busy, wall-clock figures are pessimistic; "
                    "the ecs-sim CPU figures are hardly affected." if busiest > 0.15 else "."))
    print_table(title, rows, notes)

    if options.json:
        results.update({
            "startup_seconds": simulator.startup_seconds,
            "pages": [{**page.__dict__, "cpu": page.cpu.__dict__ if page.cpu else None} for page in (nova, v1)],
            "small_calls_cpu": load_cpu.__dict__,
            "load_average": {"before": load_before, "after": load_after},
            "small_calls": {k: v for k, v in load.__dict__.items() if k != "raw"},
            "memory_mib": {"after_fleet": memory_fleet, "after_pages": memory_pages, "after_load": memory_load},
            "requests_logged": requests_logged,
            "stop_seconds": stop_seconds,
            "goals": {
                "page_p95_ms": {"goal": PAGE_GOAL_MS, "nova": nova.p95_ms < PAGE_GOAL_MS, "v1": v1.p95_ms < PAGE_GOAL_MS},
                "small_rps": {"goal": RPS_GOAL, "pass": load.rps > RPS_GOAL},
                "memory_mib": {"goal": MEMORY_GOAL_MB, "pass": memory_load["VmHWM"] < MEMORY_GOAL_MB,
                               "fleet_is_goal_size": full_fleet},
            },
        })
        with open(options.json, "w") as handle:
            json.dump(results, handle, indent=2)
        log(f"results written to {options.json}")
    return 0


if __name__ == "__main__":
    run_main(main, log)
