"""What runs for a given state of the migration: one `ProcessSpec` per process.

A `Topology` says which services run, whether the monolith does, and which change feeds move
data; `plan` turns it into processes with their commands, environments, ports and health URLs:
the monolith under gunicorn, each service under uvicorn, the relays and consumers its events
need (read from each service's declared `Consumer`), the data path's sync for each context whose
data moves or has moved, for contexts served as functions the AWS emulator and each one's
stream poller (`strangler.serverless`), the proxy in front and the console beside it. Every
process traces into the system's trace spool when `Places.traces` is on. `strangler up`, the
`system` API and the test fixtures all start what `plan` returns, so users and tests run the
same processes.
This module must never start a process.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from prometheus_client import CollectorRegistry

from strangler.events.consumer import load_consumer
from strangler.events.runner import Consumer
from strangler.runtime.launch import (
    console_command,
    console_environment,
    consumer_command,
    context_environment,
    metrics_directory,
    monolith_command,
    monolith_environment,
    nginx_command,
    nginx_environment,
    proxy_command,
    proxy_environment,
    relay_command,
    service_command,
    service_environment,
    sync_command,
    sync_environment,
    tracing_environment,
    workspace_environment,
)
from strangler.runtime.run_record import ADMIN
from strangler.serverless.emulator import (
    EMULATOR,
    emulator_command,
    function_environment,
    serverless_of,
)
from strangler.serverless.emulator import HEALTH_PATH as EMULATOR_HEALTH_PATH
from strangler.workspace import Workspace
from strangler_proxy.table import BUCKET, FUNCTION

PROXY = "proxy"
MONOLITH = "monolith"
CONSOLE = "console"
NGINX = "nginx"
NGINX_CONTROL = "nginx-control"
DATA_PLANES = ("python", "nginx")
# The address nginx connects to the Python proxy from (both on loopback): the one front the
# proxy trusts to say who the client is, under the nginx plane only.
NGINX_SOURCE = "127.0.0.1/32"


@dataclass(frozen=True)
class RestartPolicy:
    """How long the supervisor waits before restarting a process that crashed.

    The first `immediate` crashes in a row are restarted at once; after those the pause is
    `first`, doubling with each further crash up to `longest`. A crash after a healthy spell
    (the supervisor's `STEADY_SECONDS`) counts as the first again.
    """

    immediate: int = 0
    first: float = 1.0
    longest: float = 10.0

    def pause(self, crashes: int) -> float:
        """Seconds to wait before the restart that follows `crashes` earlier crashes in a row."""
        if crashes < self.immediate:
            return 0.0
        return min(self.longest, self.first * 2.0 ** (crashes - self.immediate))


# Most processes: 1, 2, 4, 8, then 10 s between restarts, so a process that cannot start
# does not burn the machine's cores.
BACKOFF = RestartPolicy()
# nginx is a stateless front whose start costs milliseconds, and while it is down the public
# port is closed: five restarts at once, then a quarter and a half second, never more.
AT_ONCE = RestartPolicy(immediate=5, first=0.25, longest=0.5)
AWS_SIGNING = ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@dataclass(frozen=True)
class ProcessSpec:
    """One process to run: its name, command line, added environment and where it answers."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    port: int
    health_path: str | None = "/healthz"  # None: a TCP check of the port
    restart: RestartPolicy = BACKOFF

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        if self.health_path is None:
            return f"tcp://127.0.0.1:{self.port}"
        return self.url + self.health_path


@dataclass(frozen=True)
class Budget:
    """Server worker processes: the monolith's gunicorn workers, each service's uvicorn workers.

    Relays, consumers, feeds and the proxy are one process each, whatever the budget.
    """

    monolith_workers: int = 2
    service_workers: int = 1
    per_service: Mapping[str, int] = field(default_factory=dict)  # {"forum": 2}: overrides

    def workers_of(self, context: str) -> int:
        return self.per_service.get(context, self.service_workers)


@dataclass(frozen=True)
class Topology:
    """The shape of a running system at one point of the migration."""

    services: tuple[str, ...] = ()
    monolith_runs: bool = True
    # Contexts whose data the sync keeps current on the other side (forward before cutover,
    # reverse after: the sync follows the cutover by itself).
    syncs: tuple[str, ...] = ()
    has_proxy: bool = True
    # Contexts served as functions (docs/serverless.md): the AWS emulator runs, each has its
    # stream poller (which provisions its table and bucket), and the proxy knows it as its
    # function (`function:` upstream) and its pages (`bucket:` upstream `<context>-pages`).
    serverless: tuple[str, ...] = ()


@dataclass(frozen=True)
class Places:
    """Where a system keeps its state: databases, secrets, the migration state, logs and
    metrics; and the workspace whose system it is."""

    workspace: Workspace
    database_urls: Mapping[str, str]  # the monolith's, each context's, the bus's
    token_secret: str
    admin_token: str
    system_id: str
    state_dir: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    traces: bool = True  # every process writes its recent spans to `state_dir/traces`
    # The console beside the proxy: off where nobody watches (the load comparison's measured
    # systems, whose every process is counted, and the systems that only move data for it).
    console: bool = True
    # Who serves the public port: the Python proxy ("python"), or nginx in front of it, with
    # the proxy on a port of its own (docs/proxy.md, "Two data planes").
    data_plane: str = "python"

    @property
    def front(self) -> str:
        """The process that listens on the public port when the proxy runs."""
        return NGINX if self.data_plane == "nginx" else PROXY

    @property
    def bus_url(self) -> str:
        return self.database_urls["bus"]


PortOf = Callable[[str], int]


def plan(
    topology: Topology, places: Places, port_of: PortOf, budget: Budget = Budget()
) -> list[ProcessSpec]:
    """Every process of `topology`, in start order (the proxy last)."""
    specs: list[ProcessSpec] = []
    if topology.monolith_runs:
        specs.append(_monolith(places, port_of, budget))
    for context in topology.services:
        specs.append(_service(context, topology, places, port_of, budget))
    specs.extend(_event_processes(topology.services, places, port_of))
    if topology.serverless:
        specs.append(_emulator(places, port_of))  # before the syncs that write to it
    specs.extend(
        _items_sync(context, places, port_of)
        if context in topology.serverless
        else _sync(context, places, port_of)
        for context in topology.syncs
    )
    if topology.serverless:
        specs.extend(_poller(context, places, port_of) for context in topology.serverless)
    if topology.has_proxy:
        specs.append(_proxy(places, port_of, topology.serverless))
        if places.data_plane == "nginx":
            specs.extend(_nginx(places, port_of))
        if places.console:
            specs.append(_console(places, port_of))
    if not places.traces:
        return specs
    tracing = tracing_environment(places.state_dir)
    return [
        replace(spec, env={**tracing, **spec.env})
        if spec.name != CONSOLE  # its own polling every second would bury the system's traces
        else spec
        for spec in specs
    ]


def _console(places: Places, port_of: PortOf) -> ProcessSpec:
    port = port_of(CONSOLE)
    env = console_environment(places.workspace, places.state_dir, places.admin_token)
    return ProcessSpec(CONSOLE, tuple(console_command(port)), {**places.extra_env, **env}, port)


def _monolith(places: Places, port_of: PortOf, budget: Budget) -> ProcessSpec:
    port = port_of(MONOLITH)
    workspace = places.workspace
    env = monolith_environment(
        workspace, places.database_urls[MONOLITH], places.token_secret, places.state_dir
    )
    argv = monolith_command(workspace, port, budget.monolith_workers)
    health = workspace.spec.monolith.health_path
    return ProcessSpec(MONOLITH, tuple(argv), {**places.extra_env, **env}, port, health)


def _service(
    context: str, topology: Topology, places: Places, port_of: PortOf, budget: Budget
) -> ProcessSpec:
    port = port_of(context)
    workspace = places.workspace
    env = {
        **service_environment(
            workspace, context, places.database_urls[context], places.token_secret
        ),
        **context_environment(workspace, context, places.state_dir, _urls(topology, port_of)),
    }
    workers = budget.workers_of(context)
    if workers > 1:
        env.update(metrics_directory(places.state_dir / "metrics" / context))
    argv = service_command(workspace, context, port, workers=workers)
    health = workspace.contexts[context].runs.health_path
    return ProcessSpec(context, tuple(argv), {**places.extra_env, **env}, port, health)


def _urls(topology: Topology, port_of: PortOf) -> Callable[[str], str | None]:
    """The URL of each service that runs in `topology` (None for one that does not)."""

    def url_of(context: str) -> str | None:
        running = context in topology.services
        return f"http://127.0.0.1:{port_of(context)}" if running else None

    return url_of


def _event_processes(
    services: tuple[str, ...], places: Places, port_of: PortOf
) -> list[ProcessSpec]:
    """A consumer for each running service that declares one, and a relay for each running
    service whose events a running consumer reads. Their health is their metrics endpoint."""
    workspace = places.workspace
    consumers = {
        context: (path, declared_consumer(workspace, path))
        for context in services
        if (path := workspace.contexts[context].runs.consumer)
    }
    sources = sorted({source for _, consumer in consumers.values() for source in consumer.sources})
    specs = []
    for source in sources:
        if source in services:
            specs.append(
                _event_process(f"{source}-relay", relay_command(source), source, places, port_of)
            )
    for context, (path, _) in consumers.items():
        specs.append(
            _event_process(f"{context}-consumer", consumer_command(path), context, places, port_of)
        )
    return specs


def _event_process(
    name: str, argv: list[str], context: str, places: Places, port_of: PortOf
) -> ProcessSpec:
    port = port_of(name)
    prefix = context.upper()
    workspace = places.workspace
    env = {
        **workspace_environment(workspace),
        f"{prefix}_DATABASE_URL": places.database_urls[context],
        workspace.url_variable(context): places.database_urls[context],
        f"{prefix}_EVENT_METRICS_PORT": str(port),
        "STRANGLER_BUS_URL": places.bus_url,
        "STRANGLER_TOKEN_SECRET": places.token_secret,
        **context_environment(workspace, context, places.state_dir),
    }
    return ProcessSpec(name, tuple(argv), {**places.extra_env, **env}, port, "/metrics")


def sync_name(context: str) -> str:
    return f"{context}-sync"


def _sync(context: str, places: Places, port_of: PortOf) -> ProcessSpec:
    name = sync_name(context)
    port = port_of(name)
    urls = places.database_urls
    env = sync_environment(places.workspace, urls[MONOLITH], urls[context], port)
    return ProcessSpec(name, tuple(sync_command(context)), {**places.extra_env, **env}, port)


def _items_sync(context: str, places: Places, port_of: PortOf) -> ProcessSpec:
    """The sync of a context that runs as functions: the monolith's change log into its items
    before cutover, its table's stream back into the monolith's rows after."""
    name = sync_name(context)
    port = port_of(name)
    workspace = places.workspace
    env = {
        **workspace_environment(workspace),
        **function_environment(workspace, context, emulator_url(port_of)),
        "MONOLITH_DATABASE_URL": places.database_urls[MONOLITH],
        "SYNC_PORT": str(port),
    }
    argv = (sys.executable, "-m", "strangler.serverless.data.sync", context)
    return ProcessSpec(name, argv, {**places.extra_env, **env}, port)


def _emulator(places: Places, port_of: PortOf) -> ProcessSpec:
    port = port_of(EMULATOR)
    argv = tuple(emulator_command(port, writes=places.state_dir / "aws-emulator" / "writes.jsonl"))
    return ProcessSpec(EMULATOR, argv, dict(places.extra_env), port, EMULATOR_HEALTH_PATH)


def emulator_url(port_of: PortOf) -> str:
    return f"http://127.0.0.1:{port_of(EMULATOR)}"


POLLER_SUFFIX = "-stream-poller"


def poller_name(context: str) -> str:
    return f"{context}{POLLER_SUFFIX}"


def _poller(context: str, places: Places, port_of: PortOf) -> ProcessSpec:
    name = poller_name(context)
    port = port_of(name)
    workspace = places.workspace
    spec = serverless_of(workspace, context)
    env = {
        **workspace_environment(workspace),
        **function_environment(workspace, context, emulator_url(port_of)),
        "POLLER_CONTEXT": context,
        "POLLER_CHECKPOINT_PATH": str(places.state_dir / "stream-checkpoints" / f"{context}.json"),
        "POLLER_PORT": str(port),
        **({"POLLER_STREAM_HANDLER": spec.stream_handler} if spec.stream_handler else {}),
        **({"POLLER_TABLE_DEFINITION": spec.table} if spec.table else {}),
        **({"POLLER_BUCKET": spec.bucket} if spec.bucket else {}),
    }
    argv = (sys.executable, "-m", "strangler.serverless.poller")
    return ProcessSpec(name, argv, {**places.extra_env, **env}, port)


def _proxy(places: Places, port_of: PortOf, serverless: tuple[str, ...] = ()) -> ProcessSpec:
    port = port_of(PROXY)
    # Every service's address is known from the start, so any stage's table is valid.
    upstreams = {
        context: f"http://127.0.0.1:{port_of(context)}"
        for context in places.workspace.context_names
    }
    functions: dict[str, dict[str, str]] = {}
    for context in serverless:
        spec = serverless_of(places.workspace, context)
        upstreams[context] = f"{FUNCTION}{spec.handler}"
        if spec.pages is not None:
            upstreams[f"{context}-pages"] = f"{BUCKET}{spec.bucket}/{spec.pages}"
        functions[spec.handler] = function_environment(
            places.workspace, context, emulator_url(port_of)
        )
    env = proxy_environment(
        f"http://127.0.0.1:{port_of(MONOLITH)}",
        upstreams,
        places.state_dir / "migration.json",
        places.admin_token,
        places.token_secret,
        places.state_dir,
    )
    if serverless:
        env["PROXY_FUNCTION_ENV"] = json.dumps(functions)
        env["PROXY_BUCKET_ENDPOINT"] = emulator_url(port_of)
        # The proxy signs its reads of the pages with the functions' region and credentials.
        aws = next(iter(functions.values()))
        env.update({name: aws[name] for name in AWS_SIGNING if name in aws})
    env["PROXY_SYSTEM_ID"] = places.system_id
    env["PROXY_ADMIN_PORT"] = str(port_of(ADMIN))
    if places.data_plane == "nginx":
        # nginx connects from loopback and overwrites X-Forwarded-For with its peer's address:
        # the proxy believes that one, so each caller keeps its own canary side and log lines.
        env["PROXY_TRUSTED_PROXIES"] = json.dumps([NGINX_SOURCE])
    return ProcessSpec(PROXY, tuple(proxy_command(port)), {**places.extra_env, **env}, port)


def _nginx(places: Places, port_of: PortOf) -> list[ProcessSpec]:
    """nginx on the public port, rendered from the durable state at every start, and the
    control loop that re-renders and reloads it as the state changes."""
    upstreams = {
        MONOLITH: f"http://127.0.0.1:{port_of(MONOLITH)}",
        **{
            context: f"http://127.0.0.1:{port_of(context)}"
            for context in places.workspace.context_names
        },
    }
    env = nginx_environment(
        places.workspace,
        places.state_dir / NGINX,
        places.state_dir / "migration.json",
        upstreams,
        f"http://127.0.0.1:{port_of(PROXY)}",
        port_of(NGINX),
        port_of(NGINX_CONTROL),
    )
    env = {**places.extra_env, **env}
    return [
        ProcessSpec(NGINX, tuple(nginx_command("serve")), env, port_of(NGINX), restart=AT_ONCE),
        ProcessSpec(NGINX_CONTROL, tuple(nginx_command("control")), env, port_of(NGINX_CONTROL)),
    ]


@cache
def declared_consumer(workspace: Workspace, path: str) -> Consumer:
    """The `Consumer` a service's workspace entry names (read for the sources it consumes)."""
    workspace.make_importable()
    return load_consumer(path, CollectorRegistry())
