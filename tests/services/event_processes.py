"""Relay and consumer processes for tests: started exactly as users start them, killable.

`python -m extracted.events.relay --source <context>` and
`python -m extracted.events.consumer <target>`, each in its own process group so a test can
SIGKILL it mid-stream. Also the bus a test runs on: the embedded database bus on the current
backend, or Redis Streams when `STRANGLER_TEST_REDIS_URL` names a server.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from strangler.runtime.launch import (
    consumer_command,
    context_environment,
    relay_command,
    workspace_environment,
)
from strangler.runtime.processes import ManagedProcess, start
from strangler.workspace import find_workspace
from tests.support.databases import fresh_database
from tests.support.servers import TEST_TOKEN_SECRET

REDIS_ENV = "STRANGLER_TEST_REDIS_URL"
REPOSITORY = Path(__file__).resolve().parents[2]
WORKSPACE = find_workspace(REPOSITORY)
BUSES = ["database", pytest.param("redis", marks=pytest.mark.redis)]


def redis_server_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"Redis bus tests need {REDIS_ENV} (e.g. redis://127.0.0.1:6379/15)")
    return url


@contextmanager
def fresh_bus(kind: str, backend: str, folder: Path) -> Iterator[str]:
    """Yield the URL of an empty bus: a fresh database, or a fresh key prefix on Redis."""
    if kind == "database":
        with fresh_database(backend, folder, "bus") as url:
            yield url
        return
    import redis

    server = redis_server_url()
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    joiner = "&" if "?" in server else "?"
    try:
        yield f"{server}{joiner}prefix={prefix}"
    finally:
        client = redis.Redis.from_url(server)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def _start(name: str, argv: list[str], env: dict[str, str], state_dir: Path) -> ManagedProcess:
    return start(
        name,
        argv,
        {"STRANGLER_TOKEN_SECRET": TEST_TOKEN_SECRET, **workspace_environment(WORKSPACE), **env},
        log_path=state_dir / "logs" / f"{name}.log",
        cwd=REPOSITORY,
    )


def start_relay(
    source: str, database_url: str, bus_url: str, state_dir: Path, **tuning: str
) -> ManagedProcess:
    """A relay for `source` reading `database_url`'s outbox; `tuning` sets `<SOURCE>_EVENT_*`."""
    env = {
        f"{source.upper()}_DATABASE_URL": database_url,
        "STRANGLER_BUS_URL": bus_url,
        **(context_environment(WORKSPACE, source, state_dir) if source in WORKSPACE.contexts
           else {}),
        **{f"{source.upper()}_EVENT_{key.upper()}": value for key, value in tuning.items()},
    }
    return _start(f"{source}-relay", relay_command(source), env, state_dir)


def start_consumer(
    target: str, context: str, database_url: str, bus_url: str, state_dir: Path, **tuning: str
) -> ManagedProcess:
    """A consumer (a context of the workspace, or `module:attribute`) writing to `database_url`
    (and, for polls, its pages into `state_dir`, where a polls service started with the same
    folder serves them)."""
    if ":" not in target:
        target = str(WORKSPACE.contexts[target].runs.consumer)
    env = {
        f"{context.upper()}_DATABASE_URL": database_url,
        "STRANGLER_BUS_URL": bus_url,
        **(context_environment(WORKSPACE, context, state_dir) if context in WORKSPACE.contexts
           else {}),
        **{f"{context.upper()}_EVENT_{key.upper()}": value for key, value in tuning.items()},
    }
    return _start(f"{context}-consumer", consumer_command(target), env, state_dir)


@contextmanager
def running(process: ManagedProcess) -> Iterator[ManagedProcess]:
    """Stop `process` (if still running) when the block ends."""
    try:
        yield process
    finally:
        process.stop()


def eventually(
    check: Callable[[], bool], within: float, process: ManagedProcess | None = None
) -> bool:
    """Poll `check` until it holds or the deadline passes (a contract bound, not a timing)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        if process is not None and not process.is_running:
            raise AssertionError(f"{process.name} exited:\n{process.log_tail()}")
        time.sleep(0.02)
    return check()
