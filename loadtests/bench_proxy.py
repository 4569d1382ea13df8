"""Benchmark: what the strangler proxy costs, measured against the same backend direct (and nginx).

Run `python -m loadtests.bench_proxy` from the repository root. In one run, on free loopback
ports, it starts a trivial ASGI backend (uvicorn) and the seeded monolith (gunicorn), then for
each backend measures: direct, through the strangler proxy (uvicorn, one process, uvloop +
httptools, the stage 0 table) and through nginx when nginx is installed; with `--reference`,
also through a minimal aiohttp proxy (what one `ClientSession` alone costs). It prints
requests/s, p50 and p99 per path and connection count, and the ratios through/direct.

Load comes from `wrk` when installed, else from an aiohttp closed-loop client in its own
process. Targets (issue 3): proxy >= 0.85x direct on the monolith's GET /api/threads/{id},
>= 0.25x on the trivial backend, and under 1 ms added p50 at one connection.
This script prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STAGE0 = REPO / "stages" / "stage0.toml"
TOKEN_SECRET = "bench-signing-key-not-a-secret-0123456789"


async def trivial_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The smallest JSON endpoint uvicorn can serve: the trivial backend."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"ok":true}'})


async def reference_proxy(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least a proxy can do with one aiohttp session: the yardstick for the client's cost.

    It forwards the path to `BENCH_REFERENCE_UPSTREAM` and copies status, content type and body;
    no header rewriting, routing, metrics or logs. Measured with `--reference`.
    """
    import os

    import aiohttp

    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["session"] = aiohttp.ClientSession(auto_decompress=False)
                await send({"type": "lifespan.startup.complete"})
            else:
                await scope["state"]["session"].close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    upstream = os.environ["BENCH_REFERENCE_UPSTREAM"]
    async with scope["state"]["session"].get(upstream + scope["path"]) as response:
        body = await response.read()
        content_type = response.headers.get("Content-Type", "application/octet-stream")
        headers = [(b"content-type", content_type.encode("latin-1"))]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclass
class Measurement:
    backend: str
    path: str
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    # CPU (user + system) of the process tree answering on that front: the backend for
    # `direct`, the proxy itself otherwise. Less sensitive to other load than requests/s.
    cpu_us_per_request: float | None = None


# --- processes -----------------------------------------------------------------------------


# Which process answers on each base URL, for CPU accounting.
SERVING_PIDS: dict[str, int] = {}


@contextmanager
def _process(
    name: str, argv: list[str], env: dict[str, str], health_url: str, logs: Path
) -> Iterator[None]:
    from strangler.processes import start

    process = start(name, argv, env, health_url=health_url, log_path=logs / f"{name}.log", cwd=REPO)
    try:
        process.wait_healthy(timeout=60)
        SERVING_PIDS[health_url.removesuffix("/healthz")] = process.popen.pid
        yield
    finally:
        process.stop()


