"""Which monolith tables belong to each context and how they map onto the service's tables.

A context's *main feed* carries the tables whose ownership moves at cutover (forward:
monolith -> service before it, reverse: service -> monolith after it). A *replica feed* copies
data the service reads but never owns (the forum's `authors`, derived from the monolith's
`users`) and always flows monolith -> service. Tables are listed parents first: that is the copy
order that keeps foreign keys satisfied. Every key is one integer column. What each context
holds comes from the workspace file; this module reads a database only to reflect the schema of
a side whose models the workspace does not name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table
from sqlalchemy.exc import InvalidRequestError

from strangler.plumbing.clock import utcnow
from strangler.workspace import Workspace
from strangler.workspace.model import ContextSpec, FeedSpec, TableMapSpec
from strangler_proxy.table import DataOwner


class Direction(StrEnum):
    """Which way a feed flows: to the service before cutover, back to the monolith after."""

    FORWARD = "forward"
    REVERSE = "reverse"


# Who owns a context's data, and so takes its writes: the proxy's own notion.
Owner = DataOwner


@dataclass(frozen=True)
class TableMap:
    """One table copied by a feed: its name on each side, the columns copied, its key.

    `service_defaults` are columns only the service's table has, filled on every copy into the
    service (e.g. `authors.updated_at`); they are never compared by verify.
    """

    monolith: str
    service: str
    columns: tuple[str, ...]
    key: str = "id"
    service_defaults: tuple[tuple[str, Callable[[], Any]], ...] = ()

    def source_name(self, direction: Direction) -> str:
        return self.monolith if direction is Direction.FORWARD else self.service

    def target_name(self, direction: Direction) -> str:
        return self.service if direction is Direction.FORWARD else self.monolith

    def defaults_for(self, direction: Direction) -> dict[str, Any]:
        """Values of the target-only columns for one copy in `direction`."""
        if direction is Direction.REVERSE:
            return {}
        return {column: make() for column, make in self.service_defaults}


@dataclass(frozen=True)
class Feed:
    """A stream of changes for some tables of one context; named in the change log."""

    name: str
    tables: tuple[TableMap, ...]
    is_reversible: bool = True

    def table(self, name: str, direction: Direction) -> TableMap:
        """The map whose source table in `direction` is `name`."""
        for table_map in self.tables:
            if table_map.source_name(direction) == name:
                return table_map
        raise KeyError(f"feed {self.name} has no table {name!r} in direction {direction}")

    def position_key(self, direction: Direction) -> str:
        """The name of this feed's position in its target database (`forum:forward`)."""
        return f"{self.name}:{direction.value}"


@dataclass(frozen=True)
class Context:
    """A bounded context's data: its main feed, its replica feeds, and its schemas."""

    name: str
    monolith_schema: MetaData
    service_schema: MetaData
    main: Feed
    replicas: tuple[Feed, ...] = ()
    # Called in the transaction that writes copied or synced rows into a service table, with
    # the table's name and the rows (polls: refresh the results of the polls they touch).
    on_service_rows: Callable[[Connection, str, list[dict[str, Any]]], None] | None = None
    # Called at cutover under the freeze, after verify and before the routes flip, with the
    # service's database and its settings (`Link.service_settings`).
    before_flip: Callable[[Engine, Mapping[str, str]], None] | None = None

    @property
    def feeds(self) -> tuple[Feed, ...]:
        return (self.main, *self.replicas)

    def feed(self, name: str) -> Feed:
        for feed in self.feeds:
            if feed.name == name:
                return feed
        raise KeyError(f"context {self.name} has no feed {name!r}")

    def source_table(self, table_map: TableMap, direction: Direction) -> Table:
        schema = self.monolith_schema if direction is Direction.FORWARD else self.service_schema
        return schema.tables[table_map.source_name(direction)]

    def target_table(self, table_map: TableMap, direction: Direction) -> Table:
        schema = self.service_schema if direction is Direction.FORWARD else self.monolith_schema
        return schema.tables[table_map.target_name(direction)]

    def directions(self, owner: Owner) -> list[tuple[Feed, Direction]]:
        """Every feed with the direction it flows in while `owner` owns the main tables."""
        main = Direction.FORWARD if owner is Owner.MONOLITH else Direction.REVERSE
        return [(self.main, main), *((replica, Direction.FORWARD) for replica in self.replicas)]


