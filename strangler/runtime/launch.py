"""How each process of a system is started: its command line and its environment.

One place, used by `strangler up` and by the test fixtures, so tests run exactly what users run.
The monolith and the services come from the workspace (`strangler.toml`): gunicorn or uvicorn
serving their import paths (`strangler.runtime.apps`), or their own commands with `{port}`;
every child can import the workspace's code and finds the workspace file. This module must
never start a process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from strangler.runtime.apps import ASGI_VARIABLE, WSGI_VARIABLE
from strangler.workspace import VARIABLE as WORKSPACE_VARIABLE
from strangler.workspace import Workspace
from strangler.workspace.model import PLACEHOLDER

METRICS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
TRACES_FOLDER = "traces"


def workspace_environment(workspace: Workspace) -> dict[str, str]:
    """What every child needs to import the workspace's code and find its file."""
    return {"PYTHONPATH": workspace.python_path(), WORKSPACE_VARIABLE: str(workspace.file)}


def monolith_command(
    workspace: Workspace, port: int, workers: int | None = None, host: str = "127.0.0.1"
) -> list[str]:
    """The monolith the way the workspace serves it: gunicorn, or its own command."""
    spec = workspace.spec.monolith
    if spec.serve != "gunicorn":
        return [part.replace("{port}", str(port)) for part in spec.serve]
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers or spec.workers),
        "--log-level",
        "warning",
        *spec.gunicorn_args,
        "strangler.runtime.apps:wsgi()",
    ]


def monolith_environment(
    workspace: Workspace, database_url: str, token_secret: str, state_dir: Path
) -> dict[str, str]:
    spec = workspace.spec.monolith
    return {
        **workspace_environment(workspace),
        WSGI_VARIABLE: spec.app,
        workspace.url_variable("monolith"): database_url,
        "STRANGLER_TOKEN_SECRET": token_secret,
        **metrics_directory(state_dir / "metrics" / "monolith"),
        **spec.env,
    }


def service_command(
    workspace: Workspace, context: str, port: int, host: str = "127.0.0.1", workers: int = 1
) -> list[str]:
    """A context's service under uvicorn with `workers` processes, or its own command."""
    spec = workspace.contexts[context].runs
    if spec.command is not None:
        return [part.replace("{port}", str(port)) for part in spec.command]
    more_workers = ["--workers", str(workers)] if workers > 1 else []
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "strangler.runtime.apps:asgi",
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        *more_workers,
    ]


def service_environment(
    workspace: Workspace, context: str, database_url: str, token_secret: str
) -> dict[str, str]:
    """A service reads its database URL from the variable the workspace names; every process
    shares the token secret."""
    spec = workspace.contexts[context].runs
    env = {
        **workspace_environment(workspace),
        workspace.url_variable(context): database_url,
        "STRANGLER_TOKEN_SECRET": token_secret,
    }
    if spec.app is not None:
        env[ASGI_VARIABLE] = spec.app
    return env


UrlOf = Callable[[str], str | None]


def context_environment(
    workspace: Workspace, context: str, state_dir: Path, url_of: UrlOf = lambda _: None
) -> dict[str, str]:
    """What every process of `context` (its service, relay and consumer) shares beyond its
    database: the service's `env` from the workspace, placeholders filled ({state}, {root},
    {url:CONTEXT}; a variable whose context does not run is left out)."""
    found: dict[str, str] = {}
    service = workspace.contexts[context].service
    for name, template in ({} if service is None else service.env).items():
        value = fill(template, workspace, state_dir, url_of)
        if value is not None:
            found[name] = value
    return found


