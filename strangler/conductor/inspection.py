"""What a running system looks like right now, gathered from where each fact lives.

Routes, modes, canary percentages and data owners come from the proxy's admin API (the table
in force, not the file); shadow mismatch rates from its comparisons; health from each process's
own `/healthz` (or metrics endpoint); lags from the syncs', relays' and consumers' `/metrics`;
data ownership, any move under way and the sync lag from the data path itself (its state row
and change logs); the stage and the transition under way from the migration state. `status`
renders it, `check` judges it. This module must never change anything it looks at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import SQLAlchemyError

from strangler.datapath.link import Link
from strangler.datapath.status import describe
from strangler.plumbing.database import make_engine
from strangler.runtime.home import Home
from strangler.runtime.processes import answers
from strangler.runtime.run_record import RunRecord, is_alive, read_run, supervisor_alive
from strangler.state import MigrationState, StateFile
from strangler.workspace.stages import Migration
from strangler_proxy.client import ProxyAdmin, ProxyAdminError

# The gauges that say how far behind a sync or an event path is.
LAG_METRICS = ("data_sync_lag_entries", "consumer_lag", "outbox_backlog")


@dataclass
class RouteView:
    name: str
    methods: list[str]
    path: str
    context: str
    mode: str
    canary_percent: float
    data_owner: str
    compared: int = 0
    mismatch_rate: float | None = None


@dataclass
class ProcessView:
    name: str
    pid: int
    port: int
    url: str
    is_running: bool
    is_healthy: bool
    restarts: int
    log: str
    lags: dict[str, float] = field(default_factory=dict)


@dataclass
class ContextView:
    context: str
    served_by: str
    data_owner: str
    sync: str
    lag_entries: int | None = None
    lag_seconds: float | None = None
    last_freeze_seconds: float | None = None  # of its last cutover or rollback
    owner: str | None = None  # the data path's record: monolith or service (None: unknown)
    operation: str = ""  # a cutover or rollback under way, at `step`
    step: str = ""
    behind: int = 0  # changes not yet applied, over every feed of the context


@dataclass
class SystemView:
    stage: int
    title: str
    state: MigrationState
    url: str | None = None
    is_running: bool = False
    data_plane: str = "python"  # who serves the public port (docs/proxy.md)
    table_version: int | None = None
    unmatched: str | None = None
    routes: list[RouteView] = field(default_factory=list)
    processes: list[ProcessView] = field(default_factory=list)
    contexts: list[ContextView] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def process(self, name: str) -> ProcessView | None:
        return next((process for process in self.processes if process.name == name), None)


def inspect(home: Home, migration: Migration) -> SystemView:
    """Everything `status` shows, gathered once."""
    state = StateFile(home.state_file).read()
    stage = migration.stage(state.stage)
    view = SystemView(stage.number, stage.title, state)
    record = read_run(home.run_file)
    if record is None or not supervisor_alive(record):
        view.problems.append("nothing is running from this folder (`strangler up` starts it)")
        view.contexts = _contexts(view, migration, home)
        return view
    view.url, view.is_running, view.data_plane = record.public_url, True, record.data_plane
    with httpx.Client(timeout=2.0) as client:
        view.processes = [_process(client, record, name) for name in record.processes]
    _routes(view, record, home.admin_token())
    view.contexts = _contexts(view, migration, home)
    return view


def _process(client: httpx.Client, record: RunRecord, name: str) -> ProcessView:
    recorded = record.processes[name]
    running = is_alive(recorded.pid, recorded.started_at)
    view = ProcessView(
        name, recorded.pid, recorded.port, recorded.url, running, False, recorded.restarts,
        recorded.log,
    )  # fmt: skip
    if not running:
        return view
    if recorded.health_url.startswith("tcp://"):  # an app with no health path
        view.is_healthy = answers(recorded.health_url, client)
        return view
    try:
        answer = client.get(recorded.health_url)
        view.is_healthy = answer.status_code == 200
        if recorded.health_url.endswith("/metrics") and view.is_healthy:
            view.lags = lags_in(answer.text)
    except httpx.HTTPError:
        view.is_healthy = False
    if name.endswith("-sync") and view.is_healthy:
        try:
            view.lags = lags_in(client.get(recorded.url + "/metrics").text)
        except httpx.HTTPError:
            view.lags = {}
    return view


def lags_in(exposition: str) -> dict[str, float]:
    """The lag gauges in a Prometheus exposition, summed per metric name."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name in LAG_METRICS and family.samples:
            found[family.name] = sum(sample.value for sample in family.samples)
    return found


