"""Benchmark: the data path on a million rows - backfill speed, sync lag, cutover freeze.

    python -m loadtests.bench_data [--scale 41] [--runs 3] [--monolith PATH]
        [--postgres-url URL] [--rate 200] [--seconds 20] [--cutovers 5] [--only PART,...]

A SQLite monolith seeded at `--scale` (41 = 1,025,000 rows; seeded once into `--monolith`, kept
and reused when the file exists) is the source of every part. Printed, medians of the runs:
- `backfill`: rows/s copying users, forum (with the authors replica) and polls into fresh
  service databases, SQLite and PostgreSQL (`--postgres-url`), and the copying process's CPU
  microseconds per row (the figure a busy machine disturbs least);
- `lag`: the forum's sync (the real apply path, default batch) while a separate process writes
  `--rate` posts per second (each a post and its thread's counter: two changes) for
  `--seconds`: each change's delay from its capture to its apply committed, p50 / p95 / p99 /
  max; then the backlog the sync drains per second once writes stop while it was paused;
- `freeze`: `--cutovers` cutovers of the forum and rollbacks, through the real proxy, monolith
  (gunicorn), forum service and sync process, under a steady load of writes and reads: the
  freeze window (the proxy's clock, freeze to thaw), the slowest write, failed requests.
The delays and freeze windows are also drawn into `--plot` (PNG). It asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from rich.console import Console
from sqlalchemy import Engine, func, insert, select, text, update

from contract.passwords import Passwords
from loadtests import data_plot
from loadtests.bench_events import fresh_database
from monolith.models import Post, Thread, User
from monolith.seed import seed
from strangler.datapath import apply, backfill, capture, cutover, schemas
from strangler.datapath.contexts import Owner, context_names
from strangler.datapath.link import Link
from strangler.datapath.sync import Syncer, SyncMetrics, SyncSettings
from strangler.plumbing.clock import utcnow
from strangler.plumbing.database import make_engine
from strangler.plumbing.tokens import TokenSigner
from strangler.runtime.launch import (
    monolith_command,
    monolith_environment,
    proxy_command,
    service_command,
    service_environment,
    sync_command,
    sync_environment,
)
from strangler.runtime.processes import ManagedProcess, free_port, start
from strangler.workspace import find_workspace
from strangler_proxy.client import ProxyAdmin

console = Console()
SECRET = "bench-data-token-secret-0123456789"
ADMIN = "bench-data-admin-token-0123456789"


def _percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    cuts = (
        statistics.quantiles(samples, n=100, method="inclusive") if len(samples) > 1 else [0.0] * 99
    )
    return {
        "p50_ms": statistics.median(samples) * 1000,
        "p95_ms": cuts[94] * 1000,
        "p99_ms": cuts[98] * 1000,
        "max_ms": max(samples) * 1000,
    }


def seeded_monolith(path: Path, scale: float) -> str:
    url = f"sqlite:///{path}"
    if path.exists():
        console.print(f"monolith: reusing {path}")
        return url
    schemas.upgrade("monolith", url)
    report = seed(make_engine(url), scale, passwords=Passwords(1, 1024))
    console.print(f"monolith: seeded {report.total_rows:,} rows in {report.seconds:.0f}s")
    return url


def _server_cpu(engine: Engine) -> float:
    """CPU seconds of the PostgreSQL backends serving `engine`'s database (0 for SQLite)."""
    import psutil

    if engine.dialect.name != "postgresql":
        return 0.0
    with engine.connect() as connection:
        pids = connection.scalars(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).all()
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def _backfill_all(monolith: str, backend: str, arguments: argparse.Namespace) -> tuple[float, ...]:
    """Backfill every context into fresh databases: (rows, seconds, client CPU, server CPU)."""
    rows = seconds = client = server = 0.0
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        for name in context_names(find_workspace()):
            service = stack.enter_context(
                fresh_database(backend, Path(folder), arguments.postgres_url, name)
            )
            schemas.upgrade(name, service)
            with Link.open(name, monolith, service) as link:
                started_cpu = time.process_time()
                report = backfill.backfill(link, arguments.chunk_rows)
                client += time.process_time() - started_cpu
                server += _server_cpu(link.service)
                capture.stop(link)
            rows, seconds = rows + report.rows_this_run, seconds + report.seconds
    return rows, seconds, client, server


def backfill_runs(monolith: str, backends: list[str], arguments: argparse.Namespace) -> None:
    for backend in backends:
        speeds, cpu = [], []
        for run in range(arguments.runs):
            rows, seconds, client, server = _backfill_all(monolith, backend, arguments)
            speeds.append(rows / seconds)
            cpu.append((client + server) * 1e6 / rows)
            console.print(
                f"  backfill sqlite -> {backend} run {run + 1}: {rows:,.0f} rows in "
                f"{seconds:.1f}s, {rows / seconds:,.0f} rows/s; CPU per row "
                f"{client * 1e6 / rows:.1f} us copying + {server * 1e6 / rows:.1f} us PostgreSQL; "
                f"{_load()}"
            )
        per_row = statistics.median(cpu)
        console.print(
            f"[bold]backfill sqlite -> {backend}: median {statistics.median(speeds):,.0f} rows/s "
            f"wall; {per_row:.1f} us CPU per row in all (one free core: ~{1e6 / per_row:,.0f} "
            f"rows/s)[/] ({arguments.runs} runs)"
        )


