"""Helpers shared by Benchmarks/simulator_bench.py and Benchmarks/warden_bench.py: the ecs-sim child
process, stopping a process with SIGTERM, /proc readings (CPU, memory, load), HTTP to loopback, the
IAM token, the result table and the scripts' entry point.

Standard library only. Not a script: the benchmark scripts import it from their own folder.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Callable


class BenchError(Exception):
    """A failed step: the script exits non-zero."""


def make_logger(tag: str) -> Callable[[str], None]:
    """A `log(message)` that writes `[tag] message` to stderr."""

    def log(message: str) -> None:
        print(f"[{tag}] {message}", file=sys.stderr, flush=True)

    return log


def run_main(main: Callable[[], int], log: Callable[[str], None], *, signals: tuple[int, ...] = (signal.SIGTERM,),
             cleanup: Callable[[], None] | None = None) -> None:
    """Runs `main` and exits with its status: `signals` exit with 128 + the signal, a BenchError
    with 1 and an interrupt with 130, each after `cleanup` (if any)."""

    def terminate(signum: int, _frame: object) -> None:
        log(f"signal {signum}: stopping")
        raise SystemExit(128 + signum)

    for signum in signals:
        signal.signal(signum, terminate)
    try:
        sys.exit(main())
    except BenchError as error:
        log(f"error: {error}")
        if cleanup:
            cleanup()
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted")
        if cleanup:
            cleanup()
        sys.exit(130)


# --------------------------------------------------------------------------------------------
# Processes


def stop_process(proc: subprocess.Popen, timeout: float = 15.0, *, group: bool = True) -> tuple[int, float, bool]:
    """SIGTERM to the process group (or to the process alone, group=False), wait; SIGKILL after
    `timeout`. (status, seconds, killed)."""
    if proc.poll() is not None:
        return proc.returncode, 0.0, False
    sent = time.monotonic()
    try:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        status = proc.wait(timeout)
        return status, time.monotonic() - sent, False
    except subprocess.TimeoutExpired:
        try:
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.wait()
        return proc.returncode, time.monotonic() - sent, True


class Simulator:
    """ecs-sim as a child process; the first stdout line gives the port.

    `spawn` starts the process (subprocess.Popen, or a wrapper with the same arguments); `group`
    says whether SIGTERM goes to its process group (a child in a session of its own) or to it alone."""

    def __init__(self, binary: str, args: list[str], start_timeout: float, stderr_path: str, *,
                 spawn: Callable[..., subprocess.Popen] = subprocess.Popen, group: bool = False):
        self.binary = binary
        self.args = args
        self.start_timeout = start_timeout
        self.stderr_path = stderr_path
        self.spawn = spawn
        self.group = group
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.port = 0
        self.startup_seconds = 0.0
        self._first_line = threading.Event()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        self._stderr = open(self.stderr_path, "wb")
        started = time.monotonic()
        self.proc = self.spawn(
            [self.binary, *self.args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        deadline = started + self.start_timeout
        while not self._first_line.wait(0.05):
            if self.proc.poll() is not None:
                raise BenchError(f"ecs-sim exited with status {self.proc.returncode} before listening; "
                                 f"stderr: {self.stderr_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"ecs-sim did not print its listening line within {self.start_timeout:.0f} s")
        self.startup_seconds = time.monotonic() - started
        match = re.search(r"listening on http://[^:]+:(\d+)", self.lines[0]) if self.lines else None
        if not match:
            raise BenchError(f"unexpected first line from ecs-sim: {self.lines[:1]!r}")
        self.port = int(match.group(1))

    def _read_stdout(self) -> None:
        assert self.proc and self.proc.stdout
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
            self._first_line.set()
        self._first_line.set()

    def stderr_tail(self) -> str:
        try:
            with open(self.stderr_path, "rb") as handle:
                return handle.read()[-2000:].decode("utf-8", "replace").strip() or "(empty)"
        except OSError:
            return "(unreadable)"

    def memory(self) -> dict[str, float]:
        """VmHWM and VmRSS of the process, in MiB."""
        assert self.proc
        return process_memory_mib(self.proc.pid)

    def stop(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM, then wait; SIGKILL and error if it does not exit in time."""
        if not self.proc:
            return 0, 0.0
        if self.proc.poll() is not None:
            raise BenchError(f"ecs-sim had already exited with status {self.proc.returncode}; stderr: {self.stderr_tail()}")
        status, seconds, killed = stop_process(self.proc, timeout, group=self.group)
        if self._reader:
            self._reader.join(5)
        self._stderr.close()
        if killed:
            raise BenchError(f"ecs-sim did not exit within {timeout:.0f} s of SIGTERM (killed)")
        return status, seconds

    def kill_if_running(self) -> None:
        if self.proc and self.proc.poll() is None:
            stop_process(self.proc, 10.0, group=self.group)