def fill(template: str, workspace: Workspace, state_dir: Path, url_of: UrlOf) -> str | None:
    """`template` with its placeholders filled; None when a named context does not run."""
    missing = False

    def one(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name == "state":
            return str(state_dir)
        if name == "root":
            return str(workspace.root)
        url = url_of(name.removeprefix("url:"))
        missing = missing or url is None
        return url or ""

    value = PLACEHOLDER.sub(one, template)
    return None if missing else value


def proxy_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The strangler proxy, with the server options it needs (see strangler_proxy/__main__.py)."""
    return [sys.executable, "-m", "strangler_proxy", "--host", host, "--port", str(port)]


def proxy_environment(
    monolith_url: str,
    upstreams: Mapping[str, str],
    state_path: Path,
    admin_token: str,
    token_secret: str,
    state_dir: Path,
) -> dict[str, str]:
    """The proxy knows the apps only as URLs; it serves the routes of the migration's durable
    state (`strangler.state`); its audit log is kept beside it."""
    return {
        "PROXY_MONOLITH_URL": monolith_url,
        "PROXY_UPSTREAMS": json.dumps(dict(upstreams)),
        "PROXY_STATE_PATH": str(state_path),
        "PROXY_ADMIN_TOKEN": admin_token,
        "PROXY_AUDIT_LOG_PATH": str(state_dir / "proxy-audit.jsonl"),
        "STRANGLER_TOKEN_SECRET": token_secret,
    }


def relay_command(source: str) -> list[str]:
    """The outbox relay of service `source` (reads `<SOURCE>_DATABASE_URL`, `STRANGLER_BUS_URL`)."""
    return [sys.executable, "-m", "strangler.events.relay", "--source", source]


def consumer_command(consumer: str) -> list[str]:
    """An event consumer, named by the import path the workspace gives for it."""
    return [sys.executable, "-m", "strangler.events.consumer", consumer]


def metrics_directory(path: Path) -> dict[str, str]:
    """The Prometheus multiprocess directory of a multi-worker server, as its env variable;
    `prepare_metrics_directory` empties it just before the server starts."""
    return {METRICS_DIRECTORY: str(path)}


def prepare_metrics_directory(env: Mapping[str, str]) -> None:
    """Give a multi-worker server a fresh, empty metrics directory (stale files would be merged)."""
    if directory := env.get(METRICS_DIRECTORY):
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True)


def console_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The console: the live web page of the running migration (docs/console.md)."""
    return [sys.executable, "-m", "strangler.console", "--host", host, "--port", str(port)]


def console_environment(workspace: Workspace, state_dir: Path, admin_token: str) -> dict[str, str]:
    """The console reads the system's folder and signs people in with its admin token; the
    commands it runs find the same workspace."""
    return {
        **workspace_environment(workspace),
        "CONSOLE_HOME": str(state_dir),
        "CONSOLE_ADMIN_TOKEN": admin_token,
    }


# A span costs the proxy about as much as forwarding a request (docs/observability.md): by
# default one request in twenty is traced, and a trace once begun is followed through.
DEFAULT_SAMPLER = {
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.05",
}


def tracing_environment(state_dir: Path) -> dict[str, str]:
    """Where every process writes its recent spans for the console (`plumbing.trace_spool`),
    and a sampler unless the environment names one; the standard `OTEL_*` variables of the
    environment still apply (an OTLP endpoint, `OTEL_SDK_DISABLED=true`)."""
    sampler = {} if "OTEL_TRACES_SAMPLER" in os.environ else DEFAULT_SAMPLER
    return {"STRANGLER_TRACES_DIR": str(state_dir / TRACES_FOLDER), **sampler}


def sync_command(context: str) -> list[str]:
    """The data path's sync of one context (see docs/data-path.md)."""
    return [sys.executable, "-m", "strangler.datapath.sync", context]


def sync_environment(
    workspace: Workspace, monolith_url: str, service_url: str, port: int | None = None
) -> dict[str, str]:
    """The sync reads both databases; it serves /healthz and /metrics on `port` when given."""
    env = {
        **workspace_environment(workspace),
        "SYNC_MONOLITH_DATABASE_URL": monolith_url,
        "SYNC_SERVICE_DATABASE_URL": service_url,
    }
    if port is not None:
        env["SYNC_PORT"] = str(port)
    return env


def nginx_command(part: str) -> list[str]:
    """nginx rendered from the durable state (`serve`), or its control loop (`control`):
    `strangler.gateways.nginx_control`."""
    return [sys.executable, "-m", "strangler.gateways.nginx_control", part]


def nginx_environment(
    workspace: Workspace,
    folder: Path,
    state_path: Path,
    upstreams: Mapping[str, str],
    proxy_url: str,
    public_port: int,
    control_port: int,
) -> dict[str, str]:
    """What both parts of the nginx plane read: its folder, the state, the upstreams (the
    monolith's and every service's), the Python proxy behind it and the public port."""
    return {
        **workspace_environment(workspace),
        "STRANGLER_PLANE_FOLDER": str(folder),
        "STRANGLER_PLANE_STATE_PATH": str(state_path),
        "STRANGLER_PLANE_UPSTREAMS": json.dumps(dict(upstreams)),
        "STRANGLER_PLANE_PROXY_URL": proxy_url,
        "STRANGLER_PLANE_CONTROL_PORT": str(control_port),
        "STRANGLER_GATEWAY_LISTEN_PORT": str(public_port),
    }
