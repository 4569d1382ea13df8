"""Benchmark: each extracted service's busiest reads next to the monolith's, on the same data.

    python -m loadtests.bench_services [--scale 1] [--seconds 5] [--runs 3]

Seeds a monolith database (SQLite), copies each context's rows into its service's own database
(as a backfill would), counts the polls results projection and builds the search index from
them, then serves the monolith under gunicorn (2 threaded workers) and each service under
uvicorn (1 process), and drives the same requests at each with wrk. Prints medians of `--runs`
runs: requests/s, p50 and the server's CPU per request, and the service/monolith ratio. The
worker budgets differ (2 gunicorn workers, 1 uvicorn process), so CPU per request is the
like-for-like figure. Everything listens on loopback and stops at the end. Figures vary with
the machine's other load: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import Engine, MetaData, insert, select

from extracted.polls import projection
from loadtests.bench_proxy import SERVING_PIDS, TOKEN_SECRET, _process, measure
from monolith.seed import seed
from strangler.datapath.schemas import upgrade
from strangler.plumbing.clock import utcnow
from strangler.plumbing.database import make_engine
from strangler.runtime.launch import (
    monolith_command,
    monolith_environment,
    service_command,
    service_environment,
)
from strangler.runtime.processes import free_port
from strangler.workspace import find_workspace

# (label, context, path): the reads each service exists to serve.
READS = [
    ("user", "users", "/api/users/500"),
    ("thread", "forum", "/api/threads/1000"),
    ("posts of a thread", "forum", "/api/threads/1000/posts"),
    ("poll results", "polls", "/api/polls/100/results"),
    ("search", "search", "/api/search?q=harmony"),
]
# Which monolith tables each service's database receives, unchanged.
COPIED = {
    "users": ["users"],
    "forum": ["threads", "posts"],
    "polls": ["polls", "poll_options", "votes"],
}
console = Console()


def _copy(source: Engine, target: Engine, tables: list[str]) -> None:
    source_tables, target_tables = MetaData(), MetaData()
    source_tables.reflect(source, only=tables)
    target_tables.reflect(target, only=tables)
    with source.connect() as reading, target.begin() as writing:
        for name in tables:
            columns = [c.name for c in target_tables.tables[name].c]
            rows = [
                dict(r._mapping)
                for r in reading.execute(
                    select(*(source_tables.tables[name].c[c] for c in columns))
                )
            ]
            if rows:
                writing.execute(insert(target_tables.tables[name]), rows)


def _copy_authors(source: Engine, target: Engine) -> None:
    """The forum's replica of users' names, as the users events would have filled it."""
    users, authors = MetaData(), MetaData()
    users.reflect(source, only=["users"])
    authors.reflect(target, only=["authors"])
    now = utcnow()
    with source.connect() as reading, target.begin() as writing:
        rows = reading.execute(
            select(users.tables["users"].c.id, users.tables["users"].c.display_name)
        )
        writing.execute(
            insert(authors.tables["authors"]),
            [
                {
                    "id": r.id,
                    "display_name": r.display_name,
                    "is_provisional": False,
                    "updated_at": now,
                }
                for r in rows
            ],
        )


def prepare(workdir: Path, scale: float) -> dict[str, str]:
    """Seed the monolith and give every service the same data; return each database's URL."""
    urls = {
        name: f"sqlite:///{workdir / f'{name}.sqlite3'}" for name in ("monolith", *COPIED, "search")
    }
    upgrade("monolith", urls["monolith"])
    monolith = make_engine(urls["monolith"])
    seed(monolith, scale, 42)
    for context, tables in COPIED.items():
        upgrade(context, urls[context])
        _copy(monolith, make_engine(urls[context]), tables)
    _copy_authors(monolith, make_engine(urls["forum"]))
    projection.rebuild(make_engine(urls["polls"]))  # as the data path counts copied votes
    upgrade("search", urls["search"])
    subprocess.run(
        [sys.executable, "-m", "extracted.search.rebuild", "--from", urls["monolith"]],
        env={
            "SEARCH_DATABASE_URL": urls["search"],
            "STRANGLER_TOKEN_SECRET": TOKEN_SECRET,
            "PATH": "",
        },
        check=True,
        capture_output=True,
    )
    return urls


@contextmanager
def serving(workdir: Path, urls: dict[str, str]) -> Iterator[dict[str, str]]:
    """The monolith and the four services, each on its own port; yield their base URLs."""
    logs = workdir / "logs"
    with ExitStack() as stack:
        bases: dict[str, str] = {}
        port = free_port()
        workspace = find_workspace()
        env = monolith_environment(workspace, urls["monolith"], TOKEN_SECRET, workdir)
        argv = monolith_command(workspace, port)
        stack.enter_context(
            _process("monolith", argv, env, f"http://127.0.0.1:{port}/healthz", logs)
        )
        bases["monolith"] = f"http://127.0.0.1:{port}"
        for context in workspace.context_names:
            port = free_port()
            env = service_environment(workspace, context, urls[context], TOKEN_SECRET)
            health = f"http://127.0.0.1:{port}/healthz"
            stack.enter_context(
                _process(context, service_command(workspace, context, port), env, health, logs)
            )
            bases[context] = f"http://127.0.0.1:{port}"
        yield bases


def _median_run(url: str, seconds: float, runs: int) -> tuple[float, float, float | None]:
    samples = [
        measure(url, 32, seconds, True, SERVING_PIDS.get(url.split("/api")[0])) for _ in range(runs)
    ]
    cpu = [s[4] for s in samples if s[4] is not None]
    return (
        statistics.median(s[0] for s in samples),
        statistics.median(s[1] for s in samples),
        statistics.median(cpu) if cpu else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="seed size (1 = 2,000 threads)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each wrk run")
    parser.add_argument("--runs", type=int, default=3, help="runs per endpoint; medians shown")
    arguments = parser.parse_args()
    report = RichTable(title="busiest reads: service vs monolith (wrk, 32 connections, medians)")
    for column in (
        "read",
        "monolith req/s",
        "service req/s",
        "ratio",
        "p50 ms (m / s)",
        "CPU µs/req (m / s)",
    ):
        report.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="bench-services-") as folder:
        workdir = Path(folder)
        with console.status("seeding and copying data"):
            urls = prepare(workdir, arguments.scale)
        with serving(workdir, urls) as bases:
            for label, context, path in READS:
                with console.status(f"measuring {label}"):
                    m_rps, m_p50, m_cpu = _median_run(
                        bases["monolith"] + path, arguments.seconds, arguments.runs
                    )
                    s_rps, s_p50, s_cpu = _median_run(
                        bases[context] + path, arguments.seconds, arguments.runs
                    )
                report.add_row(
                    f"{label} ({context})",
                    f"{m_rps:,.0f}",
                    f"{s_rps:,.0f}",
                    f"{s_rps / m_rps:.2f}x",
                    f"{m_p50:.1f} / {s_p50:.1f}",
                    f"{m_cpu or 0:,.0f} / {s_cpu or 0:,.0f}",
                )
    console.print(report)


if __name__ == "__main__":
    main()
