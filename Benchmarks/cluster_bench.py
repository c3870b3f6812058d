#!/usr/bin/env python3
"""Cluster-mode benchmark of ecs-warden (issue #11): replicas on one PostgreSQL against one ecs-sim.

Called by Benchmarks/cluster-bench.sh, which builds the binaries and starts a throw-away PostgreSQL
with pg_stat_statements (its URL is --db-url, a superuser's). Phases, loopback only:

  1. Lease renewal: 3 replicas over 10 projects, then over 1,000 (11 and 1,001 shards). After the
     shards are spread and the first passes ended, pg_stat_statements is reset, the cluster runs for
     a few renew intervals, and each node's statements are read (each replica connects as a role of
     its own, so the view tells them apart): calls of the renewal statement per node per interval,
     its mean time, and every statement per node per interval.
  2. Failover (the 3 replicas over 1,000 projects of phase 1): kill -9 of a random owner, time from
     the kill to the last of its shards claimed by another node (shard_handovers.at, the database's
     clock, on this same host), restart it, wait for the shards to be spread again; then SIGTERM of
     a random owner, time from the signal to the last of its shards claimed by another node (with
     every node's loops at rest, then right after a schedule pass was started on that node).
  3. Passes: 1,000 projects x 100 servers with short schedule/stuck intervals, on SQLite (one node),
     on PostgreSQL with one node, then with three: each node's pass times (GET /v1/loops
     lastDurationSeconds, every pass of the window), CPU over the window per schedule interval,
     peak RSS (VmHWM), shards owned.

Standard library only (psql through subprocess). Exit status 0 when every measurement was taken,
goals met or not; 1 on an error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_common, warden_bench, next to this script
from bench_common import (SEPARATOR, BenchError, Http, Simulator, load_average, make_logger,  # noqa: E402
                          print_table, process_cpu_seconds, process_memory_mib, run_main, verdict)
from warden_bench import Daemon, cleanup_children, fleet_zone, spawn, write_config  # noqa: E402

log = make_logger("cluster-bench")
NODES = ["warden-a", "warden-b", "warden-c"]
SOLO = "warden-solo"
GOAL_HANDOVER_S = 1.0


# --------------------------------------------------------------------------------------------
# PostgreSQL through psql


class Pg:
    def __init__(self, url: str):
        self.url = url

    def rows(self, sql: str) -> list[list[str]]:
        done = subprocess.run(["psql", self.url, "-X", "-A", "-t", "-q", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-c", sql],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise BenchError(f"psql failed ({done.returncode}) on {sql[:80]!r}: {done.stderr.strip()[:400]}")
        return [line.split("\x1f") for line in done.stdout.splitlines() if line]

    def value(self, sql: str) -> str:
        rows = self.rows(sql)
        return rows[0][0] if rows else ""


def role_of(node: str) -> str:
    return node.replace("-", "_")


def node_url(base: str, node: str) -> str:
    """The URL of --db-url with the node's own role as the user."""
    scheme, rest = base.split("://", 1)
    host = rest.split("@", 1)[1] if "@" in rest.split("/", 1)[0] else rest
    return f"{scheme}://{role_of(node)}@{host}"


