"""The migration's durable state: one record, `.strangler/migration.json`, written atomically.

It holds everything a crash must not forget: the stage last reached; the move under way, the
gates it passed (and the one it started) and what it needs running; the route table in force
(every route's mode, canary percentage and data owner); per context, who owns its data and any
write freeze as a lease with an expiry; the history and the freeze windows. Two kinds of
process write it, each its own sections, always through `StateFile.update`: migration commands
(the stage, the move, the history) and the proxy (the routes, the owners, the leases). An update
holds an exclusive lock, reads the record, changes it, checks its invariants, and replaces the
file with a new one that is fsynced (and its folder too) before `update` returns: a step is
reported done only once it is on disk. The invariant that matters most: a context's writes go
to the side that owns its data, always. This module must never start a process, open a
database or send a request.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from strangler.plumbing.durable import replace_durably

Owner = Literal["monolith", "service"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class StateError(ValueError):
    """A record that cannot be used, or a change that would break an invariant."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Lease(BaseModel):
    """A write freeze of one context, held by a command that renews it while it lives: past
    `expires_at` (or `max_until`, renewed or not) the freeze is over, whoever asked for it."""

    id: str
    holder: str
    reason: str
    started_at: float  # epoch seconds
    expires_at: float
    max_until: float
    seconds: float  # how long a renewal extends it

    def is_live(self, at: float | None = None) -> bool:
        moment = time.time() if at is None else at
        return moment < min(self.expires_at, self.max_until)


class ContextState(BaseModel):
    """One context: who owns its data (and so takes its writes), and its freeze, if any."""

    owner: Owner = "monolith"
    freeze: Lease | None = None


class Moving(BaseModel):
    """A move under way from one stage to the next (or back)."""

    from_stage: int
    to_stage: int
    started_at: str
    passed: list[str] = []
    started: str | None = None  # the gate begun and not yet passed, if any
    # For a move back: the gates of the move it undoes, in the order they were passed.
    undoing: list[str] = []
    # What the move needs running, unlike its from-stage (None: as the from-stage says).
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
    """A cutover or rollback of a context: from before it asked for a write freeze until after
    the thaw (a write outside this span was never held back), and how long the freeze itself
    lasted by the proxy's clock."""

    context: str
    started_at: str
    ended_at: str | None = None
    frozen_seconds: float | None = None


class MigrationState(BaseModel):
    """The whole record."""

    revision: int = 0
    stage: int = 0
    moving: Moving | None = None
    contexts: dict[str, ContextState] = {}
    routes: dict[str, Any] | None = None  # the route table in force, as a document
    routes_version: int = 0
    history: list[Event] = []
    freezes: list[FreezeWindow] = []
    # What a context is extracted as when a command chose other than the workspace file says
    # (`strangler extract NAME --target serverless`): read with the file by every process.
    targets: dict[str, Literal["service", "serverless"]] = {}

    def record(self, what: str) -> None:
        self.history.append(Event(at=now(), what=what, stage=self.stage))

    def context(self, name: str) -> ContextState:
        return self.contexts.setdefault(name, ContextState())

    def owner_of(self, name: str) -> Owner:
        found = self.contexts.get(name)
        return found.owner if found is not None else "monolith"

    def live_lease(self, name: str, at: float | None = None) -> Lease | None:
        found = self.contexts.get(name)
        if found is None or found.freeze is None or not found.freeze.is_live(at):
            return None
        return found.freeze


def write_owners(routes: dict[str, Any]) -> dict[str, set[str]]:
    """Per context, the sides its write routes send writes to (a route's `data_owner`, else
    the service once it serves alone)."""
    found: dict[str, set[str]] = {}
    for route in routes.get("routes", []):
        methods = set(route.get("methods", []))
        if methods and methods <= SAFE_METHODS:
            continue
        context = route.get("context", "monolith")
        if context == "monolith":
            continue
        mode = route.get("mode", "monolith")
        if mode == "monolith":
            side = "monolith"
        elif mode == "service":
            side = route.get("data_owner") or "service"
        else:
            side = route.get("data_owner") or "monolith"
        found.setdefault(context, set()).add(side)
    return found


def check(state: MigrationState) -> None:
    """Raise StateError when the record breaks an invariant: every write route of a context
    whose data has an owner (a context whose tables move) sends its writes to that owner."""
    if state.routes is None:
        return
    for context, sides in write_owners(state.routes).items():
        if context not in state.contexts:
            continue  # a context that owns no data (its writes, if any, are its service's)
        owner = state.owner_of(context)
        if sides != {owner}:
            raise StateError(
                f"{context}'s writes would go to the {' and the '.join(sorted(sides))}, but its"
                f" data's owner is the {owner}: a context's writes go to its owner only"
            )


class StateFile:
    """The record on disk: read it (any time, without a lock), or change it (one at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    def read(self) -> MigrationState:
        """The record; a fresh system is at stage 0 with nothing recorded."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return MigrationState()
        try:
            return MigrationState.model_validate_json(text)
        except ValidationError as error:
            raise StateError(
                f"{self.path} is not a migration state ({error.error_count()} problems): restore"
                " it from a backup, or delete the folder to start over"
            ) from error

    def stamp(self) -> tuple[int, int, float] | None:
        """What changes when the file is replaced (inode, size, mtime); None if absent."""
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (found.st_ino, found.st_size, found.st_mtime)

    def update(self, change: Callable[[MigrationState], None]) -> MigrationState:
        """Apply `change` to the current record under the lock, check the invariants, and
        store it durably with the next revision; return what was stored. If `change` or the
        check raises, nothing is written."""
        with self.locked():
            state = self.read()
            change(state)
            check(state)
            state.revision += 1
            self._write(state)
            return state

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, state: MigrationState) -> None:
        replace_durably(self.path, state.model_dump_json(indent=2))