class UnknownContext(ValueError):
    """A context name the data path does not know."""


def describe(workspace: Workspace, name: str, monolith: Engine, service: Engine) -> Context:
    """The data-path description of context `name` as the workspace file gives it: its tables
    (main feed), its replica feeds, its hooks, and both sides' schemas (the models' metadata
    the workspace names, else reflected from the databases)."""
    spec = workspace.contexts.get(name)
    if spec is None or not spec.moves_data:
        raise UnknownContext(
            f"the data path moves the tables of"
            f" {', '.join(context_names(workspace)) or 'no context'}; not {name!r}"
            + (" (it owns no monolith table: it builds its data)" if spec is not None else "")
        )
    monolith_tables = [t.monolith for feed in _feeds(spec) for t in feed.tables]
    service_tables = [t.service_name for feed in _feeds(spec) for t in feed.tables]
    monolith_schema = _schema(workspace, "monolith", monolith, monolith_tables)
    service_schema = _schema(workspace, name, service, service_tables)
    main = _feed(name, spec.tables, monolith_schema, service_schema)
    replicas = tuple(
        _feed(feed.name, feed.tables, monolith_schema, service_schema, is_reversible=False)
        for feed in spec.replicas
    )
    hooks = spec.hooks
    return Context(
        name,
        monolith_schema,
        service_schema,
        main,
        replicas,
        on_service_rows=workspace.resolve(hooks.on_service_rows) if hooks.on_service_rows else None,
        before_flip=workspace.resolve(hooks.before_flip) if hooks.before_flip else None,
    )


def context_names(workspace: Workspace) -> list[str]:
    """The contexts whose tables the data path moves."""
    return [name for name, spec in workspace.contexts.items() if spec.moves_data]


def _feeds(spec: ContextSpec) -> list[FeedSpec]:
    return [FeedSpec(name="main", tables=spec.tables), *spec.replicas]


def _schema(workspace: Workspace, database: str, engine: Engine, tables: list[str]) -> MetaData:
    """The named database's models (`metadata` in the workspace file), else its tables as
    reflected from the database itself."""
    named = workspace.database(database).metadata
    if named is not None:
        found = workspace.resolve(named)
        if not isinstance(found, MetaData):
            raise UnknownContext(f"{named} is not a SQLAlchemy MetaData")
        return found
    reflected = MetaData()
    try:
        reflected.reflect(engine, only=sorted(set(tables)))
    except InvalidRequestError as error:
        raise UnknownContext(f"the {database} database lacks tables: {error}") from error
    return reflected


def _feed(
    name: str,
    tables: list[TableMapSpec],
    monolith: MetaData,
    service: MetaData,
    is_reversible: bool = True,
) -> Feed:
    return Feed(name, tuple(_table_map(spec, monolith, service) for spec in tables), is_reversible)


def _table_map(spec: TableMapSpec, monolith: MetaData, service: MetaData) -> TableMap:
    for side, schema, table in (("monolith", monolith, spec.monolith),
                                ("service", service, spec.service_name)):  # fmt: skip
        if table not in schema.tables:
            raise UnknownContext(f"the {side}'s schema has no table {table!r}")
    source = monolith.tables[spec.monolith]
    target = service.tables[spec.service_name]
    if isinstance(spec.columns, dict):
        renamed = {m: s for m, s in spec.columns.items() if m != s}
        if renamed:
            raise UnknownContext(f"{spec.monolith}: renamed columns {renamed} are not supported")
        columns = tuple(spec.columns)
    else:
        columns = tuple(spec.columns or (column.name for column in source.columns))
    missing = [column for column in columns if column not in target.columns]
    if missing:
        raise UnknownContext(f"the service's {target.name} lacks the monolith's columns {missing}")
    key = spec.key or [column.name for column in source.primary_key.columns]
    if len(key) != 1:
        raise UnknownContext(f"{spec.monolith}: a key of {len(key)} columns is not supported")
    defaults = tuple(
        (column, utcnow if value == "now" else _constant(value))
        for column, value in spec.service_defaults.items()
    )
    return TableMap(spec.monolith, spec.service_name, columns, key[0], defaults)


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value
