"""The processes the proxy benchmark measures, each started on a free loopback port.

A trivial ASGI backend, the seeded monolith exactly as `strangler up` runs it, the strangler
proxy as `strangler up` runs it, nginx (the live data plane of `strangler.gateways`) and Envoy
(its export), both rendered from the stage 0 table and measured when installed, and a minimal
aiohttp proxy as a yardstick. `SERVING_PIDS` maps each base URL to the process that answers
there, for CPU accounting. This module must never measure anything.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from strangler.workspace import find_workspace

REPO = Path(__file__).resolve().parent.parent
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


# --- processes -----------------------------------------------------------------------------


# Which process answers on each base URL, for CPU accounting.
SERVING_PIDS: dict[str, int] = {}


@contextmanager
def _process(
    name: str, argv: list[str], env: dict[str, str], health_url: str, logs: Path
) -> Iterator[None]:
    from strangler.runtime.processes import start

    process = start(name, argv, env, health_url=health_url, log_path=logs / f"{name}.log", cwd=REPO)
    try:
        process.wait_healthy(timeout=60)
        SERVING_PIDS[health_url.removesuffix("/healthz")] = process.popen.pid
        yield
    finally:
        process.stop()


def replace_workers(server_pid: int, timeout: float = 60.0) -> None:
    """Have gunicorn replace its workers (SIGHUP) and wait until only new ones serve.

    The old workers close their kept-alive connections, so every front (wrk, the proxy's pool,
    nginx's) spreads its connections over the workers anew: each run draws its own split. A
    new worker counts as ready once it has stopped using CPU (its app is loaded and it waits
    for connections), so none starts with every connection only because it booted first.
    """
    import signal
    import time

    import psutil

    master = psutil.Process(server_pid)
    old = {child.pid for child in master.children()}
    master.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    previous: dict[int, float] = {}
    while time.monotonic() < deadline:
        time.sleep(0.3)
        workers = [child for child in master.children() if child.pid not in old]
        if len(workers) < len(old) or any(w.pid in old for w in master.children()):
            continue
        try:
            used = {w.pid: sum(w.cpu_times()[:2]) for w in workers}
        except psutil.Error:
            continue
        if used.keys() == previous.keys() and all(used[pid] - previous[pid] < 0.02 for pid in used):
            return
        previous = used
    raise TimeoutError(f"gunicorn {server_pid} did not replace its workers in {timeout} s")


@contextmanager
def trivial_backend(port: int, logs: Path) -> Iterator[str]:
    argv = [
        sys.executable, "-m", "uvicorn", "loadtests.fronts:trivial_app", "--port", str(port),
        "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with _process("trivial", argv, {}, f"http://127.0.0.1:{port}/healthz", logs):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def seeded_monolith(
    port: int, workdir: Path, logs: Path, workers: int, balanced: bool = True
) -> Iterator[str]:
    """The seeded monolith as `strangler up` serves it; `balanced`, each gunicorn worker on a
    listening socket of its own (`--reuse-port`), so the kernel spreads the connections evenly
    by their addresses, where on gunicorn's one shared socket the worker that wakes first takes
    most of a front's kept-alive connections (27/5 of 32 is common): direct throughput at 32
    connections then swings 3x from run to run and says nothing about the fronts."""
    from monolith.seed import seed
    from strangler.datapath.schemas import upgrade
    from strangler.plumbing.database import make_engine
    from strangler.runtime.launch import monolith_command, monolith_environment

    database_url = f"sqlite:///{workdir / 'monolith.sqlite3'}"
    upgrade("monolith", database_url)
    seed(make_engine(database_url), scale=0.05, seed_value=42)
    workspace = find_workspace()
    env = monolith_environment(workspace, database_url, TOKEN_SECRET, workdir)
    argv = monolith_command(workspace, port, workers)
    if balanced:
        argv.insert(argv.index("--bind"), "--reuse-port")
    with _process("monolith", argv, env, f"http://127.0.0.1:{port}/healthz", logs):
        yield f"http://127.0.0.1:{port}"


def _stage_zero(workdir: Path) -> Path:
    """Stage 0's route table (everything to the monolith), as a file the proxy reads."""
    path = workdir / "stage0-table.toml"
    path.write_text(find_workspace().migration().stage(0).table_text())
    return path


@contextmanager
def strangler_proxy(
    port: int, upstream: str, workdir: Path, logs: Path, access_log: bool, traced: bool = False
) -> Iterator[str]:
    """The proxy with the command line and environment `strangler up` gives it (stage 0): a
    fresh migration state of its own, whose routes start as stage 0's table. `traced`: with
    tracing on, its spans going to a trace spool as under `strangler up`."""
    from strangler.runtime.launch import proxy_environment

    state = workdir / f"proxy-{port}" / "migration.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **proxy_environment(upstream, {}, state, "bench-admin-token", TOKEN_SECRET, workdir),
        "PROXY_ROUTE_TABLE_PATH": str(_stage_zero(workdir)),
        "PROXY_AUDIT_LOG_PATH": str(workdir / f"audit-{port}.jsonl"),
        "PROXY_ACCESS_LOG": "true" if access_log else "false",
    }
    if traced:
        env["STRANGLER_TRACES_DIR"] = str(workdir / "traces")
    from strangler.runtime.launch import proxy_command

    with _process(
        f"proxy-{port}", proxy_command(port), env, f"http://127.0.0.1:{port}/healthz", logs
    ):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def reference_aiohttp_proxy(port: int, upstream: str, logs: Path) -> Iterator[str]:
    argv = [
        sys.executable, "-m", "uvicorn", "loadtests.fronts:reference_proxy", "--port",
        str(port), "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning",
        "--loop", "uvloop", "--http", "httptools",
    ]  # fmt: skip
    env = {"BENCH_REFERENCE_UPSTREAM": upstream}
    with _process(f"reference-{port}", argv, env, f"http://127.0.0.1:{port}/healthz", logs):
        yield f"http://127.0.0.1:{port}"


