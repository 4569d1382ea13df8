"""Driving one URL with a closed-loop load and reading what it cost: the benchmarks' instrument.

`measure_run` runs `wrk` (or, without wrk, an aiohttp closed loop in its own process) against
one URL after a short warm-up and returns requests/s, p50/p99, errors, the CPU microseconds per
request of the process trees it is told to watch, and, for a multi-worker server, how the
kept-alive connections in use were spread over the workers halfway through the run. That
spread decides the monolith's throughput (docs/architecture.md: a connection stays with the
worker that accepted it), so every figure of a run through gunicorn carries it. This module
must never start or stop the servers it measures.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_PERCENTILE = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_ERRORS = re.compile(
    r"Non-2xx or 3xx responses: (\d+)"
    r"|Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
SETTLE_SECONDS = 1.0


_SS_PROCESS = re.compile(r'users:\(\("[^"]*",pid=(\d+),')
_SS_LAST_RECEIVED = re.compile(r"lastrcv:(\d+)")
ACTIVE_WITHIN_MS = 3000


@dataclass(frozen=True)
class WorkerSplit:
    """How the connections in use on `port` spread over a server's workers (its master's
    children): per worker, the established connections that received a request within the
    last 3 seconds (`ss -tnpi`; a request queued behind a busy worker may wait a second),
    largest count first. Idle kept-alive connections (another front's pool, which went quiet
    at least the warm-up, the settle pause and half a run ago) are not counted."""

    server_pid: int
    port: int

    def sample(self) -> list[int]:
        try:
            workers = [child.pid for child in psutil.Process(self.server_pid).children()]
            listing = subprocess.run(
                ["ss", "-tnpi", "state", "established", f"( sport = :{self.port} )"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        except (psutil.Error, OSError, subprocess.CalledProcessError):
            return []
        counts = dict.fromkeys(workers, 0)
        owner: int | None = None
        for line in listing.splitlines():
            found = _SS_PROCESS.search(line)
            if found:  # a socket's line; its details follow on the next line
                owner = int(found.group(1))
                continue
            received = _SS_LAST_RECEIVED.search(line)
            if owner in counts and received and int(received.group(1)) <= ACTIVE_WITHIN_MS:
                counts[owner] += 1
            owner = None
        return sorted(counts.values(), reverse=True)


@dataclass
class Run:
    """What one measured run gave."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    # CPU (user + system) per request of each watched process tree, by the name it was given.
    cpu_us_per_request: dict[str, float] = field(default_factory=dict)
    # Connections per worker of the split server halfway through, largest first ([]: not split).
    split: list[int] = field(default_factory=list)
    # Involuntary context switches per request of each watched tree: how often the scheduler
    # took a core from it (a woken process preempting it, mostly).
    preemptions_per_request: dict[str, float] = field(default_factory=dict)
    # The share of the machine's CPU time left idle during the run (0..1).
    idle_share: float | None = None


def process_tree(pid: int) -> set[int]:
    try:
        root = psutil.Process(pid)
        return {pid, *(child.pid for child in root.children(recursive=True))}
    except psutil.Error:
        return {pid}


def preemptions(pid: int) -> int:
    """Involuntary context switches of a process tree's threads so far (each thread's own
    count on Linux, where a process's figure is its main thread's; else the process's)."""
    total = 0
    for member in process_tree(pid):
        tasks = Path(f"/proc/{member}/task")
        try:
            if tasks.is_dir():
                for task in tasks.iterdir():
                    status = (task / "status").read_text()
                    total += int(status.split("nonvoluntary_ctxt_switches:")[1].split()[0])
            else:
                total += psutil.Process(member).num_ctx_switches().involuntary
        except (OSError, IndexError, ValueError, psutil.Error):
            continue  # a thread or process that ended meanwhile
    return total


def _idle_share(before: Any, after: Any) -> float | None:
    spent = sum(after) - sum(before)
    return (after.idle - before.idle) / spent if spent > 0 else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its children (gunicorn, nginx workers)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            times = psutil.Process(member).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _wrk_argv(url: str, connections: int, seconds: float) -> list[str]:
    duration = f"{max(1, round(seconds))}s"
    return ["wrk", "-t", "1", "-c", str(connections), "-d", duration, "--latency", url]


