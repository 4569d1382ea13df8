"""The route table in force: loading, reloading, changing and swapping it atomically.

A change builds and validates a complete new table and its `Router` first, then replaces the
current `Snapshot` with one assignment; a request in flight keeps the snapshot it started with,
so nothing is dropped. A table that fails validation is refused and the last good one keeps
serving. Every accepted or refused change is written to the audit log.

With a migration state (`strangler.state`, `PROXY_STATE_PATH`) the table in force is durable:
the proxy serves the record's routes on start, a change is written to the record (fsynced)
before it is served, and a change the record's invariants refuse is refused. A change that
moves a context's writes to the other side moves its data's owner, and is accepted only with
the id of that context's live write-freeze lease (`fence`): an owner changes only while its
writes are held. Changes others wrote to the record are picked up by `reload_if_changed`. This
module must never forward requests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strangler.state import MigrationState, StateError, StateFile, write_owners
from strangler_proxy.audit import Actor, AuditLog
from strangler_proxy.routing import Router
from strangler_proxy.table import (
    RouteTable,
    TableError,
    parse_table,
    table_document,
    validate_document,
)

EMPTY_TABLE = RouteTable()


@dataclass(frozen=True)
class Snapshot:
    """One immutable version of the table, its matcher and its resolved upstream URLs."""

    version: int
    table: RouteTable
    router: Router
    upstream_urls: dict[str, str]
    source: str


class TableStore:
    """Holds the current snapshot; the only place that replaces it."""

    def __init__(
        self,
        configured_upstreams: dict[str, str],
        audit: AuditLog,
        state: StateFile | None = None,
    ) -> None:
        self.configured_upstreams = configured_upstreams
        self.audit = audit
        self.state = state
        self.current = self._snapshot(EMPTY_TABLE, 0, "built-in: everything to the monolith")
        self._file: Path | None = None
        self._file_stamp: tuple[float, int] | None = None
        self._state_stamp: tuple[int, int, float] | None = None
        self._state_version = -1
        self.last_error: list[str] = []

    def _snapshot(self, table: RouteTable, version: int, source: str) -> Snapshot:
        urls = {**table.upstreams, **self.configured_upstreams}
        return Snapshot(version, table, Router(table), urls, source)

    def _install(
        self,
        table: RouteTable,
        source: str,
        fence: dict[str, str] | None = None,
        persist: bool = True,
    ) -> Snapshot:
        if persist and self.state is not None:
            self._persist(table, fence or {})
        self.current = self._snapshot(table, self.current.version + 1, source)
        self.last_error = []
        return self.current

    def _persist(self, table: RouteTable, fence: dict[str, str]) -> None:
        """Write `table` into the migration state, moving the owner of every context whose
        writes it sends to the other side (each only under its live lease), or raise
        TableError with what the record refused."""
        document = table_document(table)

        def change(state: MigrationState) -> None:
            for context, sides in write_owners(document).items():
                if context not in state.contexts or len(sides) != 1:
                    continue  # no owner to move (the check refuses split writes)
                side = next(iter(sides))
                if side == state.owner_of(context):
                    continue
                lease = state.live_lease(context)
                if lease is None or fence.get(context) != lease.id:
                    raise StateError(
                        f"{context}'s writes move to the {side} only with the id of its live"
                        " write-freeze lease (`fence`): an owner changes only while its writes"
                        " are held"
                    )
                state.context(context).owner = side  # type: ignore[assignment]
            state.routes = document
            state.routes_version += 1

        assert self.state is not None
        try:
            stored = self.state.update(change)
        except StateError as error:
            raise TableError([str(error)]) from error
        except OSError as error:
            raise TableError([f"the migration state could not be written: {error}"]) from error
        self._state_version = stored.routes_version
        self._state_stamp = self.state.stamp()

    def load_state(self, fallback: Path | None) -> Snapshot | None:
        """At start: serve the record's routes; a record without routes gets the table file's
        (`fallback`). None when there is no state."""
        if self.state is None:
            return None
        if fallback is not None:
            self._file = fallback
        recorded = self.state.read()
        if recorded.routes is None:
            if fallback is None:
                return None
            return self.load_file(fallback, actor="proxy", reason="startup: the state had none")
        return self._from_state(recorded, "startup")

    def _from_state(self, recorded: MigrationState, reason: str) -> Snapshot:
        assert recorded.routes is not None
        try:
            table = validate_document(recorded.routes, self.configured_upstreams)
        except TableError as error:
            self._refuse(error.problems, "proxy", "load-state", reason)
            raise
        self._state_version = recorded.routes_version
        self._state_stamp = self.state.stamp() if self.state else None
        snapshot = self._install(table, "migration state", persist=False)
        self.audit.append(
            "proxy", "load-state", reason, outcome="applied", version=snapshot.version,
            state_version=recorded.routes_version, routes=len(table.routes),
        )  # fmt: skip
        return snapshot

    def _refuse(self, problems: list[str], actor: str | Actor, action: str, reason: str) -> None:
        self.last_error = problems
        self.audit.append(actor, action, reason, outcome="refused", problems=problems)

    def load_file(
        self, path: Path, actor: str | Actor = "proxy", reason: str = "startup"
    ) -> Snapshot:
        """Load a table file; on failure the last good table stays and TableError is raised."""
        self._file = path
        try:
            stamp = os.stat(path)
            self._file_stamp = (stamp.st_mtime, stamp.st_size)
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            problems = [f"{path}: cannot be read: {error.strerror}"]
            self._refuse(problems, actor, "load-file", reason)
            raise TableError(problems) from error
        return self.replace_text(text, actor, reason, source=str(path), action="load-file")

    def replace_text(
        self,
        text: str,
        actor: str | Actor,
        reason: str,
        source: str = "admin",
        action: str = "replace",
    ) -> Snapshot:
        """Install a whole table given as TOML text, or raise TableError."""
        try:
            table = parse_table(text, source, self.configured_upstreams)
        except TableError as error:
            self._refuse(error.problems, actor, action, reason)
            raise
        before = self.current.version
        try:
            snapshot = self._install(table, source)
        except TableError as error:
            self._refuse(error.problems, actor, action, reason)
            raise
        self.audit.append(
            actor,
            action,
            reason,
            outcome="applied",
            source=source,
            version=snapshot.version,
            previous_version=before,
            routes=len(table.routes),
        )
        return snapshot

    def change_route(
        self, name: str, changes: dict[str, Any], actor: str | Actor, reason: str
    ) -> Snapshot:
        """Change fields of one route (mode, canary_percent, active, ...), validated as a whole."""
        return self.change_routes({name: changes}, actor, reason)

    def change_routes(
        self,
        changes: dict[str, dict[str, Any]],
        actor: str | Actor,
        reason: str,
        fence: dict[str, str] | None = None,
    ) -> Snapshot:
        """Change several routes in one new table version (all or none), as one audit entry."""
        table = self.current.table
        unknown = [name for name in changes if table.route(name) is None]
        if unknown:
            raise KeyError(unknown[0])
        document = table_document(table)
        before = {route["name"]: route for route in document["routes"]}
        after = {name: {**before[name], **fields} for name, fields in changes.items()}
        document["routes"] = [after.get(route["name"], route) for route in document["routes"]]
        try:
            new_table = validate_document(document, self.configured_upstreams)
        except TableError as error:
            named = (
                f"route {next(iter(changes))!r}"
                if len(changes) == 1
                else f"routes {sorted(changes)}"
            )
            problems = [f"{named}: {problem}" for problem in error.problems]
            self._refuse(problems, actor, "change-route", reason)
            raise TableError(problems) from error
        names = ", ".join(changes)
        try:
            snapshot = self._install(new_table, f"admin change of {names}", fence)
        except TableError as error:
            self._refuse(error.problems, actor, "change-route", reason)
            raise
        changed = {
            name: {
                key: {"from": before[name].get(key), "to": after[name].get(key)} for key in fields
            }
            for name, fields in changes.items()
        }
        details: dict[str, Any] = (
            {"route": next(iter(changes)), "changes": next(iter(changed.values()))}
            if len(changes) == 1
            else {"routes": changed}
        )
        self.audit.append(
            actor, "change-route", reason, outcome="applied", version=snapshot.version, **details
        )
        return snapshot

    def reload_if_changed(self) -> str:
        """Reload what changed on disk: with a migration state, its routes when another
        process wrote new ones; without, the table file. 'unchanged', 'reloaded' or 'refused'."""
        if self.state is not None:
            return self._reload_state()
        if self._file is None:
            return "unchanged"
        try:
            stamp = os.stat(self._file)
        except OSError:
            return "unchanged"
        if (stamp.st_mtime, stamp.st_size) == self._file_stamp:
            return "unchanged"
        try:
            self.load_file(self._file, actor="proxy", reason="table file changed")
        except TableError:
            return "refused"
        return "reloaded"

    @property
    def file(self) -> Path | None:
        return self._file

    def _reload_state(self) -> str:
        assert self.state is not None
        stamp = self.state.stamp()
        if stamp is None or stamp == self._state_stamp:
            return "unchanged"
        self._state_stamp = stamp
        try:
            recorded = self.state.read()
        except StateError:
            return "refused"
        if recorded.routes is None or recorded.routes_version == self._state_version:
            return "unchanged"
        try:
            self._from_state(recorded, "the migration state changed")
        except TableError:
            return "refused"
        return "reloaded"
