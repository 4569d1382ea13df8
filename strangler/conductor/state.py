"""Where the migration stands: `.strangler/migration.json`, and the topology that follows from it.

The state is the stage last reached, the transition under way (which gates it has passed, what
it needs running), the history of transitions and the write-freeze windows. Migration commands
change it under an exclusive lock, one at a time, and bump its revision; the supervisor reads
it and runs what `topology` says. Because every passed gate is written down, an interrupted
`extract` resumes where it stopped. This module must never start a process or move data.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from strangler.runtime.plan import Topology
from strangler.workspace.stages import Migration


class Busy(RuntimeError):
    """Another command is changing the migration right now."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Moving(BaseModel):
    """A transition under way from one stage to the next (or back)."""

    from_stage: int
    to_stage: int
    started_at: str
    passed: list[str] = []
    # What the transition needs running, unlike the from-stage (None: as the from-stage says).
    runs_service: bool | None = None
    runs_sync: bool | None = None
    monolith_runs: bool | None = None

    @property
    def is_forward(self) -> bool:
        return self.to_stage > self.from_stage


class Event(BaseModel):
    """One line of the migration's history."""

    at: str
    what: str
    stage: int


class FreezeWindow(BaseModel):
    """A cutover or rollback of a context: from before it asked the proxy to freeze the
    context's writes until after the thaw (a write outside this span was never held back), and
    how long the freeze itself lasted by the proxy's clock."""

    context: str
    started_at: str
    ended_at: str | None = None
    frozen_seconds: float | None = None


class MigrationState(BaseModel):
    revision: int = 0
    stage: int = 0
    moving: Moving | None = None
    history: list[Event] = []
    freezes: list[FreezeWindow] = []

    def moving_context(self, migration: Migration) -> str | None:
        """The context the transition under way extracts or returns, if any."""
        if self.moving is None:
            return None
        later = max(self.moving.from_stage, self.moving.to_stage)
        return migration.stage(later).extracts

    def record(self, what: str) -> None:
        self.history.append(Event(at=now(), what=what, stage=self.stage))


def topology(migration: Migration, state: MigrationState) -> Topology:
    """What runs at this point: the stage's processes, adjusted by the transition under way."""
    stage = migration.stage(state.stage)
    services = set(stage.services)
    syncs = set(stage.services_own)
    monolith_runs = stage.monolith_serves
    moving = state.moving
    context = state.moving_context(migration)
    if moving is not None and context is not None:
        for wanted, running in ((moving.runs_service, services), (moving.runs_sync, syncs)):
            if wanted is not None:
                (running.add if wanted else running.discard)(context)
    if moving is not None and moving.monolith_runs is not None:
        monolith_runs = moving.monolith_runs
    return Topology(
        services=tuple(c for c in migration.contexts if c in services),
        monolith_runs=monolith_runs,
        syncs=tuple(c for c in migration.contexts if c in syncs),
    )


def read_state(path: Path) -> MigrationState:
    """The recorded state; a fresh home is at stage 0."""
    try:
        return MigrationState.model_validate_json(path.read_text())
    except FileNotFoundError:
        return MigrationState()
    except ValidationError as error:
        raise ValueError(
            f"{path} is not a migration state ({error.error_count()} problems)"
        ) from error


def write_state(path: Path, state: MigrationState) -> MigrationState:
    """Save `state` with the next revision (atomically); return what was saved."""
    state.revision += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(state.model_dump_json(indent=2))
    partial.replace(path)
    return state


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold the migration's lock, or raise Busy naming who holds it."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise Busy(f"another strangler command ({holder}) is changing the migration") from error
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
