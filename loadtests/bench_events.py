"""Benchmark: event-driven polls results on each bus - votes/s accepted, and how long an
accepted vote takes to show in the results.

    python -m loadtests.bench_events [--seconds 10] [--runs 3] [--connections 16] [--polls 20]
        [--backend sqlite|postgres] [--buses database,redis]

Each run starts empty, on loopback (`loadtests.polls_path`): a fresh polls database (SQLite
file, or a new database on `--postgres-url`), the polls service (uvicorn, one process), its
relay and its results consumer (`python -m extracted.events.consumer polls`), default settings,
on the embedded database bus (same backend) or on Redis Streams (`--redis-url`, a key prefix of
its own, deleted after); the buses take turns, run by run.
`--connections` closed-loop voters (`loadtests.voters`, in their own process) then vote for
`--seconds`. Printed, as medians of `--runs` runs:
- votes/s accepted (201), with the relay and the consumer running on the same machine;
- every vote: from its 201 to its event applied (`consumed_events.applied_at`: the projection
  recomputed and the page written, in the transaction that commits them), p50 / p95;
- the probe: from its 201 to the results API, and to the page, showing it (read every 5 ms);
- events still to apply when the load stopped, and the seconds they took to drain;
- CPU milliseconds per accepted vote of the service, the relay and the consumer.
Then the cost of recomputing one poll's projection by its number of votes. It asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from extracted.polls import projection
from extracted.polls.events import VOTE_CAST
from extracted.polls.models import Poll, PollOption, Vote, consumed, outbox
from loadtests.bench_proxy import TOKEN_SECRET
from loadtests.polls_path import (
    OPTIONS,
    create_polls,
    fresh_bus,
    fresh_database,
    progress,
    running_polls_path,
)
from loadtests.voters import Load, Plan, run_load
from strangler.compare.load import cpu_seconds
from strangler.datapath.schemas import upgrade
from strangler.plumbing.database import make_engine

console = Console(width=None if sys.stdout.isatty() else 160)  # whole rows in a log file too


@dataclass(frozen=True)
class Figures:
    """One run on one bus."""

    votes_per_second: float
    applied_ms: tuple[float, float]  # p50, p95: every vote, 201 -> event applied
    results_ms: tuple[float, float]  # p50, p95: the probe, 201 -> results API shows it
    page_ms: tuple[float, float]  # p50, p95: the probe, 201 -> page shows it
    backlog: int
    drain_seconds: float
    cpu_ms_per_vote: dict[str, float]
    errors: int


def _percentiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return (samples[0] * 1000, samples[0] * 1000) if samples else (float("nan"),) * 2
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples) * 1000, cuts[94] * 1000


def _applied_delays(engine: Engine, load: Load) -> list[float]:
    """Per accepted vote: seconds from its 201 to its event's `applied_at`."""
    with engine.connect() as connection:
        events = connection.execute(
            select(outbox.c.id, outbox.c.payload).where(outbox.c.topic == VOTE_CAST)
        ).all()
        marks = connection.execute(
            select(consumed.consumed.c.event_id, consumed.consumed.c.applied_at)
        ).all()
    event_of = {json.loads(row.payload)["user_id"]: f"polls:{row.id}" for row in events}
    applied_at = {row.event_id: row.applied_at.replace(tzinfo=UTC).timestamp() for row in marks}
    return [applied_at[event_of[user]] - accepted for user, accepted in load.accepted]


def one_run(bus: str, arguments: argparse.Namespace) -> Figures:
    with (
        tempfile.TemporaryDirectory(prefix="bench-events-") as folder,
        fresh_database(arguments.backend, Path(folder), arguments.postgres_url, "polls") as url,
        fresh_bus(
            bus, arguments.backend, Path(folder), arguments.postgres_url, arguments.redis_url
        ) as bus_url,
        running_polls_path(url, bus_url, Path(folder), TOKEN_SECRET) as path,
    ):
        base, processes = path.url, path.processes
        *polls, probe = create_polls(base, arguments.polls + 1, TOKEN_SECRET)
        engine = make_engine(url)
        cpu = {name: cpu_seconds(process.popen.pid) for name, process in processes.items()}
        plan = Plan(base, polls, probe, arguments.connections, arguments.seconds, TOKEN_SECRET)
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        voters = context.Process(target=run_load, args=(plan, queue))
        voters.start()
        load: Load = queue.get(timeout=arguments.seconds + 120)
        voters.join()
        stopped = time.monotonic()
        recorded, applied = progress(engine)
        backlog = recorded - applied
        while applied < recorded and time.monotonic() - stopped < 120:
            time.sleep(0.02)
            recorded, applied = progress(engine)
        drained = time.monotonic() - stopped
        votes = len(load.accepted)
        spent = {name: cpu_seconds(p.popen.pid) - cpu[name] for name, p in processes.items()}
        figures = Figures(
            votes_per_second=votes / arguments.seconds,
            applied_ms=_percentiles(_applied_delays(engine, load)),
            results_ms=_percentiles(load.probe_results),
            page_ms=_percentiles(load.probe_page),
            backlog=backlog,
            drain_seconds=drained,
            cpu_ms_per_vote={name: seconds * 1000 / votes for name, seconds in spent.items()},
            errors=load.errors,
        )
        engine.dispose()
        return figures


