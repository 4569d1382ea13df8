"""The conductor: what every migration command shares while it moves a running system.

It holds the home, the stages, the running system's record (found through `run.json`),
the proxy's admin API, the migration state and the gate settings. Changing what must run is
writing the state and waiting until the supervisor (`strangler up`, in another terminal or a
thread of the demo) has started it and every process is healthy. This module must never move
data or decide the order of gates (that is `moves`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from strangler.conductor.gates import GateFailed
from strangler.conductor.state import MigrationState, Moving, now, read_state, write_state
from strangler.datapath.link import Link
from strangler.runtime.home import Home
from strangler.runtime.launch import context_environment
from strangler.runtime.runstate import RunRecord, read_run, supervisor_alive
from strangler.runtime.supervisor import unhealthy_report
from strangler.workspace.stages import Migration
from strangler_proxy.client import ProxyAdmin

RUNNING = {"runs_service", "runs_sync", "monolith_runs"}


# The demo and the load comparison judge latency loosely: they run on whatever laptop they are
# shown on, and a p95 of a few reads on a busy machine says more about the machine than about
# the service. Errors, differences and lost writes are judged as strictly as ever.
LOOSE_P95_RATIO = 10.0


class NotRunning(RuntimeError):
    """Migration commands need the system running (`strangler up`)."""


class GateSettings(BaseSettings):
    """How strict the gates are; `STRANGLER_GATE_*` variables (or a `.env`) change them."""

    model_config = SettingsConfigDict(env_prefix="STRANGLER_GATE_", env_file=".env", extra="ignore")

    timeout_seconds: Annotated[float, Field(gt=0)] = 120.0  # processes to start, a sync to catch up
    traffic_timeout_seconds: Annotated[float, Field(gt=0)] = 120.0  # shadow, canary: enough reads
    max_sync_lag: Annotated[int, Field(ge=0)] = 100  # changes behind, to call the sync caught up
    shadow_min_compared: Annotated[int, Field(ge=1)] = 40  # reads compared across the routes
    max_mismatch_rate: Annotated[float, Field(ge=0, le=1)] = 0.02
    canary_steps: list[float] = [10, 50, 100]
    canary_min_requests: Annotated[int, Field(ge=1)] = 5  # service reads per route per step
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_p95_ratio: Annotated[float, Field(gt=0)] = 3.0  # generous: a shared laptop is noisy
    max_freeze_seconds: Annotated[float, Field(gt=0)] = 30.0
    probes: bool = True  # send sample reads through the proxy for shadow and canary


@dataclass
class Conductor:
    """One migration command's view of the running system, and its hands on it."""

    home: Home
    migration: Migration
    record: RunRecord
    settings: GateSettings
    say: Callable[[str], None]
    state: MigrationState = field(default_factory=MigrationState)

    @classmethod
    def attach(
        cls,
        home: Home,
        migration: Migration,
        say: Callable[[str], None],
        settings: GateSettings | None = None,
    ) -> Conductor:
        """The conductor of the system this folder runs, or NotRunning."""
        record = read_run(home.run_file)
        if record is None or not supervisor_alive(record):
            raise NotRunning(
                "nothing is running from this folder: start it with `strangler up` "
                "(in another terminal), then run this again"
            )
        conductor = cls(home, migration, record, settings or GateSettings(), say)
        conductor.state = read_state(home.state_file)
        return conductor

    @property
    def url(self) -> str:
        return self.record.public_url

    def admin(self) -> ProxyAdmin:
        return ProxyAdmin(self.url, self.home.admin_token())

    def link(self, context: str) -> Link:
        return Link.open(
            context,
            self.home.database_url("monolith"),
            self.home.database_url(context),
            context_environment(self.home.workspace, context, self.home.root),
            self.home.workspace,
        )

    def save(self) -> None:
        write_state(self.home.state_file, self.state)

    def begin(self, from_stage: int, to_stage: int) -> Moving:
        """The transition under way: resumed if it is this one, else started now. Turning
        back half-way keeps whatever the abandoned move had running until a gate stops it."""
        moving = self.state.moving
        if moving is not None and (moving.from_stage, moving.to_stage) == (from_stage, to_stage):
            return moving
        running = {} if moving is None else moving.model_dump(include=RUNNING)
        self.state.moving = Moving(
            from_stage=from_stage, to_stage=to_stage, started_at=now(), **running
        )
        self.state.record(f"began stage {from_stage} -> {to_stage}")
        self.save()
        return self.state.moving

    def mark_passed(self, gate: str) -> None:
        assert self.state.moving is not None
        self.state.moving.passed.append(gate)
        self.save()

    def need(self, **running: Any) -> None:
        """Ask the supervisor for processes (`runs_service=True`, `runs_sync=False`,
        `monolith_runs=...`) and wait until it runs them, all healthy."""
        assert self.state.moving is not None
        for name, value in running.items():
            setattr(self.state.moving, name, value)
        self.save()
        self.settle()

    def settle(self) -> RunRecord:
        """Wait until the supervisor applied the saved state and every process is healthy."""
        deadline = time.monotonic() + self.settings.timeout_seconds
        while True:
            record = read_run(self.home.run_file)
            if record is None or not supervisor_alive(record):
                raise GateFailed("the supervisor stopped", "start it again with `strangler up`")
            if record.applied_revision >= self.state.revision and record.is_settled:
                self.record = record
                return record
            if time.monotonic() > deadline:
                raise GateFailed(
                    f"processes did not become healthy: {unhealthy_report(record)}",
                    "read their logs, fix the cause, and run the same command again",
                )
            time.sleep(0.2)

    def serve_table(self, stage: int) -> str:
        """Make stage `stage`'s route table the proxy's: the home copy, then a reload."""
        self.home.write_route_table(self.migration.stage(stage).table_text())
        with self.admin() as admin:
            admin.reload(f"stage {stage}")
            version = admin.routes()["version"]
        return f"table version {version}"

    def finish(self, stage: int) -> None:
        """The transition is complete: the system is at `stage` (its table is now the proxy's)."""
        self.serve_table(stage)
        self.state.stage = stage
        self.state.moving = None
        self.state.record(f"reached stage {stage}")
        self.save()
        self.settle()
