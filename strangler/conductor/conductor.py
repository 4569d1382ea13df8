"""The conductor: what one migration command holds while it moves a running system.

It holds the home (the folder, its workspace and its databases), the stages, the gate
settings, its collaborators (the runtime that runs the processes, the proxy's admin API) and
the durable state. Every change of the move is written to the state before it is reported:
the move begun, the gate started, the gate passed, the processes it needs, the stage reached.
Asking for processes is writing the state and waiting until the supervisor runs them, all
healthy. This module must never decide the order of gates nor do a gate's work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strangler.conductor import faults
from strangler.conductor.events import Event, Listener, Step, ignore
from strangler.conductor.gates.base import Gate, GateFailed
from strangler.conductor.ports import Runtime
from strangler.conductor.settings import GateSettings
from strangler.datapath.link import Link
from strangler.runtime.home import Home
from strangler.runtime.launch import context_environment
from strangler.runtime.supervised import Supervised, SystemGone
from strangler.serverless.data.link import ItemsLink
from strangler.serverless.emulator import EMULATOR
from strangler.state import MigrationState, Moving, StateFile, now
from strangler.workspace.stages import Migration
from strangler_proxy.client import ProxyAdmin

RUNNING = ("runs_service", "runs_sync", "monolith_runs")


@dataclass
class Conductor:
    """One migration command's view of the running system, and its hands on it."""

    home: Home
    migration: Migration
    runtime: Runtime
    settings: GateSettings
    listen: Listener = ignore
    # Collaborators a logic test may stand in for (None: the real ones).
    data_plane: Callable[[], ProxyAdmin] | None = None
    gates: Callable[[Conductor, int], list[Gate]] | None = None  # the gates into a stage

    def __post_init__(self) -> None:
        self.file = StateFile(self.home.state_file)
        self.state = self.file.read()
        self.migration = self.migration.retargeted(self.state.targets)

    @classmethod
    def attach(
        cls, home: Home, listen: Listener = ignore, settings: GateSettings | None = None
    ) -> Conductor:
        """The conductor of the system this folder runs (NotRunning if none is)."""
        return cls(
            home, home.workspace.migration(), Supervised.attach(home),
            settings or GateSettings(), listen,
        )  # fmt: skip

    # Where things are.

    @property
    def url(self) -> str:
        return self.runtime.public_url

    def admin(self) -> ProxyAdmin:
        if self.data_plane is not None:
            return self.data_plane()
        return ProxyAdmin(self.runtime.admin_url, self.home.admin_token())

    def link(self, context: str) -> Link:
        workspace = self.home.workspace
        return Link.open(
            context,
            self.home.database_url("monolith"),
            self.home.database_url(context),
            context_environment(workspace, context, self.home.root),
            workspace,
        )

    def items_link(self, context: str) -> ItemsLink:
        """The data path of a context extracted to functions: the monolith and its items, on
        the emulator the system runs (which must be running)."""
        return ItemsLink.open(
            self.home.workspace,
            context,
            self.home.database_url("monolith"),
            self.runtime.url_of(EMULATOR),
        )

    def say(self, text: str) -> None:
        """A step inside a gate; also a point where a fault test may stop this process."""
        self.emit(Step(text))
        faults.checkpoint(self.home.root, f"step:{text}")

    def emit(self, event: Event) -> None:
        self.listen(event)

    # The durable state.

    def update(self, change: Callable[[MigrationState], Any]) -> MigrationState:
        """Change the state durably (the proxy's sections stay as the proxy wrote them)."""
        self.state = self.file.update(change)
        return self.state

    def refresh(self) -> MigrationState:
        self.state = self.file.read()
        return self.state

    def begin(self, from_stage: int, to_stage: int, undoing: list[str] | None = None) -> Moving:
        """The move under way: resumed if it is this one, else started now (a move back
        from a half-done move forward keeps what that move had running, for its gates to
        stop)."""
        moving = self.refresh().moving
        if moving is not None and (moving.from_stage, moving.to_stage) == (from_stage, to_stage):
            return moving
        running = {} if moving is None else moving.model_dump(include=set(RUNNING))

        def start(state: MigrationState) -> None:
            state.moving = Moving(
                from_stage=from_stage, to_stage=to_stage, started_at=now(),
                undoing=undoing or [], **running,
            )  # fmt: skip
            state.record(f"began stage {from_stage} -> {to_stage}")

        moving = self.update(start).moving
        assert moving is not None
        return moving

    def gate_started(self, gate: str) -> None:
        def start(state: MigrationState) -> None:
            assert state.moving is not None
            state.moving.started = gate

        self.update(start)
        faults.checkpoint(self.home.root, f"started:{gate}")

    def gate_passed(self, gate: str) -> None:
        def passed(state: MigrationState) -> None:
            assert state.moving is not None
            state.moving.passed.append(gate)
            state.moving.started = None

        self.update(passed)
        faults.checkpoint(self.home.root, f"passed:{gate}")

    def need(self, **running: bool) -> None:
        """Ask the supervisor for processes (`runs_service=True`, `runs_sync=False`,
        `monolith_runs=...`) and wait until it runs them, all healthy."""

        def ask(state: MigrationState) -> None:
            assert state.moving is not None
            for name, value in running.items():
                setattr(state.moving, name, value)

        self.settle(self.update(ask).revision)

    def settle(self, revision: int | None = None) -> None:
        """Wait until the supervisor applied the state and every process is healthy."""
        try:
            self.runtime.settle(revision or self.state.revision, self.settings.timeout_seconds)
        except SystemGone as error:
            raise GateFailed(
                str(error), "read the processes' logs, fix the cause, and run the same command"
            ) from error

    def through_proxy(self, context: str) -> None:
        """Wait until every request for `context` reaches the Python proxy, where its freeze
        holds: at once when the proxy is in front; under nginx, until nginx applied a state
        revision that has `context` under migration (its move is recorded, so any later
        revision has it too until the move is done)."""
        state = self.refresh()
        moving = state.moving
        extracts = None
        if moving is not None:
            extracts = self.migration.stage(max(moving.from_stage, moving.to_stage)).extracts
        if extracts != context:
            raise GateFailed(
                f"no move of {context} is recorded, so nothing sends it through the Python proxy",
                f"run `strangler extract {context}` or `strangler rollback {context}`",
            )
        try:
            self.runtime.await_plane(state.revision, self.settings.plane_timeout_seconds)
        except SystemGone as error:
            raise GateFailed(
                f"{error}; {context}'s writes were not frozen",
                "read the nginx-control log, fix the cause, and run the same command again",
            ) from error

    def serve_table(self, stage: int) -> str:
        """Make stage `stage`'s route table the one the proxy serves (and records)."""
        with self.admin() as admin:
            version = admin.replace_table(
                self.migration.stage(stage).table_text(), f"stage {stage}"
            )
        return f"table version {version}"

    def finish(self, stage: int) -> None:
        """The move is complete: the system is at `stage`, its table served."""
        self.serve_table(stage)

        def reached(state: MigrationState) -> None:
            state.stage = stage
            state.moving = None
            state.record(f"reached stage {stage}")

        self.settle(self.update(reached).revision)