def recompute_costs(backend: str, arguments: argparse.Namespace) -> list[tuple[int, float]]:
    """Milliseconds to recompute (and commit) one poll's projection, by its number of votes."""
    costs: list[tuple[int, float]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-recompute-") as folder,
        fresh_database(backend, Path(folder), arguments.postgres_url, "recompute") as url,
    ):
        upgrade("polls", url)
        engine = make_engine(url)
        with Session(engine) as session, session.begin():
            session.execute(insert(Poll).values(id=1, question="Hot?", author_id=1))
            session.execute(
                insert(PollOption),
                [{"id": n, "poll_id": 1, "position": n, "text": OPTIONS[n]} for n in range(4)],
            )
        have = 0
        for size in (1_000, 10_000, 100_000):
            with Session(engine) as session, session.begin():
                session.execute(
                    insert(Vote),
                    [
                        {"poll_id": 1, "option_id": user % 4, "user_id": user}
                        for user in range(have, size)
                    ],
                )
            have = size
            samples = []
            for _ in range(15):
                began = time.perf_counter()
                with Session(engine) as session, session.begin():
                    projection.refresh(session, [1])
                samples.append(time.perf_counter() - began)
            costs.append((size, statistics.median(samples) * 1000))
        engine.dispose()
    return costs


def _flat(run: Figures) -> dict[str, float]:
    return {
        "votes/s": run.votes_per_second,
        "applied p50": run.applied_ms[0],
        "applied p95": run.applied_ms[1],
        "results p50": run.results_ms[0],
        "results p95": run.results_ms[1],
        "page p50": run.page_ms[0],
        "page p95": run.page_ms[1],
        "backlog": run.backlog,
        "drain": run.drain_seconds,
        **{f"cpu {name}": ms for name, ms in run.cpu_ms_per_vote.items()},
        "errors": run.errors,
    }


def _medians(runs: list[Figures]) -> dict[str, float]:
    flat = [_flat(run) for run in runs]
    return {key: statistics.median(row[key] for row in flat) for key in flat[0]}


def _report(figures: dict[str, list[Figures]], arguments: argparse.Namespace) -> None:
    report = RichTable(
        title=f"polls results by events ({arguments.backend}, {arguments.connections} voters, "
        f"{arguments.seconds:g} s, medians of {arguments.runs} runs)"
    )
    columns = {
        "votes/s": "{votes/s:,.0f}",
        "vote→applied p50 / p95 ms": "{applied p50:.0f} / {applied p95:.0f}",
        "probe→results p50 / p95 ms": "{results p50:.0f} / {results p95:.0f}",
        "probe→page p50 / p95 ms": "{page p50:.0f} / {page p95:.0f}",
        "backlog / drain s": "{backlog:.0f} / {drain:.2f}",
        "CPU ms/vote svc / relay / consumer": "{cpu service:.2f} / {cpu relay:.2f} / "
        "{cpu consumer:.2f}",
        "errors": "{errors:.0f}",
    }
    report.add_column("bus")
    for column in columns:
        report.add_column(column, justify="right")
    for bus, runs in figures.items():
        medians = _medians(runs)
        report.add_row(bus, *(shape.format_map(medians) for shape in columns.values()))
    console.print(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load")
    parser.add_argument("--runs", type=int, default=3, help="runs per bus; medians shown")
    parser.add_argument("--connections", type=int, default=16, help="concurrent voters")
    parser.add_argument("--polls", type=int, default=20, help="polls the voters spread over")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--buses", default="database,redis", help="comma-separated")
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    arguments = parser.parse_args()
    figures: dict[str, list[Figures]] = {}
    for run in range(arguments.runs):  # buses take turns, so both see the machine's moods
        for bus in arguments.buses.split(","):
            with console.status(f"{bus} bus, run {run + 1} of {arguments.runs}"):
                figures.setdefault(bus, []).append(one_run(bus, arguments))
    _report(figures, arguments)
    with console.status("recomputing hot polls"):
        costs = recompute_costs(arguments.backend, arguments)
    console.print(
        f"recompute one poll ({arguments.backend}, one transaction, median of 15): "
        + ", ".join(f"{size:,} votes {ms:.1f} ms" for size, ms in costs)
    )


if __name__ == "__main__":
    main()
