"""Start, measure and stop a whole system from Python: the API behind `strangler up`, the demo
and the load comparison.

    from pathlib import Path
    from strangler.plan import Budget
    from strangler.system import prepare, start
    from strangler.home import Home

    home = Home(Path("/tmp/compare/.strangler"))   # its databases, logs, secrets
    prepare(home, stage=2, scale=0.2)    # migrate, seed once, bring the data to stage 2
    with start(home, stage=2, budget=Budget(monolith_workers=2, service_workers=1)) as system:
        system.url                   # the public entry: the proxy (the monolith with direct=True)
        system.pids()                # {"proxy": 123, "monolith": 124, "users": 125, ...}
        system.process_tree_pids()   # the same plus every server's workers: sum CPU and memory
    # leaving the block stops every process; no port stays bound

`start(..., direct=True)` runs the monolith alone on the public port (stage 0, no proxy): the
"before" architecture. `prepare` does its work without traffic, so it needs no running system;
it is what the first `strangler up --stage N` of a fresh folder does too. Databases come from
the home (`<NAME>_DATABASE_URL`, `STRANGLER_BUS_URL`, else SQLite files in it). This module
must never decide what a stage contains (that is `stages` and `plan`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import TracebackType

import psutil

from strangler.datapath import schemas
from strangler.plumbing.database import make_engine
from strangler.runtime.home import Home
from strangler.runtime.plan import Budget, Topology
from strangler.runtime.processes import free_port
from strangler.runtime.run_record import RunRecord
from strangler.runtime.supervisor import Desired, Supervisor
from strangler.runtime.topology import stage_topology, topology
from strangler.state import ContextState, MigrationState, StateFile
from strangler.workspace.hooks import SeedReport
from strangler.workspace.stages import Migration
from strangler_proxy.table import table_document

SeedProgress = Callable[[str, int, int], None]


@dataclass
class RunningSystem:
    """A started system: where to send requests, which processes to measure, how to stop it."""

    url: str
    stage: int
    supervisor: Supervisor

    def pids(self) -> dict[str, int]:
        """Each supervised process by name (for servers, the master process)."""
        return self.supervisor.pids

    def process_tree_pids(self) -> list[int]:
        """Every process of the system, the servers' worker processes included."""
        found: list[int] = []
        for pid in self.pids().values():
            found.append(pid)
            try:
                found.extend(child.pid for child in psutil.Process(pid).children(recursive=True))
            except psutil.NoSuchProcess:
                continue
        return found

    def stop(self) -> None:
        self.supervisor.stop_all()

    def __enter__(self) -> RunningSystem:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def seed_if_empty(
    home: Home,
    scale: float = 1.0,
    seed_value: int = 42,
    progress: SeedProgress | None = None,
) -> SeedReport | None:
    """Migrate the monolith's database, then run the workspace's seed hook (`monolith.seed` of
    its strangler.toml), which seeds an empty database and returns None for one with data."""
    database_url = home.database_url("monolith")
    workspace = home.workspace
    if workspace.alembic_folder("monolith") is not None:
        schemas.upgrade("monolith", database_url, workspace=workspace)
    hook = workspace.spec.monolith.seed
    if hook is None:
        return None
    engine = make_engine(database_url)
    try:
        report: SeedReport | None = workspace.resolve(hook)(engine, scale, seed_value, progress)
        return report
    finally:
        engine.dispose()


def initialize_state(home: Home) -> MigrationState:
    """Make the durable state hold what the proxy serves from before anything starts: the
    route table of the stage it is at, and the owner of every context whose data moves (the
    service for those its stage has moved). A state that holds them already is left as it is."""
    migration = home.workspace.migration()

    def initialize(state: MigrationState) -> None:
        stage = migration.stage(state.stage)
        for context, spec in migration.contexts.items():
            if spec.moves_data and context not in state.contexts:
                moved = context in stage.services_own
                state.contexts[context] = ContextState(owner="service" if moved else "monolith")
        if state.routes is None:
            state.routes = table_document(stage.table)
            state.routes_version += 1

    state = StateFile(home.state_file)
    current = state.read()
    if current.routes is not None and all(
        context in current.contexts
        for context, spec in migration.contexts.items()
        if spec.moves_data
    ):
        return current
    return state.update(initialize)