def sql_list(values: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


# --------------------------------------------------------------------------------------------
# Replicas


class Replica(Daemon):
    """warden_bench's Daemon whose whole log also goes to a file (LOG_DIR/<label>.log)."""

    log_dir = ""

    def _read_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        with open(os.path.join(self.log_dir, f"{self.label}.log"), "w") as out:
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                out.write(line + "\n")
                out.flush()
                match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                if match:
                    self.ports.append(int(match.group(1)))
                self.lines.append(line)
                del self.lines[:-200]


LOOPS_IDLE = ["  quota: {interval: 30m}", "  stuck: {interval: 30m}", "  schedule: {interval: 30m}",
              "  flavors: {interval: 30m}", "  maintenance: {interval: 1h}"]


def loops_busy(seconds: int) -> list[str]:
    return ["  quota: {interval: 30m}", f"  stuck: {{interval: {seconds}s}}", f"  schedule: {{interval: {seconds}s}}",
            "  flavors: {interval: 30m}", "  maintenance: {interval: 1h}"]


class Fleet:
    """Writes configurations and starts, kills and stops the replicas."""

    def __init__(self, options: argparse.Namespace, workdir: str, env: dict[str, str], endpoint: str, region: str,
                 projects: list[tuple[str, str]], zone: str, token: str):
        self.options = options
        self.workdir = workdir
        self.env = env
        self.endpoint = endpoint
        self.region = region
        self.projects = projects
        self.zone = zone
        self.token = token
        self.daemons: dict[str, Daemon] = {}
        self.generation = 0

    def config(self, node: str, count: int, loops: list[str], backend: str) -> str:
        path = os.path.join(self.workdir, f"{node}-{count}-{backend}.yaml")
        write_config(path, state_dir=os.path.join(self.workdir, f"state-{node}-{backend}"), endpoint=self.endpoint,
                     region=self.region, projects=self.projects[:count], zone=self.zone, rps=self.options.rps,
                     burst=self.options.burst)
        with open(path) as handle:
            lines = handle.read().splitlines()
        start = lines.index("loops:") + 1
        end = lines.index("tags:")
        lines[start:end] = loops
        if backend == "postgres":
            lines += ["state:", "  backend: postgres", "  postgres:", "    url: {env: ECS_WARDEN_STATE_DB_URL}",
                      "cluster:", f"  node: {node}", f"  lease_ttl: {self.options.ttl}s"]
        with open(path, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        return path

    def start(self, node: str, config: str) -> Daemon:
        self.generation += 1
        env = {**self.env, "ECS_WARDEN_STATE_DB_URL": node_url(self.options.db_url, node)}
        daemon = Replica(self.options.warden, config, env, self.workdir, f"{node}-{self.generation}", self.token)
        daemon.start(self.options.start_timeout)
        self.daemons[node] = daemon
        return daemon

    def kill(self, node: str) -> None:
        daemon = self.daemons.pop(node)
        assert daemon.proc
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.proc.wait(10)

    def stop_all(self) -> None:
        for node in list(self.daemons):
            self.daemons.pop(node).stop()


def live_owners(pg: Pg, shards: list[str]) -> dict[str, int]:
    rows = pg.rows(f"SELECT holder, count(*) FROM shard_leases WHERE shard = ANY({sql_list(shards)}) "
                   "AND holder IS NOT NULL AND expires_at > now() GROUP BY holder")
    return {r[0]: int(r[1]) for r in rows}


def wait_spread(pg: Pg, shards: list[str], nodes: list[str], timeout: float) -> dict[str, int]:
    """Until every shard is live and each node holds some, at most its fair share ceil(shards / nodes)
    (a node may stay below it: nobody is above the target to release one)."""
    high = math.ceil(len(shards) / len(nodes))
    deadline = time.monotonic() + timeout
    while True:
        owners = live_owners(pg, shards)
        if sum(owners.values()) == len(shards) and all(0 < owners.get(n, 0) <= high for n in nodes):
            return owners
        if time.monotonic() > deadline:
            raise BenchError(f"shards not spread over {nodes} within {timeout:.0f} s: {owners}")
        time.sleep(0.25)


def wait_idle_loops(fleet: Fleet, timeout: float, *, at_rest: bool = True) -> None:
    """Until every replica's loops made their first pass and (at_rest) none is running."""
    deadline = time.monotonic() + timeout
    for node, daemon in fleet.daemons.items():
        control = Http(daemon.control_port, 30)
        while True:
            loops = daemon.loops(control)
            if loops and all(l.get("passes", 0) >= 1 and not (at_rest and l.get("running")) for l in loops.values()):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{node}: first passes not done within {timeout:.0f} s")
            time.sleep(0.5)
        control.close()


def seed_members(pg: Pg, nodes: list[str]) -> None:
    """Marks the nodes alive just before they start, so the first one up claims its fair share of
    the fleet rather than all of it (otherwise its peak memory would be a single node's)."""
    values = ",".join(f"('{n}', now(), now())" for n in nodes)
    pg.rows(f"INSERT INTO cluster_nodes (name, started_at, heartbeat_at) VALUES {values} "
            "ON CONFLICT (name) DO UPDATE SET heartbeat_at = now(), left_at = NULL")


# --------------------------------------------------------------------------------------------
# Phase 1: renewal statements


@dataclass
class RenewalResult:
    projects: int
    shards: int
    window: float
    intervals: float
    per_node: dict[str, dict[str, float]]
    others: list[tuple[str, str, int]]


def measure_renewal(pg: Pg, fleet: Fleet, count: int, renew: float, intervals: int, keep: bool = False) -> RenewalResult:
    """Starts the 3 replicas over `count` projects, measures, stops them (unless `keep`)."""
    shards = [f"project:{pid}" for _, pid in fleet.projects[:count]] + [f"region:{fleet.region}"]
    for node in NODES:
        fleet.start(node, fleet.config(node, count, LOOPS_IDLE, "postgres"))
    owners = wait_spread(pg, shards, NODES, fleet.options.settle_timeout)
    log(f"{count} projects: shards spread {owners}")
    wait_idle_loops(fleet, fleet.options.settle_timeout)
    time.sleep(renew)  # a round after the first passes
    pg.rows("SELECT pg_stat_statements_reset()")
    started = time.monotonic()
    time.sleep(intervals * renew)
    window = time.monotonic() - started
    rows = pg.rows("SELECT userid::regrole::text, calls, mean_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) "
                   "FROM pg_stat_statements WHERE userid::regrole::text LIKE 'warden\\_%'")
    per_node: dict[str, dict[str, float]] = {n: {"renew_calls": 0, "renew_mean_ms": 0.0, "all_calls": 0, "claims": 0}
                                             for n in NODES}
    others: dict[tuple[str, str], int] = {}
    for role, calls, mean, query in rows:
        node = role.replace("_", "-")
        if node not in per_node:
            continue
        figures = per_node[node]
        figures["all_calls"] += int(calls)
        if query.startswith("WITH beat AS"):
            figures["renew_calls"] += int(calls)
            figures["renew_mean_ms"] = float(mean)
        else:
            if query.startswith("WITH candidates AS"):
                figures["claims"] += int(calls)
            others[(node, query)] = others.get((node, query), 0) + int(calls)
    if not keep:
        fleet.stop_all()
    return RenewalResult(projects=count, shards=len(shards), window=window, intervals=window / renew, per_node=per_node,
                         others=sorted(((n, q, c) for (n, q), c in others.items()), key=lambda x: -x[2])[:12])


# --------------------------------------------------------------------------------------------
# Phase 2: failover


def last_handover_id(pg: Pg) -> int:
    return int(pg.value("SELECT coalesce(max(id), 0) FROM shard_handovers") or 0)


def take_over(pg: Pg, shards: list[str], gone: str, since_id: int, signalled: float, timeout: float) -> tuple[float, float]:
    """Waits until every shard of `shards` is live under another node than `gone`; (first, last)
    claim after `signalled`, in seconds, from shard_handovers.at."""
    deadline = time.monotonic() + timeout
    while True:
        owners = live_owners(pg, shards)
        if sum(c for n, c in owners.items() if n != gone) == len(shards):
            break
        if time.monotonic() > deadline:
            raise BenchError(f"shards of {gone} not taken over within {timeout:.0f} s: {owners}")
        time.sleep(0.05)
    first, last = pg.rows(
        "SELECT extract(epoch FROM min(at))::float8, extract(epoch FROM max(at))::float8 FROM "
        f"(SELECT shard, min(at) AS at FROM shard_handovers WHERE id > {since_id} AND to_node IS NOT NULL AND to_node <> '{gone}' "
        f"AND shard = ANY({sql_list(shards)}) GROUP BY shard) s")[0]
    return float(first) - signalled, float(last) - signalled


def failovers(pg: Pg, fleet: Fleet, count: int, rounds: int, how: int, rng: random.Random, *,
              mid_pass: bool = False) -> list[dict]:
    """`rounds` times: a random owner gets `how` (after the loops of every node are at rest, or
    with mid_pass=True right after its schedule loop was started through the control API), the
    time until its shards are claimed by others is measured, and it is started again."""
    shards = [f"project:{pid}" for _, pid in fleet.projects[:count]] + [f"region:{fleet.region}"]
    results = []
    for index in range(rounds):
        wait_spread(pg, shards, NODES, fleet.options.settle_timeout)
        wait_idle_loops(fleet, fleet.options.settle_timeout * 2)
        node = rng.choice(NODES)
        daemon = fleet.daemons[node]
        assert daemon.proc
        if mid_pass:
            control = Http(daemon.control_port, 30)
            daemon.run_loop(control, "schedule")
            deadline = time.monotonic() + 30
            while not daemon.loops(control)["schedule"].get("running"):
                if time.monotonic() > deadline:
                    raise BenchError(f"{node}: the schedule pass asked for did not start within 30 s")
                time.sleep(0.02)
            time.sleep(0.5)
            control.close()
        mine = [r[0] for r in pg.rows(f"SELECT shard FROM shard_leases WHERE holder = '{node}' AND expires_at > now()")]
        since_id = last_handover_id(pg)
        signalled = time.time()
        if how == signal.SIGKILL:
            fleet.kill(node)
            exited = 0.0
        else:
            os.kill(daemon.pid, signal.SIGTERM)
            daemon.proc.wait(40)
            exited = time.time() - signalled
            fleet.daemons.pop(node)
        first, last = take_over(pg, mine, node, since_id, signalled, fleet.options.ttl * 4)
        reasons = dict(pg.rows(f"SELECT reason, count(*) FROM shard_handovers WHERE id > {since_id} "
                               f"AND shard = ANY({sql_list(mine)}) AND to_node IS NOT NULL GROUP BY reason"))
        log(f"{signal.Signals(how).name}{' mid-pass' if mid_pass else ''} {index + 1}/{rounds}: {node} ({len(mine)} shards) "
            f"taken over in {first:.2f}..{last:.2f} s, exited after {exited:.2f} s ({reasons})")
        results.append({"node": node, "shards": len(mine), "first": first, "last": last, "exited": exited, "reasons": reasons,
                        "log": os.path.join(Replica.log_dir, f"{daemon.label}.log")})
        fleet.start(node, fleet.config(node, count, LOOPS_IDLE, "postgres"))
    wait_spread(pg, shards, NODES, fleet.options.settle_timeout)
    return results


# --------------------------------------------------------------------------------------------
# Phase 3: passes


@dataclass
class NodeRun:
    node: str
    shards: int = 0
    passes: dict[str, list[float]] = field(default_factory=lambda: {"schedule": [], "stuck": []})
    cpu: float = 0.0
    hwm_mib: float = 0.0
    rss_mib: float = 0.0


@dataclass
class PassRun:
    label: str
    window: float
    nodes: list[NodeRun]
    sim_cpu: float
    load: str


def measure_passes(pg: Pg, fleet: Fleet, label: str, backend: str, nodes: list[str], sim_pid: int) -> PassRun:
    options = fleet.options
    count = len(fleet.projects)
    shards = [f"project:{pid}" for _, pid in fleet.projects] + [f"region:{fleet.region}"]
    if backend == "postgres":
        seed_members(pg, nodes)
    for node in nodes:
        fleet.start(node, fleet.config(node, count, loops_busy(options.pass_interval), backend))
    if backend == "postgres":
        owners = wait_spread(pg, shards, nodes, options.settle_timeout)
        log(f"{label}: shards spread {owners}")
    wait_idle_loops(fleet, options.settle_timeout * 4, at_rest=False)
    runs = {n: NodeRun(node=n) for n in nodes}
    controls = {n: Http(fleet.daemons[n].control_port, 30) for n in nodes}
    seen = {n: {loop: int(item.get("passes", 0)) for loop, item in fleet.daemons[n].loops(controls[n]).items()} for n in nodes}
    cpu0 = {n: process_cpu_seconds(fleet.daemons[n].pid) for n in nodes}
    sim0 = process_cpu_seconds(sim_pid)
    started = time.monotonic()
    while time.monotonic() - started < options.pass_window:
        for n in nodes:
            for loop, item in fleet.daemons[n].loops(controls[n]).items():
                if loop in runs[n].passes and int(item.get("passes", 0)) > seen[n][loop]:
                    seen[n][loop] = int(item.get("passes", 0))
                    if item.get("lastDurationSeconds") is not None:
                        runs[n].passes[loop].append(float(item["lastDurationSeconds"]))
        time.sleep(0.5)
    window = time.monotonic() - started
    sim_cpu = process_cpu_seconds(sim_pid) - sim0
    owners = live_owners(pg, shards) if backend == "postgres" else {nodes[0]: len(shards)}
    for n in nodes:
        daemon = fleet.daemons[n]
        runs[n].cpu = process_cpu_seconds(daemon.pid) - cpu0[n]
        memory = process_memory_mib(daemon.pid)
        runs[n].hwm_mib, runs[n].rss_mib = memory.get("VmHWM", 0.0), memory.get("VmRSS", 0.0)
        runs[n].shards = owners.get(n, 0)
        controls[n].close()
    load = load_average()
    fleet.stop_all()
    result = PassRun(label=label, window=window, nodes=list(runs.values()), sim_cpu=sim_cpu, load=load)
    for run in result.nodes:
        log(f"{label} {run.node}: {run.shards} shards, schedule {run.passes['schedule']}, stuck {run.passes['stuck']}, "
            f"CPU {run.cpu:.1f} s in {window:.0f} s, HWM {run.hwm_mib:.0f} MiB")
    return result


# --------------------------------------------------------------------------------------------
# Report


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_s(values: list[float]) -> str:
    if not values:
        return "no pass"
    return f"{med(values):.2f} s (n={len(values)}, max {max(values):.2f})"


def report(options: argparse.Namespace, renewals: list[RenewalResult], kills: list[dict], terms: list[dict],
           terms_mid: list[dict], passes: list[PassRun], notes: list[str]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    renew = options.ttl / 3
    # 1. renewal
    for r in renewals:
        per_interval = [f["renew_calls"] / r.intervals for f in r.per_node.values()]
        means = [f["renew_mean_ms"] for f in r.per_node.values()]
        every = [f["all_calls"] / r.intervals for f in r.per_node.values()]
        ok = all(0.75 <= x <= 1.25 for x in per_interval)
        rows.append((f"renewal statement per node per interval, {r.projects:,} projects ({r.shards:,} shards)",
                     " / ".join(f"{x:.2f}" for x in per_interval), "1, whatever the shards", verdict(ok)))
        rows.append((f"  renewal mean time, {r.projects:,} projects", " / ".join(f"{x:.2f} ms" for x in means), "", ""))
        rows.append((f"  all statements per node per interval, {r.projects:,} projects",
                     " / ".join(f"{x:.2f}" for x in every), "", ""))
    if len(renewals) == 2:
        small, large = renewals
        ratio = (sum(f["renew_calls"] for f in large.per_node.values()) / large.intervals) / max(
            1e-9, sum(f["renew_calls"] for f in small.per_node.values()) / small.intervals)
        rows.append((f"  renewals, {large.projects:,} vs {small.projects:,} projects", f"{ratio:.2f}x", "1x (no growth)",
                     verdict(0.8 <= ratio <= 1.25)))
    rows.append(SEPARATOR)
    # 2. failover
    goal = options.ttl + renew
    for label, items, limit in (("takeover after kill -9", kills, goal), ("handover on SIGTERM, loops at rest", terms, GOAL_HANDOVER_S),
                                ("handover on SIGTERM during a schedule pass", terms_mid, GOAL_HANDOVER_S)):
        if not items:
            continue
        last = [i["last"] for i in items]
        rows.append((f"{label}, {len(items)} times (signal -> last shard claimed)",
                     f"min {min(last):.2f} s, median {med(last):.2f} s, max {max(last):.2f} s",
                     f"<= {limit:g} s", verdict(med(last) <= limit and max(last) <= limit)))
        first = [i["first"] for i in items]
        rows.append((f"  first shard claimed", f"min {min(first):.2f} s, median {med(first):.2f} s, max {max(first):.2f} s", "", ""))
        if label.startswith("handover"):
            exited = [i["exited"] for i in items]
            rows.append(("  signal -> process exit", f"median {med(exited):.2f} s, max {max(exited):.2f} s", "", ""))
    rows.append(SEPARATOR)
    # 3. passes
    single = next((p for p in passes if p.label == "postgres x1"), None)
    for run in passes:
        for node in run.nodes:
            intervals = run.window / options.pass_interval
            rows.append((f"{run.label} {node.node}: shards owned", f"{node.shards:,}", "", ""))
            for loop in ("schedule", "stuck"):
                figure = fmt_s(node.passes[loop])
                goal_text, result = "", ""
                if single and run is not single and len(run.nodes) > 1 and node.passes[loop] and single.nodes[0].passes[loop]:
                    share = med(node.passes[loop]) / med(single.nodes[0].passes[loop])
                    figure += f" = {share:.2f} of one node"
                    goal_text, result = "~1/3 of one node", verdict(share <= 0.45)
                rows.append((f"  {loop} pass time (median)", figure, goal_text, result))
            cpu = node.cpu / max(1e-9, intervals)
            figure = f"{cpu:.2f} s per {options.pass_interval} s"
            goal_text, result = "", ""
            if single and run is not single and len(run.nodes) > 1:
                share = cpu / max(1e-9, single.nodes[0].cpu / (single.window / options.pass_interval))
                figure += f" = {share:.2f} of one node"
                goal_text, result = "~1/3 of one node", verdict(share <= 0.45)
            rows.append(("  CPU per schedule interval", figure, goal_text, result))
            figure = f"{node.hwm_mib:.0f} MiB (now {node.rss_mib:.0f})"
            goal_text, result = "", ""
            if single and run is not single and len(run.nodes) > 1:
                share = node.hwm_mib / max(1e-9, single.nodes[0].hwm_mib)
                figure += f" = {share:.2f} of one node"
                goal_text, result = "~1/3 of one node", verdict(share <= 0.45)
            rows.append(("  peak RSS", figure, goal_text, result))
        if single and run is not single and len(run.nodes) > 1:
            cpu_all = sum(n.cpu for n in run.nodes) / (run.window / options.pass_interval)
            cpu_one = single.nodes[0].cpu / (single.window / options.pass_interval)
            hwm_all = sum(n.hwm_mib for n in run.nodes)
            rows.append((f"{run.label}: the {len(run.nodes)} nodes together, CPU per interval / peak RSS",
                         f"{cpu_all:.2f} s = {cpu_all / max(1e-9, cpu_one):.2f}x one node / {hwm_all:.0f} MiB = "
                         f"{hwm_all / max(1e-9, single.nodes[0].hwm_mib):.2f}x", "", ""))
        rows.append((f"{run.label}: ecs-sim CPU in the window, load", f"{run.sim_cpu:.1f} s in {run.window:.0f} s, load {run.load}", "", ""))
    return rows


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warden", required=True)
    parser.add_argument("--sim", required=True)
    parser.add_argument("--db-url", required=True, help="a superuser's URL; pg_stat_statements preloaded")
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--small-projects", type=int, default=10)
    parser.add_argument("--servers", type=int, default=100, help="servers per project")
    parser.add_argument("--flavors", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rps", type=float, default=5000.0)
    parser.add_argument("--burst", type=int, default=10000)
    parser.add_argument("--ttl", type=int, default=15, help="lease TTL, seconds")
    parser.add_argument("--renew-intervals", type=int, default=6)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--terms", type=int, default=5)
    parser.add_argument("--mid-pass-terms", type=int, default=2, help="SIGTERMs during a schedule pass")
    parser.add_argument("--pass-interval", type=int, default=20, help="schedule and stuck interval, seconds")
    parser.add_argument("--pass-window", type=float, default=90.0)
    parser.add_argument("--phases", default="renewal,failover,passes")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--settle-timeout", type=float, default=90.0)
    parser.add_argument("--start-timeout", type=float, default=120.0)
    parser.add_argument("--logs", default="", help="keep every replica's log in this folder")
    parser.add_argument("--json", default="")
    parser.add_argument("--note", action="append", default=[])
    options = parser.parse_args()
    phases = set(options.phases.split(","))

    pg = Pg(options.db_url)
    pg.rows("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    for node in [*NODES, SOLO]:
        role = role_of(node)
        pg.rows(f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
                f"CREATE ROLE {role} LOGIN SUPERUSER; END IF; END $$")
    version = pg.value("SELECT version()")
    workdir = tempfile.mkdtemp(prefix="cluster-bench-")
    Replica.log_dir = options.logs or workdir
    os.makedirs(Replica.log_dir, exist_ok=True)
    ak, sk = "SIMACCESSKEY", "SIMSECRETKEY"  # the simulator's test credentials
    token = secrets.token_hex(24)
    env = {**os.environ, "WB_AK": ak, "WB_SK": sk, "WB_CONTROL_TOKEN": token}
    env.pop("NOTIFY_SOCKET", None)
    sim = Simulator(options.sim, ["--port", "0", "--projects", str(options.projects), "--servers-per-project",
                                  str(options.servers), "--flavors", str(options.flavors), "--seed", str(options.seed),
                                  "--access-key", ak, "--secret-key", sk],
                    options.start_timeout, os.path.join(workdir, "ecs-sim.stderr"), spawn=spawn, group=True)
    renewals: list[RenewalResult] = []
    kills: list[dict] = []
    terms: list[dict] = []
    terms_mid: list[dict] = []
    passes: list[PassRun] = []
    notes = list(options.note)
    rng = random.Random(options.seed)
    load_before = load_average()
    bench_started = time.monotonic()
    try:
        log(f"starting ecs-sim: {options.projects} projects x {options.servers} servers")
        sim.start()
        assert sim.proc
        sim_http = Http(sim.port, 120)
        state = sim_http.json("GET", "/_sim/state")
        assert isinstance(state, dict)
        projects = sorted(state["projects"], key=lambda p: p["name"])
        region = state["region"]
        config_projects = [(f"bench-{i:04d}", p["id"]) for i, p in enumerate(projects)]
        zone, _ = fleet_zone(time.time())
        fleet = Fleet(options, workdir, env, f"http://127.0.0.1:{sim.port}", region, config_projects, zone, token)
        renew = options.ttl / 3
        if "renewal" in phases or "failover" in phases:
            if "renewal" in phases:
                log(f"phase 1: renewal, {options.small_projects} projects")
                renewals.append(measure_renewal(pg, fleet, options.small_projects, renew, options.renew_intervals))
                log(f"phase 1: renewal, {options.projects} projects")
                # The replicas stay up for the failovers.
                renewals.append(measure_renewal(pg, fleet, options.projects, renew, options.renew_intervals, keep=True))
            else:
                for node in NODES:
                    fleet.start(node, fleet.config(node, options.projects, LOOPS_IDLE, "postgres"))
            if "failover" in phases:
                log(f"phase 2: {options.kills} kill -9 failovers, {options.terms} SIGTERM handovers")
                kills = failovers(pg, fleet, options.projects, options.kills, signal.SIGKILL, rng)
                terms = failovers(pg, fleet, options.projects, options.terms, signal.SIGTERM, rng)
                if options.mid_pass_terms:
                    terms_mid = failovers(pg, fleet, options.projects, options.mid_pass_terms, signal.SIGTERM, rng,
                                          mid_pass=True)
            fleet.stop_all()
        if "passes" in phases:
            runs = [] if options.no_sqlite else [("sqlite x1", "sqlite", [SOLO])]
            runs += [("postgres x1", "postgres", [SOLO]), ("postgres x3", "postgres", NODES)]
            for label, backend, nodes in runs:
                log(f"phase 3: passes, {label}")
                passes.append(measure_passes(pg, fleet, label, backend, nodes, sim.proc.pid))
        sim.stop()
    finally:
        cleanup_children()
        shutil.rmtree(workdir, ignore_errors=True)

    rows = report(options, renewals, kills, terms, terms_mid, passes, notes)
    title = [f"ecs-warden cluster benchmark: {options.projects:,} projects x {options.servers} servers, lease TTL "
             f"{options.ttl} s (renew every {renew:g} s), {os.cpu_count()} CPUs, load {load_before} before",
             f"PostgreSQL: {version.split(',')[0]}"]
    notes += [
        "Each replica connects as its own role, so pg_stat_statements tells the nodes apart (figures a / b / c).",
        f"Renewal window: {options.renew_intervals} renew intervals after the shards were spread and the first passes ended;",
        "loops at 30 min intervals then, so the statements are the lease coordinator's plus what the loops do at rest.",
        "Takeover: from the signal (this host's clock) to shard_handovers.at (PostgreSQL's now(), same host) of the last of",
        "the node's shards claimed by another node; the node is restarted and the shards spread again between rounds.",
        f"Passes: schedule and stuck every {options.pass_interval} s, {options.pass_window:.0f} s window after the first passes;",
        "before the 3-node run the three membership rows are refreshed so the first replica up claims a third, not all.",
        "Every process (replicas, ecs-sim, PostgreSQL) shares the same 2 cores.",
        f"Whole run: {time.monotonic() - bench_started:.0f} s.",
    ]
    for r in renewals:
        notes.append(f"Other statements in the {r.projects:,}-project renewal window (node, calls, query):")
        for node, query, calls in r.others:
            notes.append(f"  {node} {calls:>4} {query}")
    for label, items in (("kill -9", kills), ("SIGTERM", terms), ("SIGTERM mid-pass", terms_mid)):
        for i, item in enumerate(items):
            notes.append(f"{label} {i + 1}: {item['node']} held {item['shards']} shards; claimed by others "
                         f"{item['first']:.2f}..{item['last']:.2f} s after the signal"
                         + (f", exited after {item['exited']:.2f} s" if item["exited"] else "") + f"; {item['reasons']}")
    print_table(title, rows, notes)
    if options.json:
        with open(options.json, "w") as handle:
            json.dump({"renewals": [r.__dict__ for r in renewals], "kills": kills, "terms": terms, "terms_mid_pass": terms_mid,
                       "passes": [{"label": p.label, "window": p.window, "sim_cpu": p.sim_cpu,
                                   "nodes": [n.__dict__ for n in p.nodes]} for p in passes]}, handle, indent=2)
    return 0


if __name__ == "__main__":
    run_main(main, log, signals=(signal.SIGTERM, signal.SIGHUP), cleanup=cleanup_children)
