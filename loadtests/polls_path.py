"""The system `bench_events` measures: the polls service, its relay and its results consumer.

Each run gets a fresh polls database (a SQLite file, or a new database on a PostgreSQL server),
a fresh bus (the embedded database bus on the same backend, or a key prefix of its own on
Redis, deleted afterwards) and the three processes, started exactly as `strangler.runtime.launch`
says, on loopback. Everything stops and is removed when the block ends. Nothing here measures.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from extracted.polls.models import consumed, outbox
from strangler.datapath.schemas import upgrade
from strangler.plumbing.tokens import TokenSigner
from strangler.runtime.launch import (
    consumer_command,
    context_environment,
    relay_command,
    service_command,
    service_environment,
)
from strangler.runtime.processes import ManagedProcess, free_port, start
from strangler.workspace import find_workspace

OPTIONS = ["red", "green", "blue", "yellow"]


@dataclass(frozen=True)
class PollsPath:
    url: str
    processes: dict[str, ManagedProcess]  # service, relay, consumer


@contextmanager
def fresh_database(backend: str, workdir: Path, postgres_url: str, name: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'{name}.sqlite3'}"
        return
    database = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        yield make_url(postgres_url).set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_bus(
    bus: str, backend: str, workdir: Path, postgres_url: str, redis_url: str
) -> Iterator[str]:
    if bus == "database":
        with fresh_database(backend, workdir, postgres_url, "bus") as url:
            yield url
        return
    import redis

    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    try:
        yield f"{redis_url}?prefix={prefix}"
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


@contextmanager
def running_polls_path(
    database_url: str, bus_url: str, workdir: Path, token_secret: str
) -> Iterator[PollsPath]:
    """Migrate the polls database; run the service, its relay and its results consumer."""
    upgrade("polls", database_url)
    port = free_port()
    workspace = find_workspace()
    environment = {
        **service_environment(workspace, "polls", database_url, token_secret),
        **context_environment(workspace, "polls", workdir),
        "STRANGLER_BUS_URL": bus_url,
    }
    with ExitStack() as stack:
        processes: dict[str, ManagedProcess] = {}
        for name, argv, health in (
            ("service", service_command(workspace, "polls", port), f"http://127.0.0.1:{port}/healthz"),
            ("relay", relay_command("polls"), None),
            ("consumer", consumer_command(str(workspace.contexts["polls"].runs.consumer)), None),
        ):
            process = start(name, argv, environment, health, workdir / "logs" / f"{name}.log")
            stack.callback(process.stop)
            process.wait_healthy(60)
            processes[name] = process
        yield PollsPath(f"http://127.0.0.1:{port}", processes)


def create_polls(url: str, count: int, token_secret: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {TokenSigner(token_secret).issue(1)}"}
    with httpx.Client(timeout=30) as client:
        return [
            client.post(
                f"{url}/api/polls",
                json={"question": f"Poll {n}?", "options": OPTIONS},
                headers=headers,
            ).json()
            for n in range(count)
        ]


def progress(engine: Engine) -> tuple[int, int]:
    """(events recorded in the outbox, events the results consumer has applied)."""
    with engine.connect() as connection:
        recorded = connection.scalar(select(func.count()).select_from(outbox)) or 0
        applied = connection.scalar(select(func.count()).select_from(consumed.consumed)) or 0
    return recorded, applied