def _write_steadily(url: str, rate: float, seconds: float, seed_value: int) -> None:
    """A separate process: `rate` posts a second (a post and its thread's counter each)."""
    engine = make_engine(url)
    chance = random.Random(seed_value)
    with engine.connect() as connection:
        threads = int(connection.scalar(select(func.max(Thread.id))) or 1)
        users = int(connection.scalar(select(func.max(User.id))) or 1)
    following = time.monotonic()
    deadline = following + seconds
    while following < deadline:
        thread = chance.randint(1, threads)
        with engine.begin() as connection:
            connection.execute(
                insert(Post).values(
                    thread_id=thread, body="bench", author_id=chance.randint(1, users),
                    created_at=utcnow(),
                )
            )  # fmt: skip
            connection.execute(
                update(Thread).where(Thread.id == thread).values(post_count=Thread.post_count + 1)
            )
        following += 1 / rate
        time.sleep(max(0.0, following - time.monotonic()))
    engine.dispose()


def lag_runs(
    monolith: str, backends: list[str], arguments: argparse.Namespace
) -> dict[str, list[float]]:
    """Each target's sync delays, every change of every run (seconds)."""
    spawn = multiprocessing.get_context("spawn")
    every: dict[str, list[float]] = {}
    for backend in backends:
        results, drains = [], []
        for run in range(arguments.runs):
            with (
                tempfile.TemporaryDirectory() as folder,
                fresh_database(backend, Path(folder), arguments.postgres_url, "forum") as service,
            ):
                schemas.upgrade("forum", service)
                with Link.open("forum", monolith, service) as link:
                    backfill.backfill(link, arguments.chunk_rows)
                    apply.drain(link, link.context.directions(Owner.MONOLITH), timeout=600)
                    delays, drained = _one_lag_run(link, monolith, spawn, arguments, run)
                    capture.stop(link)
            results.append(_percentiles(delays))
            every.setdefault(backend, []).extend(delays)
            drains.append(drained)
            console.print(f"  lag sqlite -> {backend} run {run + 1}: {_show(results[-1])}; "
                          f"backlog drained at {drained:,.0f} changes/s; {_load()}")  # fmt: skip
        medians = {key: statistics.median(r[key] for r in results) for key in results[0]}
        console.print(
            f"[bold]sync lag sqlite -> {backend} at {arguments.rate:.0f} posts/s: "
            f"{_show(medians)}; drain {statistics.median(drains):,.0f} changes/s[/]"
        )
    return every


def _show(figures: dict[str, float]) -> str:
    return ", ".join(
        f"{name.removesuffix('_ms')} {value:.0f} ms" for name, value in figures.items()
    )


def _one_lag_run(
    link: Link, monolith: str, spawn: object, arguments: argparse.Namespace, run: int
) -> tuple[list[float], float]:
    delays: list[float] = []

    def observe(batch: apply.Batch, applied_at: float) -> None:
        delays.extend(applied_at - captured for captured in batch.captured_at)

    syncer = Syncer(link, SyncSettings(), SyncMetrics(), observe)
    stopping = threading.Event()
    loop = threading.Thread(target=syncer.run, args=(stopping,), daemon=True)
    loop.start()
    writer = spawn.Process(  # type: ignore[attr-defined]
        target=_write_steadily, args=(monolith, arguments.rate, arguments.seconds, run)
    )
    writer.start()
    writer.join()
    apply.drain(link, link.context.directions(Owner.MONOLITH), timeout=600)
    stopping.set()
    loop.join()
    backlog = spawn.Process(  # type: ignore[attr-defined]
        target=_write_steadily, args=(monolith, 2000, 5, run + 100)
    )
    backlog.start()
    backlog.join()
    drained = apply.drain(link, link.context.directions(Owner.MONOLITH), timeout=600)
    return delays, sum(drained.entries.values()) / drained.seconds