# --------------------------------------------------------------------------------------------
# /proc: CPU, memory, load


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def system_busy_seconds() -> float:
    """CPU time all CPUs spent busy (not idle, not iowait)."""
    with open("/proc/stat") as handle:
        values = [int(x) for x in handle.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def process_memory_mib(pid: int) -> dict[str, float]:
    """VmHWM and VmRSS of a process, in MiB."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0]) / 1024.0  # kB → MiB
    return values


def load_average() -> str:
    with open("/proc/loadavg") as handle:
        return handle.read().split()[0]


# --------------------------------------------------------------------------------------------
# HTTP


class Http:
    """One keep-alive connection to 127.0.0.1:port; reconnects once when the peer closed it
    (reconnect=True)."""

    def __init__(self, port: int, timeout: float = 60.0, *, reconnect: bool = True):
        self.port = port
        self.timeout = timeout
        self.reconnect = reconnect
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: object | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {"Accept": "application/json", **(headers or {})}
        if payload is not None:
            all_headers.setdefault("Content-Type", "application/json")
        for attempt in ((0, 1) if self.reconnect else (1,)):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=payload, headers=all_headers)
                response = self.conn.getresponse()
                data = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (ConnectionError, http.client.BadStatusLine, http.client.CannotSendRequest):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: object | None = None, headers: dict[str, str] | None = None,
             expect: tuple[int, ...] = (200,)) -> object:
        status, _, data = self.request(method, path, body, headers)
        if status not in expect:
            raise BenchError(f"{method} {path} -> {status}: {data[:300]!r}")
        return json.loads(data) if data else None

    def close(self) -> None:
        if self.conn:
            self.conn.close()
            self.conn = None


def iam_token(sim: Http, user: str, password: str, project: str, *, arrow: str = "->") -> str:
    """A project-scoped token from the simulator's POST /v3/auth/tokens (`arrow` is the one of
    the error message)."""
    body = {"auth": {
        "identity": {"methods": ["password"],
                     "password": {"user": {"name": user, "password": password, "domain": {"name": "any"}}}},
        "scope": {"project": {"id": project}}}}
    status, headers, data = sim.request("POST", "/v3/auth/tokens", body)
    token = headers.get("x-subject-token")
    if status != 201 or not token:
        raise BenchError(f"POST /v3/auth/tokens {arrow} {status}: {data[:300]!r}")
    return token


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


# --------------------------------------------------------------------------------------------
# Report


SEPARATOR = ("-", "-", "-", "-")  # a row of print_table that is a rule


def fmt_int(value: float) -> str:
    return f"{int(value):,}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(title: list[str], rows: list[tuple[str, str, str, str]], notes: list[str]) -> None:
    headers = ("Measure", "Figure", "Goal", "Result")
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(4)]
    rule = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    print()
    for line in title:
        print(line)
    print(rule)
    print("| " + " | ".join(headers[i].ljust(widths[i]) for i in range(4)) + " |")
    print(rule.replace("-", "="))
    for row in rows:
        if row == SEPARATOR:
            print(rule)
            continue
        print("| " + " | ".join(row[i].ljust(widths[i]) for i in range(4)) + " |")
    print(rule)
    for note in notes:
        print(note)
    print(flush=True)
