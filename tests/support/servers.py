"""Real servers for tests: started on a free loopback port, healthy before use, stopped after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from migrations.runner import upgrade
from strangler.launch import (
    monolith_command,
    monolith_environment,
    service_command,
    service_environment,
)
from strangler.processes import ManagedProcess, free_port, start

TEST_TOKEN_SECRET = "test-signing-key-not-a-secret-0123456789"
# Cheap password hashing keeps sign-up-heavy suites fast; production defaults stay strong.
FAST_PASSWORDS = {"MONOLITH_PASSWORD_TIME_COST": "1", "MONOLITH_PASSWORD_MEMORY_KIB": "1024"}


@contextmanager
def running_monolith(database_url: str, state_dir: Path, workers: int = 2) -> Iterator[str]:
    """Migrate `database_url`, serve the monolith under gunicorn, yield its base URL."""
    upgrade("monolith", database_url)
    port = free_port()
    env = {
        **monolith_environment(database_url, TEST_TOKEN_SECRET, state_dir),
        **FAST_PASSWORDS,
    }
    process: ManagedProcess = start(
        "monolith",
        monolith_command(port, workers),
        env,
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=state_dir / "logs" / "monolith.log",
    )
    try:
        process.wait_healthy()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@contextmanager
def running_service(
    context: str, database_url: str, state_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """Migrate the service database, serve `extracted.<context>` under uvicorn, yield its URL."""
    upgrade(context, database_url)
    port = free_port()
    env = {
        **service_environment(context, database_url, TEST_TOKEN_SECRET),
        f"{context.upper()}_PASSWORD_TIME_COST": "1",
        f"{context.upper()}_PASSWORD_MEMORY_KIB": "1024",
        **(extra_env or {}),
    }
    process = start(
        context,
        service_command(context, port),
        env,
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=state_dir / "logs" / f"{context}.log",
    )
    try:
        process.wait_healthy()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()