@contextmanager
def trivial_backend(port: int, logs: Path) -> Iterator[str]:
    argv = [
        sys.executable, "-m", "uvicorn", "loadtests.bench_proxy:trivial_app", "--port", str(port),
        "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with _process("trivial", argv, {}, f"http://127.0.0.1:{port}/healthz", logs):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def seeded_monolith(port: int, workdir: Path, logs: Path, workers: int) -> Iterator[str]:
    from migrations.runner import upgrade
    from monolith.seed import seed
    from plumbing.database import make_engine
    from strangler.launch import monolith_command, monolith_environment

    database_url = f"sqlite:///{workdir / 'monolith.sqlite3'}"
    upgrade("monolith", database_url)
    seed(make_engine(database_url), scale=0.05, seed_value=42)
    env = monolith_environment(database_url, TOKEN_SECRET, workdir)
    with _process(
        "monolith", monolith_command(port, workers), env, f"http://127.0.0.1:{port}/healthz", logs
    ):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def strangler_proxy(
    port: int, upstream: str, workdir: Path, logs: Path, access_log: bool
) -> Iterator[str]:
    argv = [sys.executable, "-m", "strangler_proxy", "--host", "127.0.0.1", "--port", str(port)]
    env = {
        "PROXY_MONOLITH_URL": upstream,
        "PROXY_ROUTE_TABLE_PATH": str(STAGE0),
        "PROXY_AUDIT_LOG_PATH": str(workdir / f"audit-{port}.jsonl"),
        "PROXY_ACCESS_LOG": "true" if access_log else "false",
        "STRANGLER_TOKEN_SECRET": TOKEN_SECRET,
    }
    with _process(f"proxy-{port}", argv, env, f"http://127.0.0.1:{port}/healthz", logs):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def reference_aiohttp_proxy(port: int, upstream: str, logs: Path) -> Iterator[str]:
    argv = [
        sys.executable, "-m", "uvicorn", "loadtests.bench_proxy:reference_proxy", "--port",
        str(port), "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning",
        "--loop", "uvloop", "--http", "httptools",
    ]  # fmt: skip
    env = {"BENCH_REFERENCE_UPSTREAM": upstream}
    with _process(f"reference-{port}", argv, env, f"http://127.0.0.1:{port}/healthz", logs):
        yield f"http://127.0.0.1:{port}"


NGINX_CONF = """
worker_processes 1;
pid {workdir}/nginx-{port}.pid;
error_log {workdir}/nginx-{port}.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/nginx-body;
    proxy_temp_path {workdir}/nginx-proxy;
    fastcgi_temp_path {workdir}/nginx-fastcgi;
    uwsgi_temp_path {workdir}/nginx-uwsgi;
    scgi_temp_path {workdir}/nginx-scgi;
    upstream backend {{ server {upstream_host}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""


@contextmanager
def nginx(port: int, upstream: str, workdir: Path, logs: Path) -> Iterator[str | None]:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        yield None
        return
    config = workdir / f"nginx-{port}.conf"
    config.write_text(
        NGINX_CONF.format(
            workdir=workdir, port=port, upstream_host=upstream.removeprefix("http://")
        )
    )
    argv = [binary, "-c", str(config), "-p", str(workdir), "-g", "daemon off;"]
    with _process(f"nginx-{port}", argv, {}, f"http://127.0.0.1:{port}/healthz", logs):
        yield f"http://127.0.0.1:{port}"


# --- load generation -----------------------------------------------------------------------

_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_PERCENTILE = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_ERRORS = re.compile(
    r"Non-2xx or 3xx responses: (\d+)"
    r"|Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, connections: int, seconds: float) -> tuple[float, float, float, int]:
    argv = [
        "wrk",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--latency",
        url,
    ]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
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


def _closed_loop(url: str, connections: int, seconds: float) -> tuple[float, float, float, int]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_closed_loop_worker, args=(url, connections, seconds, queue))
    process.start()
    result = queue.get(timeout=seconds + 60)
    process.join()
    return result  # type: ignore[no-any-return]


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process and all its children (gunicorn, nginx workers)."""
    import psutil

    if pid is None:
        return 0.0
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measure(
    url: str, connections: int, seconds: float, use_wrk: bool, pid: int | None = None
) -> tuple[float, float, float, int, float | None]:
    """requests/s, p50 ms, p99 ms, errors and CPU microseconds per request of `pid`."""
    load = _wrk if use_wrk else _closed_loop
    load(url, connections, min(1.0, seconds))  # warm-up: pools, caches, JIT-free but still
    cpu_before = _cpu_seconds(pid)
    rps, p50, p99, errors = load(url, connections, seconds)
    cpu = _cpu_seconds(pid) - cpu_before
    duration = max(1, round(seconds)) if use_wrk else seconds
    per_request = cpu * 1e6 / (rps * duration) if pid is not None and rps else None
    return rps, p50, p99, errors, per_request


# --- report --------------------------------------------------------------------------------


def _print_report(results: list[Measurement], generator: str) -> dict[str, Any]:
    print(f"\nload generator: {generator}")
    print(
        f"{'backend':<10} {'path':<8} {'conns':>5} {'req/s':>10}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'CPU us/req':>10}"
    )
    for m in results:
        cpu = f"{m.cpu_us_per_request:>10.0f}" if m.cpu_us_per_request is not None else ""
        print(
            f"{m.backend:<10} {m.path:<8} {m.connections:>5} {m.requests_per_second:>10.0f}"
            f" {m.p50_ms:>8.3f} {m.p99_ms:>8.3f} {m.errors:>6} {cpu}"
        )
    index = {(m.backend, m.path, m.connections): m for m in results}
    ratios: dict[str, Any] = {}
    print("\nratios (through / direct):")
    for backend, connections in sorted({(m.backend, m.connections) for m in results}):
        direct = index.get((backend, "direct", connections))
        if direct is None:
            continue
        for path in ("proxy", "nginx", "aiohttp"):
            through = index.get((backend, path, connections))
            if through is None:
                continue
            ratio = through.requests_per_second / direct.requests_per_second
            added = through.p50_ms - direct.p50_ms
            key = f"{backend}/{path}/c{connections}"
            ratios[key] = {"throughput_ratio": round(ratio, 3), "added_p50_ms": round(added, 3)}
            print(f"  {key:<24} throughput {ratio:5.2f}x   added p50 {added:+.3f} ms")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of the monolith")
    parser.add_argument(
        "--no-access-log", action="store_true", help="turn the proxy's access log off"
    )
    parser.add_argument(
        "--no-wrk", action="store_true", help="use the aiohttp client even if wrk exists"
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also measure a minimal aiohttp proxy (the trivial backend only)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    arguments = parser.parse_args()

    from strangler.processes import free_port

    use_wrk = shutil.which("wrk") is not None and not arguments.no_wrk
    generator = "wrk (1 thread)" if use_wrk else "aiohttp closed loop (separate process)"
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as temporary, ExitStack() as stack:
        workdir = Path(temporary)
        logs = workdir / "logs"
        trivial = stack.enter_context(trivial_backend(free_port(), logs))
        monolith = stack.enter_context(
            seeded_monolith(free_port(), workdir, logs, arguments.workers)
        )
        access_log = not arguments.no_access_log
        targets = {
            "trivial": (trivial, "/"),
            "monolith": (monolith, "/api/threads/1"),
        }
        for backend, (base, path) in targets.items():
            fronts = {
                "direct": base,
                "proxy": stack.enter_context(
                    strangler_proxy(free_port(), base, workdir, logs, access_log)
                ),
                "nginx": stack.enter_context(nginx(free_port(), base, workdir, logs)),
            }
            if arguments.reference and backend == "trivial":
                fronts["aiohttp"] = stack.enter_context(
                    reference_aiohttp_proxy(free_port(), base, logs)
                )
            connection_counts = (
                [arguments.connections, 1] if backend == "trivial" else [arguments.connections]
            )
            for connections in connection_counts:
                for front, url in fronts.items():
                    if url is None:
                        continue
                    rps, p50, p99, errors, cpu = measure(
                        url + path, connections, arguments.seconds, use_wrk, SERVING_PIDS.get(url)
                    )
                    results.append(
                        Measurement(backend, front, connections, rps, p50, p99, errors, cpu)
                    )
                    print(
                        f"  measured {backend:<9} {front:<7} c={connections:<3} {rps:8.0f} req/s",
                        flush=True,
                    )
        if not any(m.path == "nginx" for m in results):
            print("  nginx is not installed: skipped")
    ratios = _print_report(results, generator)
    if arguments.json:
        document = {
            "generator": generator,
            "results": [asdict(m) for m in results],
            "ratios": ratios,
        }
        arguments.json.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
