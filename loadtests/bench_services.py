"""Benchmark: each extracted service's busiest reads next to the monolith's, on the same data.

    python -m loadtests.bench_services [--scale 1] [--seconds 5] [--runs 3] [--workers N]
                                       [--json figures.json]

Seeds a monolith database (SQLite), copies each context's rows into its service's own database
(as a backfill would), counts the polls results projection and builds the search index from
them, then serves the monolith under gunicorn and each service under uvicorn, and drives the
same requests at each with wrk (32 connections). Worker counts are as `strangler up` deploys
them (the monolith: 2 threaded gunicorn workers; a service: 1 uvicorn process) unless
`--workers N` gives both sides N, the fair pair for throughput (`--workers 1`). Prints medians
of `--runs` runs: requests/s, p50 and the server's CPU per request (its whole process tree),
and the service/monolith ratios; each side's worker count is in the table's title and the
JSON document. CPU per request is the like-for-like figure whatever the worker counts.
Everything listens on loopback and stops at the end. Figures vary with the machine's other
load: compare ratios from one run. This script prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
# As `strangler up` serves them: gunicorn's threaded workers, one uvicorn process per service.
MONOLITH_WORKERS = 2
SERVICE_WORKERS = 1
CONNECTIONS = 32
# Wide enough for the table when the output is a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 150)


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


@dataclass(frozen=True)
class Workers:
    """How many worker processes each side runs."""

    monolith: int = MONOLITH_WORKERS
    service: int = SERVICE_WORKERS


@contextmanager
def serving(workdir: Path, urls: dict[str, str], workers: Workers) -> Iterator[dict[str, str]]:
    """The monolith and the four services, each on its own port; yield their base URLs."""
    logs = workdir / "logs"
    with ExitStack() as stack:
        bases: dict[str, str] = {}
        port = free_port()
        workspace = find_workspace()
        env = monolith_environment(workspace, urls["monolith"], TOKEN_SECRET, workdir)
        command = monolith_command(workspace, port, workers.monolith)
        health = f"http://127.0.0.1:{port}/healthz"
        stack.enter_context(_process("monolith", command, env, health, logs))
        bases["monolith"] = f"http://127.0.0.1:{port}"
        for context in workspace.context_names:
            port = free_port()
            env = service_environment(workspace, context, urls[context], TOKEN_SECRET)
            command = service_command(workspace, context, port, workers=workers.service)
            health = f"http://127.0.0.1:{port}/healthz"
            stack.enter_context(_process(context, command, env, health, logs))
            bases[context] = f"http://127.0.0.1:{port}"
        yield bases


@dataclass(frozen=True)
class Figures:
    """One side's figures for one read: medians of the runs, and each run's own."""

    requests_per_second: float
    p50_ms: float
    cpu_us_per_request: float | None
    errors: int
    runs: list[dict[str, float | None]]


def _median_run(url: str, seconds: float, runs: int) -> Figures:
    pid = SERVING_PIDS.get(url.split("/api")[0])
    samples = [measure(url, CONNECTIONS, seconds, True, pid) for _ in range(runs)]
    cpu = [s[4] for s in samples if s[4] is not None]
    return Figures(
        requests_per_second=statistics.median(s[0] for s in samples),
        p50_ms=statistics.median(s[1] for s in samples),
        cpu_us_per_request=statistics.median(cpu) if cpu else None,
        errors=sum(s[3] for s in samples),
        runs=[
            {"requests_per_second": s[0], "p50_ms": s[1], "cpu_us_per_request": s[4]}
            for s in samples
        ],
    )


def _ratio(service: float | None, monolith: float | None) -> float | None:
    return round(service / monolith, 3) if service is not None and monolith else None


def measure_reads(bases: dict[str, str], seconds: float, runs: int) -> list[dict[str, Any]]:
    """Every read of `READS` on the monolith and on its service, one after the other."""
    found = []
    for label, context, path in READS:
        with console.status(f"measuring {label}"):
            monolith = _median_run(bases["monolith"] + path, seconds, runs)
            service = _median_run(bases[context] + path, seconds, runs)
        found.append(
            {
                "read": label,
                "context": context,
                "path": path,
                "monolith": asdict(monolith),
                "service": asdict(service),
                "throughput_ratio": _ratio(
                    service.requests_per_second, monolith.requests_per_second
                ),
                "cpu_ratio": _ratio(service.cpu_us_per_request, monolith.cpu_us_per_request),
            }
        )
    return found


def _print_report(reads: list[dict[str, Any]], workers: Workers, runs: int) -> None:
    report = RichTable(
        title=(
            f"busiest reads: service vs monolith (wrk, {CONNECTIONS} connections, medians of "
            f"{runs} runs)\nmonolith: gunicorn, {workers.monolith} worker(s) x 4 threads; "
            f"each service: uvicorn, {workers.service} worker process(es)"
        )
    )
    for column in (
        "read",
        "monolith req/s",
        "service req/s",
        "ratio",
        "p50 ms (m / s)",
        "CPU µs/req (m / s)",
        "CPU ratio",
    ):
        report.add_column(column, justify="right")
    for read in reads:
        monolith, service = read["monolith"], read["service"]
        errors = monolith["errors"] + service["errors"]
        report.add_row(
            f"{read['read']} ({read['context']})" + (f" [{errors} errors]" if errors else ""),
            f"{monolith['requests_per_second']:,.0f}",
            f"{service['requests_per_second']:,.0f}",
            f"{read['throughput_ratio']:.2f}x",
            f"{monolith['p50_ms']:.1f} / {service['p50_ms']:.1f}",
            f"{monolith['cpu_us_per_request'] or 0:,.0f} / "
            f"{service['cpu_us_per_request'] or 0:,.0f}",
            f"{read['cpu_ratio']:.2f}x" if read["cpu_ratio"] is not None else "-",
        )
    console.print(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="seed size (1 = 2,000 threads)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each wrk run")
    parser.add_argument("--runs", type=int, default=3, help="runs per endpoint; medians shown")
    parser.add_argument(
        "--workers",
        type=int,
        help=(
            f"worker processes of both the monolith and each service (default: as deployed, "
            f"{MONOLITH_WORKERS} and {SERVICE_WORKERS}); 1 gives the fair pair for throughput"
        ),
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    arguments = parser.parse_args()
    workers = Workers(arguments.workers, arguments.workers) if arguments.workers else Workers()
    with tempfile.TemporaryDirectory(prefix="bench-services-") as folder:
        workdir = Path(folder)
        with console.status("seeding and copying data"):
            urls = prepare(workdir, arguments.scale)
        with serving(workdir, urls, workers) as bases:
            reads = measure_reads(bases, arguments.seconds, arguments.runs)
    _print_report(reads, workers, arguments.runs)
    if arguments.json:
        document = {
            "load": {
                "generator": "wrk (1 thread)",
                "connections": CONNECTIONS,
                "seconds": arguments.seconds,
                "runs": arguments.runs,
                "scale": arguments.scale,
            },
            "workers": {
                "monolith": {
                    "server": "gunicorn gthread, 4 threads",
                    "processes": workers.monolith,
                },
                "service": {"server": "uvicorn", "processes": workers.service},
            },
            "reads": reads,
        }
        arguments.json.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