def _parse_wrk(output: str) -> tuple[float, float, float, int]:
    rps = float(_WRK_RPS.search(output).group(1))  # type: ignore[union-attr]
    percentiles = {p: float(v) * _UNIT_MS[u] for p, v, u in _WRK_PERCENTILE.findall(output)}
    errors = 0
    for found in _WRK_ERRORS.finditer(output):
        errors += sum(int(group) for group in found.groups() if group)
    return rps, percentiles["50"], percentiles["99"], errors


def _closed_loop_worker(url: str, connections: int, seconds: float, queue: Any) -> None:
    import aiohttp

    async def run() -> tuple[int, list[float], int]:
        latencies: list[float] = []
        errors = 0
        deadline = time.perf_counter() + seconds
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def user() -> None:
                nonlocal errors
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    async with session.get(url) as response:
                        await response.read()
                        errors += response.status >= 400
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(user() for _ in range(connections)))
        return len(latencies), latencies, errors

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    count, latencies, errors = asyncio.run(run())
    latencies.sort()
    queue.put(
        (
            count / seconds,
            latencies[len(latencies) // 2] * 1000,
            latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            errors,
        )
    )


class _Load:
    """One load generator process: wrk, or the aiohttp closed loop."""

    def __init__(self, url: str, connections: int, seconds: float, use_wrk: bool) -> None:
        self.seconds = max(1, round(seconds)) if use_wrk else seconds
        self._queue: Any = None
        if use_wrk:
            self._wrk: subprocess.Popen[str] | None = subprocess.Popen(
                _wrk_argv(url, connections, seconds), stdout=subprocess.PIPE, text=True
            )
            self.pid = self._wrk.pid
        else:
            self._wrk = None
            context = multiprocessing.get_context("spawn")
            self._queue = context.Queue()
            self._process = context.Process(
                target=_closed_loop_worker, args=(url, connections, seconds, self._queue)
            )
            self._process.start()
            self.pid = self._process.pid or 0

    def result(self) -> tuple[float, float, float, int]:
        if self._wrk is not None:
            output, _ = self._wrk.communicate()
            if self._wrk.returncode != 0:
                raise RuntimeError(f"wrk failed with exit code {self._wrk.returncode}")
            return _parse_wrk(output)
        result = self._queue.get(timeout=self.seconds + 60)
        self._process.join()
        return result  # type: ignore[no-any-return]


def measure_run(
    url: str,
    connections: int,
    seconds: float,
    use_wrk: bool,
    watched: dict[str, int] | None = None,
    split: WorkerSplit | None = None,
) -> Run:
    """Warm up for a second, let it settle, then one measured run of `seconds`.

    `watched` names process trees whose CPU per request is reported. With `split`, the
    connections in use per worker are sampled halfway through.
    """
    _Load(url, connections, min(1.0, seconds), use_wrk).result()  # warm-up: pools, caches
    # Requests the warm-up left in flight behind a proxy (its client is gone, the upstream
    # still answers) must not be counted against the measured run.
    time.sleep(SETTLE_SECONDS)
    watched = watched or {}
    cpu_before = {name: cpu_seconds(pid) for name, pid in watched.items()}
    preempted_before = {name: preemptions(pid) for name, pid in watched.items()}
    machine_before = psutil.cpu_times()
    load = _Load(url, connections, seconds, use_wrk)
    sampled: list[int] = []
    sampler = None
    if split is not None:
        sampler = threading.Timer(load.seconds / 2, lambda: sampled.extend(split.sample()))
        sampler.start()
    rps, p50, p99, errors = load.result()
    idle = _idle_share(machine_before, psutil.cpu_times())
    if sampler is not None:
        sampler.join()
    total = rps * load.seconds
    cpu = {
        name: (cpu_seconds(pid) - cpu_before[name]) * 1e6 / total
        for name, pid in watched.items()
        if total
    }
    preempted = {
        name: (preemptions(pid) - preempted_before[name]) / total
        for name, pid in watched.items()
        if total
    }
    return Run(rps, p50, p99, errors, cpu, sampled, preempted, idle)


def measure(
    url: str, connections: int, seconds: float, use_wrk: bool, pid: int | None = None
) -> tuple[float, float, float, int, float | None]:
    """requests/s, p50 ms, p99 ms, errors and CPU microseconds per request of `pid`."""
    run = measure_run(url, connections, seconds, use_wrk, {"server": pid} if pid else None)
    cpu = run.cpu_us_per_request.get("server")
    return run.requests_per_second, run.p50_ms, run.p99_ms, run.errors, cpu
