"""Real servers for tests: started on a free loopback port, healthy before use, stopped after."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from strangler.datapath.schemas import upgrade
from strangler.runtime.launch import (
    consumer_command,
    context_environment,
    monolith_command,
    monolith_environment,
    proxy_command,
    relay_command,
    service_command,
    service_environment,
    workspace_environment,
)
from strangler.runtime.plan import Places, Topology, plan
from strangler.runtime.processes import ManagedProcess, free_port, start
from strangler.workspace import find_workspace

TEST_TOKEN_SECRET = "test-signing-key-not-a-secret-0123456789"
# Cheap password hashing keeps sign-up-heavy suites fast; production defaults stay strong.
FAST_PASSWORDS = {"MONOLITH_PASSWORD_TIME_COST": "1", "MONOLITH_PASSWORD_MEMORY_KIB": "1024"}


@contextmanager
def running_monolith(database_url: str, state_dir: Path, workers: int = 2) -> Iterator[str]:
    """Migrate `database_url`, serve the monolith under gunicorn, yield its base URL."""
    upgrade("monolith", database_url)
    port = free_port()
    env = {
        **monolith_environment(find_workspace(), database_url, TEST_TOKEN_SECRET, state_dir),
        **FAST_PASSWORDS,
    }
    process: ManagedProcess = start(
        "monolith",
        monolith_command(find_workspace(), port, workers),
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
    """Migrate the service database, serve the context's service (as the workspace names it)
    under uvicorn, yield its URL."""
    upgrade(context, database_url)
    port = free_port()
    workspace = find_workspace()
    env = {
        **service_environment(workspace, context, database_url, TEST_TOKEN_SECRET),
        **context_environment(workspace, context, state_dir),
        f"{context.upper()}_PASSWORD_TIME_COST": "1",
        f"{context.upper()}_PASSWORD_MEMORY_KIB": "1024",
        **(extra_env or {}),
    }
    process = start(
        context,
        service_command(workspace, context, port),
        env,
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=state_dir / "logs" / f"{context}.log",
    )
    try:
        process.wait_healthy()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


SERVICES = ("users", "forum", "polls", "search")


@contextmanager
def running_split(backend: str, folder: Path) -> Iterator[dict[str, str]]:
    """The full split, no monolith: every service on its own fresh database, and the relays and
    consumers between them on a fresh database bus, exactly as `strangler up` runs them at the
    last stage (`strangler.runtime.plan`). Yields each context's base URL."""
    from tests.support.databases import fresh_database

    with ExitStack() as stack:
        databases = {
            name: stack.enter_context(fresh_database(backend, folder, name))
            for name in ("monolith", *SERVICES, "bus")
        }
        for context in SERVICES:
            upgrade(context, databases[context])
        places = Places(
            find_workspace(), databases, TEST_TOKEN_SECRET, "", "split", folder,
            extra_env={**FAST_PASSWORDS, "USERS_PASSWORD_TIME_COST": "1",
                       "USERS_PASSWORD_MEMORY_KIB": "1024"},
        )  # fmt: skip
        ports: dict[str, int] = {}
        topology = Topology(services=SERVICES, monolith_runs=False, has_proxy=False)
        specs = plan(topology, places, lambda name: ports.setdefault(name, free_port()))
        for spec in specs:
            process = start(spec.name, spec.argv, spec.env, spec.health_url,
                            folder / "logs" / f"{spec.name}.log")  # fmt: skip
            stack.callback(process.stop)
            process.wait_healthy()
        yield {spec.name: spec.url for spec in specs if spec.name in SERVICES}


@contextmanager
def running_events(
    databases: Mapping[str, str],
    bus_url: str,
    folder: Path,
    relays: Sequence[str],
    consumers: Sequence[str],
) -> Iterator[None]:
    """A relay for each of `relays` and a consumer for each of `consumers`, on `bus_url`, each
    reading its context's database in `databases` (and sharing its services' `folder`)."""
    workspace = find_workspace()
    bus = {"STRANGLER_BUS_URL": bus_url, "STRANGLER_TOKEN_SECRET": TEST_TOKEN_SECRET}
    consumer_of = {name: spec.service.consumer for name, spec in workspace.contexts.items()}
    with ExitStack() as stack:
        for name, context, argv in [
            *((f"{source}-relay", source, relay_command(source)) for source in relays),
            *(
                (f"{target}-consumer", target, consumer_command(str(consumer_of[target])))
                for target in consumers
            ),
        ]:
            env = {
                **bus,
                **workspace_environment(workspace),
                f"{context.upper()}_DATABASE_URL": databases[context],
                **context_environment(workspace, context, folder),
            }
            process = start(name, argv, env, log_path=folder / "logs" / f"{name}.log")
            stack.callback(process.stop)
        yield


def proxy_upstreams(upstreams: Mapping[str, str]) -> dict[str, str]:
    """The proxy's settings for `upstreams` (name -> URL, the monolith's included)."""
    services = {name: url for name, url in upstreams.items() if name != "monolith"}
    env = {"PROXY_UPSTREAMS": json.dumps(services)}
    if "monolith" in upstreams:
        env["PROXY_MONOLITH_URL"] = upstreams["monolith"]
    return env


@contextmanager
def running_proxy(
    upstreams: Mapping[str, str], state_dir: Path, table: Path | None = None, **extra_env: str
) -> Iterator[str]:
    """Serve the strangler proxy in front of `upstreams` (context name -> URL) with a route
    table file (stage 0's unless given: everything in mode monolith); yield its base URL."""
    port = free_port()
    if table is None:
        table = state_dir / "stage0-table.toml"
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text(find_workspace().migration().stage(0).table_text())
    env = {
        "PROXY_ROUTE_TABLE_PATH": str(table),
        "PROXY_AUDIT_LOG_PATH": str(state_dir / "proxy-audit.jsonl"),
        "STRANGLER_TOKEN_SECRET": TEST_TOKEN_SECRET,
        **proxy_upstreams(upstreams),
        **extra_env,
    }
    process = start(
        "proxy",
        proxy_command(port),
        env,
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=state_dir / "logs" / "proxy.log",
    )
    try:
        process.wait_healthy()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()