@contextmanager
def forum_system(
    monolith: str, folder: Path, arguments: argparse.Namespace
) -> Iterator[tuple[str, Link]]:
    """Monolith (gunicorn), forum service, proxy (stage 0) and the forum's sync, backfilled."""
    with ExitStack() as stack:
        service = stack.enter_context(fresh_database("sqlite", folder, "", "forum"))
        schemas.upgrade("forum", service)

        def launch(name: str, argv: list[str], env: dict[str, str], port: int | None) -> None:
            health = f"http://127.0.0.1:{port}/healthz" if port else None
            process: ManagedProcess = start(name, argv, env, health, folder / f"{name}.log")
            stack.callback(process.stop)
            process.wait_healthy(120)

        ports = {name: free_port() for name in ("monolith", "forum", "proxy", "sync")}
        workspace = find_workspace()
        launch(
            "monolith",
            monolith_command(workspace, ports["monolith"]),
            monolith_environment(workspace, monolith, SECRET, folder),
            ports["monolith"],
        )
        forum = service_environment(workspace, "forum", service, SECRET)
        launch("forum", service_command(workspace, "forum", ports["forum"]), forum, ports["forum"])
        link = stack.enter_context(Link.open("forum", monolith, service))
        backfill.backfill(link, arguments.chunk_rows)
        sync = sync_environment(workspace, monolith, service, ports["sync"])
        launch("sync", sync_command("forum"), sync, ports["sync"])
        table = Path(folder) / "stage0-table.toml"
        table.write_text(workspace.migration().stage(0).table_text())
        env = {
            "PROXY_MONOLITH_URL": f"http://127.0.0.1:{ports['monolith']}",
            "PROXY_UPSTREAMS": json.dumps({"forum": f"http://127.0.0.1:{ports['forum']}"}),
            "PROXY_ROUTE_TABLE_PATH": str(table), "PROXY_ADMIN_TOKEN": ADMIN,
            "PROXY_AUDIT_LOG_PATH": str(folder / "audit.jsonl"), "PROXY_ACCESS_LOG": "false",
            "STRANGLER_TOKEN_SECRET": SECRET, "PROXY_TABLE_WATCH_SECONDS": "0",
        }  # fmt: skip
        launch("proxy", proxy_command(ports["proxy"]), env, ports["proxy"])
        yield f"http://127.0.0.1:{ports['proxy']}", link


def _steady_load(proxy: str, stopping: threading.Event, answers: list[tuple[float, int]]) -> None:
    headers = {"Authorization": f"Bearer {TokenSigner(SECRET).issue(7)}"}
    with httpx.Client(timeout=30) as client:
        for number in range(10**9):
            if stopping.is_set():
                return
            thread = number % 50 + 1
            started = time.monotonic()
            if number % 2:
                status = client.get(f"{proxy}/api/threads/{thread}").status_code
            else:
                body = {"body": f"bench {number}"}
                post = client.post(
                    f"{proxy}/api/threads/{thread}/posts", json=body, headers=headers
                )
                status = post.status_code
            answers.append((time.monotonic() - started, status))
            time.sleep(0.01)


def _steps(report: cutover.MoveReport) -> str:
    steps = ", ".join(f"{name} {seconds * 1000:.0f}" for name, seconds in report.steps.items())
    return f"freeze {report.freeze_seconds * 1000:.0f} ms (steps, ms: {steps})"


def freeze_runs(monolith: str, arguments: argparse.Namespace) -> dict[str, list[float]]:
    windows: dict[str, list[float]] = {"cutover": [], "rollback": []}
    answers: list[tuple[float, int]] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        forum_system(monolith, Path(folder), arguments) as (proxy, link),
    ):
        stopping = threading.Event()
        loaders = [
            threading.Thread(target=_steady_load, args=(proxy, stopping, answers)) for _ in range(3)
        ]
        for loader in loaders:
            loader.start()
        admin = ProxyAdmin(proxy, ADMIN, actor="bench")
        try:
            for number in range(arguments.cutovers):
                for name, move in (("cutover", cutover.cutover), ("rollback", cutover.rollback)):
                    report = move(link, admin)
                    windows[name].append(report.freeze_seconds)
                    console.print(f"  {name} {number + 1}: {_steps(report)}; {_load()}")
                    time.sleep(1)
        finally:
            stopping.set()
            for loader in loaders:
                loader.join()
            admin.close()
            capture.stop(link)  # leave the monolith as it was
    failed = sum(1 for _, status in answers if status >= 300)
    slowest = max((seconds for seconds, _ in answers), default=0.0)
    for name, measured in windows.items():
        console.print(
            f"[bold]{name} freeze window: median {statistics.median(measured) * 1000:.0f} ms, "
            f"max {max(measured) * 1000:.0f} ms[/] ({len(measured)} moves)"
        )
    console.print(
        f"[bold]under load: {len(answers):,} requests, {failed} failed, "
        f"slowest {slowest * 1000:.0f} ms[/]"
    )
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=41)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--monolith", type=Path, default=Path(tempfile.gettempdir()) / "bench-data-monolith.sqlite3"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "STRANGLER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--chunk-rows", type=int, default=backfill.DEFAULT_CHUNK_ROWS)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--cutovers", type=int, default=5)
    parser.add_argument("--only", default="backfill,lag,freeze")
    parser.add_argument("--plot", type=Path, default=Path(tempfile.gettempdir()) / "bench-data.png")
    arguments = parser.parse_args()
    parts = set(arguments.only.split(","))
    monolith = seeded_monolith(arguments.monolith, arguments.scale)
    backends = ["sqlite", "postgres"]
    if "backfill" in parts:
        backfill_runs(monolith, backends, arguments)
    delays = lag_runs(monolith, backends, arguments) if "lag" in parts else {}
    windows = freeze_runs(monolith, arguments) if "freeze" in parts else {}
    if delays or windows:
        console.print(f"plot: {data_plot.draw(delays, windows, arguments.plot)}")


if __name__ == "__main__":
    main()
