"""How each process of the system is started: its command line and its environment.

One place, used by `strangler up` and by the test fixtures, so tests run exactly what users run.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from pathlib import Path


def monolith_command(port: int, workers: int = 2, host: str = "127.0.0.1") -> list[str]:
    """The monolith under gunicorn with sync workers, the way it is deployed."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        # Threaded workers keep connections alive (sync workers close each one), so the proxy
        # and load generators reuse connections instead of paying a TCP handshake per request.
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--keep-alive",
        "30",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        "monolith:create_app()",
    ]


def service_command(
    context: str, port: int, host: str = "127.0.0.1", workers: int = 1
) -> list[str]:
    """An extracted service (`extracted.<context>`) under uvicorn, with `workers` processes."""
    more_workers = ["--workers", str(workers)] if workers > 1 else []
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"extracted.{context}:create_app",
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        *more_workers,
    ]


def service_environment(context: str, database_url: str, token_secret: str) -> dict[str, str]:
    """A service reads `<CONTEXT>_DATABASE_URL`; every process shares the token secret."""
    return {f"{context.upper()}_DATABASE_URL": database_url, "STRANGLER_TOKEN_SECRET": token_secret}


def context_environment(context: str, state_dir: Path) -> dict[str, str]:
    """What every process of `context` (its service, relay and consumer) shares beyond its
    database: polls keeps its static results pages in the state folder, where the consumer
    writes them and the service serves them."""
    if context == "polls":
        return {"POLLS_RESULTS_DIR": str(state_dir / "polls-results")}
    return {}


def proxy_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The strangler proxy, with the server options it needs (see strangler_proxy/__main__.py)."""
    return [sys.executable, "-m", "strangler_proxy", "--host", host, "--port", str(port)]


def proxy_environment(
    monolith_url: str, route_table: Path, admin_token: str, token_secret: str, state_dir: Path
) -> dict[str, str]:
    """The proxy knows the apps only as URLs; its table is a file; its audit log is kept here."""
    return {
        "PROXY_MONOLITH_URL": monolith_url,
        "PROXY_ROUTE_TABLE_PATH": str(route_table),
        "PROXY_ADMIN_TOKEN": admin_token,
        "PROXY_AUDIT_LOG_PATH": str(state_dir / "proxy-audit.jsonl"),
        "STRANGLER_TOKEN_SECRET": token_secret,
    }


def relay_command(source: str) -> list[str]:
    """The outbox relay of service `source` (reads `<SOURCE>_DATABASE_URL`, `STRANGLER_BUS_URL`)."""
    return [sys.executable, "-m", "strangler.events.relay", "--source", source]


def consumer_command(target: str) -> list[str]:
    """An event consumer (`forum`, `search`, ...) writing to its context's own database."""
    return [sys.executable, "-m", "strangler.events.consumer", target]


METRICS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


def metrics_directory(path: Path) -> dict[str, str]:
    """The Prometheus multiprocess directory of a multi-worker server, as its env variable;
    `prepare_metrics_directory` empties it just before the server starts."""
    return {METRICS_DIRECTORY: str(path)}


def prepare_metrics_directory(env: Mapping[str, str]) -> None:
    """Give a multi-worker server a fresh, empty metrics directory (stale files would be merged)."""
    if directory := env.get(METRICS_DIRECTORY):
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True)


def monolith_environment(database_url: str, token_secret: str, state_dir: Path) -> dict[str, str]:
    return {
        "MONOLITH_DATABASE_URL": database_url,
        "STRANGLER_TOKEN_SECRET": token_secret,
        **metrics_directory(state_dir / "metrics" / "monolith"),
    }


def sync_command(context: str) -> list[str]:
    """The data path's sync of one context (see docs/data-path.md)."""
    return [sys.executable, "-m", "strangler.datapath.sync", context]


def sync_environment(
    monolith_url: str, service_url: str, port: int | None = None
) -> dict[str, str]:
    """The sync reads both databases; it serves /healthz and /metrics on `port` when given."""
    env = {"SYNC_MONOLITH_DATABASE_URL": monolith_url, "SYNC_SERVICE_DATABASE_URL": service_url}
    if port is not None:
        env["SYNC_PORT"] = str(port)
    return env
