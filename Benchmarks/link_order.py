#!/usr/bin/env python3
"""Writes the symbol ordering file of ecs-warden's release link (Package.swift, daemonReleaseLinking).

The functions the daemon runs — a `--once` pass over a simulated fleet, then the daemon in run mode
(start-up to READY=1, its first passes, /metrics and control-API reads, SIGTERM) — counted by
`valgrind --tool=callgrind`, hottest first, one name per input section of the link map (lld moves
whole sections: a second name of the same section adds nothing). lld lays these sections out first
and together, so the code a pass runs is a few MB of pages rather than scattered over all 35 MB.

Usage: link_order.py --warden BIN --sim BIN --map LINK.map --out FILE [--projects N --servers N]
(Benchmarks/link-order.sh builds the binary with its map and calls this.)
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import BenchError, Http, Simulator, make_logger, run_main  # noqa: E402
from warden_bench import Daemon, cleanup_children, fleet_zone, spawn, wait_first_passes, write_config  # noqa: E402

log = make_logger("link-order")


def callgrind_self_costs(path: str, binary: str) -> collections.Counter:
    """Self cost (instructions) per function of `binary` in a callgrind output file."""
    objects: dict[str, str] = {}
    functions: dict[str, str] = {}

    def name(table: dict[str, str], text: str) -> str:
        # Name compression: "(id) name" defines an id, "(id)" refers to it.
        match = re.match(r"\((\d+)\)(?: (.*))?$", text)
        if not match:
            return text
        if match.group(2) is not None:
            table[match.group(1)] = match.group(2)
        return table.get(match.group(1), "")

    costs: collections.Counter = collections.Counter()
    current_object = ""
    current: tuple[str, str] | None = None
    call_cost_next = False
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.startswith("ob="):
                current_object = name(objects, line[3:])
            elif line.startswith("fn="):
                current = (current_object, name(functions, line[3:]))
                costs[current] += 0
            elif line.startswith("cob="):
                name(objects, line[4:])
            elif line.startswith("cfn="):
                name(functions, line[4:])
            elif line.startswith("calls="):
                call_cost_next = True  # the next cost line is the call's inclusive cost
            elif line[:1].isdigit() or line[:1] in "+-*":
                if call_cost_next:
                    call_cost_next = False
                    continue
                fields = line.split()
                if current and len(fields) >= 2:
                    costs[current] += int(fields[1])
    ours: collections.Counter = collections.Counter()
    for (obj, function), cost in costs.items():
        # Unnamed code shows as its address: nothing to order by.
        if os.path.realpath(obj) == os.path.realpath(binary) and function and not function.startswith("0x"):
            # A recursive call shows as "name'2".
            ours[re.sub(r"'\d+$", "", function)] += cost
    return ours


def input_sections(map_path: str) -> dict[str, str]:
    """Symbol -> the input section holding it, from an lld map (`-Map`, written with `--no-demangle`)."""
    section = ""
    holder: dict[str, str] = {}
    with open(map_path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.split(None, 4)
            if len(fields) < 5:
                continue
            text = fields[4].strip()
            if ":(" in text:
                section = text
            elif section and not text.startswith("."):
                holder.setdefault(text, section)
    return holder


def ordering(costs: collections.Counter, sections: dict[str, str]) -> list[str]:
    names: list[str] = []
    placed: set[str] = set()
    for function, _ in sorted(costs.items(), key=lambda item: (-item[1], item[0])):
        section = sections.get(function)
        if section is not None:
            if section in placed:
                continue
            placed.add(section)
        names.append(function)  # a name the map does not show is kept (lld looks it up itself)
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warden", required=True)
    parser.add_argument("--sim", required=True)
    parser.add_argument("--map", required=True, help="lld map of the --warden link")
    parser.add_argument("--out", required=True)
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=900.0, help="bound of each run under valgrind")
    options = parser.parse_args()
    if not shutil.which("valgrind"):
        raise BenchError("valgrind is required: apt-get install valgrind")

    workdir = tempfile.mkdtemp(prefix="link-order-")
    # valgrind 3.19 cannot read the toolchain's DWARF 5: profile a copy without debug sections
    # (the symbol table, all the ordering needs, stays).
    binary = os.path.join(workdir, "ecs-warden")
    ak, sk = "SIMACCESSKEY", "SIMSECRETKEY"  # the simulator's test credentials (it holds no real secret)
    token = secrets.token_hex(24)
    env = {**os.environ, "WB_AK": ak, "WB_SK": sk, "WB_CONTROL_TOKEN": token}
    env.pop("NOTIFY_SOCKET", None)
    sim = Simulator(options.sim,
                    ["--port", "0", "--projects", str(options.projects), "--servers-per-project", str(options.servers),
                     "--flavors", "200", "--scheduled-share", "0.25", "--seed", "1", "--access-key", ak, "--secret-key", sk],
                    120, os.path.join(workdir, "ecs-sim.stderr"), spawn=spawn, group=True)
    try:
        if subprocess.run(["strip", "--strip-debug", "-o", binary, options.warden]).returncode != 0:
            raise BenchError(f"strip --strip-debug failed on {options.warden}")
        sim.start()
        state = Http(sim.port, 60).json("GET", "/_sim/state")
        assert isinstance(state, dict)
        projects = sorted(state["projects"], key=lambda p: p["name"])
        zone, _ = fleet_zone(time.time())

        def config(label: str) -> str:
            path = os.path.join(workdir, f"{label}.yaml")
            write_config(path, state_dir=os.path.join(workdir, f"state-{label}"), endpoint=f"http://127.0.0.1:{sim.port}",
                         region=state["region"], projects=[(f"p-{i:03d}", p["id"]) for i, p in enumerate(projects)],
                         zone=zone, rps=500, burst=1000)
            return path

        def callgrind(label: str) -> list[str]:
            return ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={workdir}/{label}.cg"]

        log(f"--once under callgrind: {options.projects} projects x {options.servers} servers")
        once = subprocess.run([*callgrind("once"), binary, "run", "--config", config("once"), "--once"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=options.timeout)
        if once.returncode != 0:
            raise BenchError(f"--once under valgrind exited {once.returncode}: {once.stderr.decode()[-2000:]}")

        log("run mode under callgrind: READY=1, first passes, /metrics, control API, SIGTERM")
        wrapper = os.path.join(workdir, "warden-under-callgrind")
        with open(wrapper, "w") as handle:
            handle.write("#!/bin/sh\nexec " + " ".join(callgrind("run")) + f" {binary} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        daemon = Daemon(wrapper, config("run"), env, workdir, "run", token)
        daemon.start(options.timeout)
        control = Http(daemon.control_port, 120)
        wait_first_passes(daemon, control, options.timeout)
        metrics = Http(daemon.metrics_port, 120)
        for _ in range(3):
            status, _, _ = metrics.request("GET", "/metrics")
            if status != 200:
                raise BenchError(f"/metrics answered {status}")
        for path in ("/healthz", "/readyz", "/v1/status", "/v1/loops", "/v1/quotas", "/v1/flavors", "/v1/stuck", "/v1/schedules", "/v1/plan"):
            status, _, _ = control.request("GET", path)
            if status != 200:
                log(f"warning: GET {path} answered {status}: the profile may miss that route's code")
        daemon.stop()

        costs = callgrind_self_costs(os.path.join(workdir, "once.cg"), binary)
        costs.update(callgrind_self_costs(os.path.join(workdir, "run.cg"), binary))
        names = ordering(costs, input_sections(options.map))
        if len(names) < 100:
            raise BenchError(f"only {len(names)} functions found: is {options.map} the map of {options.warden}?")
        partial = options.out + ".partial"  # replaced at once: an interrupted run leaves the old file
        with open(partial, "w") as handle:
            handle.write("# Written by Benchmarks/link-order.sh: the functions ecs-warden runs (a --once pass and run mode,\n"
                         "# counted by callgrind), hottest first, one per input section. The release link lays them out\n"
                         "# first (Package.swift, daemonReleaseLinking). Regenerate after large changes.\n")
            handle.write("\n".join(names) + "\n")
        os.replace(partial, options.out)
        log(f"{len(costs)} functions ran, {len(names)} input sections ordered -> {options.out}")
    finally:
        cleanup_children()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    run_main(main, log, cleanup=cleanup_children)