def _routes(view: SystemView, record: RunRecord, admin_token: str) -> None:
    try:
        with ProxyAdmin(record.admin_url, admin_token) as admin:
            table = admin.routes()
            shadow = admin.shadow()
    except ProxyAdminError as error:
        view.problems.append(f"the proxy did not describe its routes: {error}")
        return
    view.table_version = table["version"]
    view.unmatched = table["table"].get("unmatched", "monolith")
    for route in table["table"]["routes"]:
        mode = route.get("mode", "monolith")
        owner = route.get("data_owner") or ("service" if mode == "service" else "monolith")
        compared = shadow.get(route["name"], {})
        view.routes.append(
            RouteView(
                route["name"],
                route["methods"],
                route["path"],
                route.get("context", "monolith"),
                mode,
                float(route.get("canary_percent", 0)),
                owner,
                int(compared.get("compared", 0)),
                compared.get("mismatch_rate") if compared.get("compared") else None,
            )
        )


def _contexts(view: SystemView, migration: Migration, home: Home) -> list[ContextView]:
    migration = migration.retargeted(view.state.targets)
    found = []
    for context, spec in migration.contexts.items():
        routes = [route for route in view.routes if route.context == context]
        served = " + ".join(sorted({_served(route) for route in routes})) or "-"
        if not spec.moves_data:
            found.append(ContextView(context, served, "(its own index)", "-"))
            continue
        if context in migration.serverless:
            found.append(_items_of(context, served, home))
            continue
        found.append(_data_of(context, served, home))
    return found


def _items_of(context: str, served: str, home: Home) -> ContextView:
    """Owner, feed and lag of a context extracted to functions: its state row in the monolith,
    its forward feed's position among the items, its reverse feed's in the monolith."""
    from strangler.datapath import state as data_state
    from strangler.serverless.data import forward, reverse
    from strangler.serverless.data.link import ItemsLink
    from strangler.serverless.emulator import EMULATOR

    record = read_run(home.run_file)
    monolith = home.database_url("monolith")
    engine = make_engine(monolith)
    try:
        now = data_state.read(engine, context)
    except SQLAlchemyError as error:
        return ContextView(context, served, "unknown", f"database error: {error}".splitlines()[0])
    finally:
        engine.dispose()
    shown = now.owner.value + (f" ({now.operation}: {now.step})" if now.operation else "")
    found = ContextView(
        context, served, shown, "-", last_freeze_seconds=now.last_freeze_seconds,
        owner=now.owner.value, operation=now.operation, step=now.step,
    )  # fmt: skip
    if record is None or EMULATOR not in record.ports:
        return found  # the items are only readable while the emulator runs
    try:
        with ItemsLink.open(home.workspace, context, monolith, record.url_of(EMULATOR)) as link:
            stored = forward.read_position(link)
            if stored is not None and stored.position.is_active:
                lag = forward.lag(link)
                if lag is not None:
                    found.sync, found.lag_entries = "forward", lag.entries
                    found.lag_seconds, found.behind = round(lag.seconds, 3), lag.entries
            elif reverse.is_active(link):
                waiting = reverse.lag(link)
                found.sync, found.lag_entries = "reverse", waiting.records
                found.lag_seconds, found.behind = round(waiting.seconds, 3), waiting.records
    except Exception as error:  # an emulator or a database away: shown, not raised
        found.sync = f"unknown: {type(error).__name__}"
    return found


def _data_of(context: str, served: str, home: Home) -> ContextView:
    """Owner, sync direction and lag of a context, from the data path's own records."""
    try:
        with Link.open(
            context, home.database_url("monolith"), home.database_url(context),
            workspace=home.workspace,
        ) as link:
            described = describe(link)
    except SQLAlchemyError as error:
        return ContextView(context, served, "unknown", f"database error: {error}".splitlines()[0])
    state = described.state
    shown = state.owner.value + (f" ({state.operation}: {state.step})" if state.operation else "")
    found = ContextView(
        context,
        served,
        shown,
        "-",
        last_freeze_seconds=state.last_freeze_seconds,
        owner=state.owner.value,
        operation=state.operation,
        step=state.step,
        behind=sum(lag.entries for lag in described.lags.values()),
    )
    if described.capturing:
        found.sync = "reverse" if state.owner.value == "service" else "forward"
        main = [lag for name, lag in described.lags.items() if name.startswith(context)]
        if main:
            found.lag_entries, found.lag_seconds = main[0].entries, round(main[0].seconds, 3)
    return found


def _served(route: RouteView) -> str:
    if route.mode == "canary":
        return f"canary {route.canary_percent:g}%"
    return route.mode


def as_document(view: SystemView) -> dict[str, Any]:
    """The view as JSON-able data (`strangler status --json`)."""
    document = asdict(view)
    document["state"] = view.state.model_dump(mode="json")
    return document
