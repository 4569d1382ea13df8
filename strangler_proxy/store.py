"""The route table in force: loading, reloading, changing and swapping it atomically.

A change builds and validates a complete new table and its `Router` first, then replaces the
current `Snapshot` with one assignment; a request in flight keeps the snapshot it started with,
so nothing is dropped. A table that fails validation is refused and the last good one keeps
serving. Every accepted or refused change is written to the audit log. This module must never
forward requests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

    def __init__(self, configured_upstreams: dict[str, str], audit: AuditLog) -> None:
        self.configured_upstreams = configured_upstreams
        self.audit = audit
        self.current = self._snapshot(EMPTY_TABLE, 0, "built-in: everything to the monolith")
        self._file: Path | None = None
        self._file_stamp: tuple[float, int] | None = None
        self.last_error: list[str] = []

    def _snapshot(self, table: RouteTable, version: int, source: str) -> Snapshot:
        urls = {**table.upstreams, **self.configured_upstreams}
        return Snapshot(version, table, Router(table), urls, source)

    def _install(self, table: RouteTable, source: str) -> Snapshot:
        self.current = self._snapshot(table, self.current.version + 1, source)
        self.last_error = []
        return self.current

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
        snapshot = self._install(table, source)
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
        self, changes: dict[str, dict[str, Any]], actor: str | Actor, reason: str
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
        snapshot = self._install(new_table, f"admin change of {names}")
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
        """Reload the table file if its stamp changed: 'unchanged', 'reloaded' or 'refused'."""
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