def following_state(home: Home, migration: Migration) -> Desired:
    """What a supervisor should run: whatever the home's migration state says, now."""
    state = StateFile(home.state_file)

    def desired() -> tuple[int, int, Topology]:
        current = state.read()
        return current.revision, current.stage, topology(migration, current)

    return desired


def supervise(
    home: Home,
    port: int,
    budget: Budget = Budget(),
    notify: Callable[[str], None] = lambda message: None,
    adopt: RunRecord | None = None,
    data_plane: str = "python",
    console: bool = True,
) -> Supervisor:
    """A supervisor that follows the home's migration state (what `strangler up` runs),
    adopting the processes of `adopt` (a dead supervisor's record) that still fit; with
    `data_plane="nginx"`, nginx serves the public port in front of the Python proxy; without
    `console`, no console runs beside the proxy."""
    initialize_state(home)
    places = replace(home.places(data_plane), console=console)
    return Supervisor(
        places,
        home.run_file,
        home.logs,
        port,
        following_state(home, home.workspace.migration()),
        budget,
        front=places.front,
        notify=notify,
        adopt=adopt,
    )


@contextmanager
def in_background(
    home: Home,
    budget: Budget = Budget(),
    port: int | None = None,
    data_plane: str = "python",
    console: bool = True,
) -> Iterator[Supervisor]:
    """Run the home's system, following its migration state from a thread of this
    process, until the block ends; then stop every process."""
    supervisor = supervise(
        home, port or free_port(), budget, data_plane=data_plane, console=console
    )
    try:
        supervisor.settle()
        with _supervised_from_a_thread(supervisor):
            yield supervisor
    finally:
        supervisor.stop_all()


@contextmanager
def following_the_migration(system: RunningSystem, home: Home) -> Iterator[Supervisor]:
    """Let a started system follow the home's migration state until the block ends, so a move
    can run in place (the services it needs start, those it retires stop); its processes keep
    running afterwards, and stopping them stays the caller's."""
    system.supervisor.desired = following_state(home, home.workspace.migration())
    with _supervised_from_a_thread(system.supervisor):
        yield system.supervisor


@contextmanager
def _supervised_from_a_thread(supervisor: Supervisor) -> Iterator[None]:
    stopping = threading.Event()
    thread = threading.Thread(target=supervisor.run, args=(stopping.is_set,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join(timeout=30)


def start(
    home: Home,
    stage: int = 0,
    budget: Budget = Budget(),
    port: int | None = None,
    direct: bool = False,
    timeout: float = 120.0,
    console: bool = True,
) -> RunningSystem:
    """Start every process of `stage` and wait until all are healthy; the home's data
    must be at that stage (`strangler.conductor.prepare`), except for the monolith alone
    (`direct`). Without `console`, no console runs beside the proxy (a system measured
    process by process must not count it)."""
    migration = home.workspace.migration()
    state = initialize_state(home)
    if not direct and (state.stage != stage or state.moving is not None):
        raise ValueError(
            f"the system's data is at stage {state.stage}, not {stage}: prepare it first"
        )
    topology = stage_topology(migration, stage, direct)
    public_port = port or free_port()
    supervisor = Supervisor(
        replace(home.places(), console=console),
        home.run_file,
        home.logs,
        public_port,
        desired=lambda: (0, stage, topology),
        budget=budget,
        front="monolith" if direct else "proxy",
    )
    try:
        supervisor.settle(timeout)
    except BaseException:
        supervisor.stop_all()
        raise
    return RunningSystem(supervisor.public_url, stage, supervisor)