def _stage0_table() -> Any:
    # Stage 0 names the contexts' future upstreams; every route is the monolith's there.
    return find_workspace().migration().stage(0).table


@contextmanager
def nginx(
    port: int,
    upstream: str,
    proxy_url: str,
    workdir: Path,
    access_log: bool,
    cpu_policy: Literal["batch", "normal"] = "batch",
) -> Iterator[str | None]:
    """nginx as the live data plane runs it (`strangler.gateways`), rendered from stage 0;
    `cpu_policy` "normal" measures it without the plane's SCHED_BATCH.

    Every route of stage 0 is at rest, so nginx serves all of them straight from its keep-alive
    pool to `upstream`; `proxy_url` (the Python proxy) is where routes under migration would go.
    """
    from strangler.gateways.nginx_plane import NginxNotInstalled, NginxPlane
    from strangler.gateways.settings import GatewaySettings

    settings = GatewaySettings(
        listen_port=port,
        access_log=Path("access.log") if access_log else None,
        cpu_policy=cpu_policy,
    )
    try:
        plane = NginxPlane(workdir / f"nginx-{port}", {"monolith": upstream}, proxy_url, settings)
    except NginxNotInstalled:
        yield None
        return
    plane.start(_stage0_table())
    url = f"http://127.0.0.1:{port}"
    SERVING_PIDS[url] = plane.pid
    try:
        yield url
    finally:
        plane.stop()


def envoy_binary() -> str | None:
    """Envoy from the `[envoy]` extra (beside this Python) or on PATH."""
    return shutil.which("envoy", path=str(Path(sys.executable).parent)) or shutil.which("envoy")


@contextmanager
def envoy(
    port: int, upstream: str, workdir: Path, logs: Path, access_log: bool
) -> Iterator[str | None]:
    """Envoy with the export of stage 0 (`strangler.gateways.export`), one worker."""
    from strangler.gateways.exports import export
    from strangler.gateways.settings import GatewaySettings

    binary = envoy_binary()
    if binary is None:
        yield None
        return
    exported = export(
        _stage0_table(), "envoy", {"monolith": upstream}, GatewaySettings(listen_port=port)
    )
    folder = workdir / f"envoy-{port}"
    exported.write(folder)
    config = folder / "envoy.yaml"
    if not access_log:  # the export always logs; the bench may compare fronts without logs
        import yaml

        document = yaml.safe_load(config.read_text())
        manager = document["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        manager["typed_config"].pop("access_log")
        config.write_text(yaml.safe_dump(document))
    argv = [
        binary, "-c", str(config), "--concurrency", "1", "--log-level", "warn",
        "--base-id", str(port),
    ]  # fmt: skip
    with _process(f"envoy-{port}", argv, {}, f"http://127.0.0.1:{port}/healthz", logs):
        yield f"http://127.0.0.1:{port}"
