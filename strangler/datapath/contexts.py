"""Which monolith tables belong to each context and how they map onto the service's tables.

A context's *main feed* carries the tables whose ownership moves at cutover (forward:
monolith -> service before it, reverse: service -> monolith after it). A *replica feed* copies
data the service reads but never owns (the forum's `authors`, derived from the monolith's
`users`) and always flows monolith -> service. A feed copies its tables parents first, in the
order the foreign keys of both sides give (`ordering`); each table's columns may be renamed
between the sides, either side may have columns the other lacks, and its key may be one column
or several, of integers, text, UUIDs or dates (`mapping`, `keys`). What each context holds
comes from the workspace file; this module reads a database only to reflect the schema of a
side whose models the workspace does not name, and every refusal names the file's line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table
from sqlalchemy.exc import InvalidRequestError

from strangler.datapath.mapping import ColumnPlan, Make, MappingError, plan_columns
from strangler.datapath.ordering import NoCopyOrder, SideTables, copy_order, references
from strangler.workspace import Workspace, WorkspaceError
from strangler.workspace.model import ContextSpec, TableMapSpec
from strangler_proxy.table import DataOwner


class Direction(StrEnum):
    """Which way a feed flows: to the service before cutover, back to the monolith after."""

    FORWARD = "forward"
    REVERSE = "reverse"


# Who owns a context's data, and so takes its writes: the proxy's own notion.
Owner = DataOwner
Fillers = tuple[tuple[str, Make], ...]


@dataclass(frozen=True)
class TableMap:
    """One table copied by a feed: its name on each side, the columns copied, its key.

    Column names are the monolith's; `service_columns` are the same columns' names on the
    service's side, in the same order. `*_filled` columns (the workspace's defaults) are
    written on every copy into that side, `*_initial` ones (the models' defaults) only when a
    row is inserted; neither is ever compared by verify. `deferred` columns are references
    written after their row (a table that references itself, or a loop of tables).
    """

    monolith: str
    service: str
    columns: tuple[str, ...]
    service_columns: tuple[str, ...]
    key: tuple[str, ...]
    service_filled: Fillers = ()
    service_initial: Fillers = ()
    monolith_filled: Fillers = ()
    monolith_initial: Fillers = ()
    deferred: tuple[str, ...] = ()

    def source_name(self, direction: Direction) -> str:
        return self.monolith if direction is Direction.FORWARD else self.service

    def target_name(self, direction: Direction) -> str:
        return self.service if direction is Direction.FORWARD else self.monolith

    def _on_service(self, names: tuple[str, ...]) -> tuple[str, ...]:
        renamed = dict(zip(self.columns, self.service_columns, strict=True))
        return tuple(renamed[name] for name in names)

    def names(self, names: tuple[str, ...], is_service: bool) -> tuple[str, ...]:
        """Monolith column names as one side calls them."""
        return self._on_service(names) if is_service else names

    def source_columns(self, direction: Direction) -> tuple[str, ...]:
        return self.names(self.columns, direction is Direction.REVERSE)

    def target_columns(self, direction: Direction) -> tuple[str, ...]:
        return self.names(self.columns, direction is Direction.FORWARD)

    def source_key(self, direction: Direction) -> tuple[str, ...]:
        return self.names(self.key, direction is Direction.REVERSE)

    def target_key(self, direction: Direction) -> tuple[str, ...]:
        return self.names(self.key, direction is Direction.FORWARD)

    def target_deferred(self, direction: Direction) -> tuple[str, ...]:
        return self.names(self.deferred, direction is Direction.FORWARD)

    def filled(self, direction: Direction) -> dict[str, Any]:
        """Values of the target-only columns written on every copy in `direction`."""
        fillers = self.service_filled if direction is Direction.FORWARD else self.monolith_filled
        return {column: make() for column, make in fillers}

    def initial(self, direction: Direction) -> dict[str, Any]:
        """Values of the target-only columns written when a copy inserts a row."""
        fillers = self.service_initial if direction is Direction.FORWARD else self.monolith_initial
        return {column: make() for column, make in fillers}


@dataclass(frozen=True)
class Feed:
    """A stream of changes for some tables of one context; named in the change log."""

    name: str
    tables: tuple[TableMap, ...]  # parents first
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

    @property
    def defers_references(self) -> bool:
        return any(table.deferred for table in self.tables)


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
    # Where the monolith and the service answer whether they are healthy (None: a TCP check).
    health_paths: Mapping[str, str | None] = field(default_factory=dict)

    def health_path(self, upstream: str) -> str | None:
        return self.health_paths.get(upstream, "/healthz")

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


class UnknownContext(WorkspaceError):
    """A context the data path cannot move: unknown, owning no table, or mapped wrongly."""

    def __init__(self, message: str | list[str]) -> None:
        super().__init__([message] if isinstance(message, str) else message)


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
    feeds = _feed_specs(spec)
    monolith_tables = [t.monolith for _, _, tables in feeds for t in tables]
    service_tables = [t.service_name for _, _, tables in feeds for t in tables]
    monolith_schema = _schema(workspace, "monolith", monolith, monolith_tables)
    # A context with no service yet is described as if its service had the monolith's tables.
    service_schema = (
        _schema(workspace, name, service, service_tables)
        if spec.service is not None
        else monolith_schema
    )
    main, *replicas = (
        _feed(workspace, ("contexts", name, *where), feed_name or name, tables,
              monolith_schema, service_schema)
        for where, feed_name, tables in feeds
    )  # fmt: skip
    hooks = spec.hooks
    return Context(
        name,
        monolith_schema,
        service_schema,
        main,
        tuple(replicas),
        on_service_rows=workspace.resolve(hooks.on_service_rows) if hooks.on_service_rows else None,
        before_flip=workspace.resolve(hooks.before_flip) if hooks.before_flip else None,
        health_paths={
            "monolith": workspace.spec.monolith.health_path,
            name: spec.service.health_path if spec.service is not None else None,
        },
    )


def context_names(workspace: Workspace) -> list[str]:
    """The contexts whose tables the data path moves."""
    return [name for name, spec in workspace.contexts.items() if spec.moves_data]


FeedSpecs = list[tuple[tuple[str | int, ...], str | None, list[TableMapSpec]]]


def _feed_specs(spec: ContextSpec) -> FeedSpecs:
    """(where in the context's entry, feed name, tables): the main feed (named after the
    context), then each replica feed."""
    found: FeedSpecs = [((), None, spec.tables)]
    for index, replica in enumerate(spec.replicas):
        found.append((("replicas", index), replica.name, replica.tables))
    return found


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
    workspace: Workspace,
    where: tuple[str | int, ...],
    name: str,
    specs: list[TableMapSpec],
    monolith: MetaData,
    service: MetaData,
) -> Feed:
    is_reversible = len(where) == 2  # the main feed; replicas only ever flow forward
    plans: dict[str, tuple[TableMapSpec, ColumnPlan]] = {}
    for index, spec in enumerate(specs):
        path = (*where, "tables", index)
        for side, schema, table in (("monolith", monolith, spec.monolith),
                                    ("service", service, spec.service_name)):  # fmt: skip
            if table not in schema.tables:
                raise workspace.problem(path, f"the {side}'s schema has no table {table!r}")
        try:
            plan = plan_columns(
                spec, monolith.tables[spec.monolith], service.tables[spec.service_name],
                is_reversible,
            )  # fmt: skip
        except MappingError as error:
            raise workspace.problem(path, str(error)) from error
        plans[spec.monolith] = (spec, plan)
    sides = [
        SideTables(
            monolith.tables[spec.monolith],
            service.tables[spec.service_name],
            dict(zip(plan.service_columns, plan.columns, strict=True)),
        )
        for spec, plan in plans.values()
    ]
    try:
        order = copy_order(list(plans), references(sides))
    except NoCopyOrder as error:
        raise workspace.problem((*where, "tables"), str(error)) from error
    tables = tuple(
        _table_map(plans[table][0], plans[table][1], order.deferred_columns(table))
        for table in order.tables
    )
    return Feed(name, tables, is_reversible)


def _table_map(spec: TableMapSpec, plan: ColumnPlan, deferred: tuple[str, ...]) -> TableMap:
    return TableMap(
        spec.monolith,
        spec.service_name,
        plan.columns,
        plan.service_columns,
        plan.key,
        plan.service_filled,
        plan.service_initial,
        plan.monolith_filled,
        plan.monolith_initial,
        deferred,
    )


def check_tables(
    workspace: Workspace, monolith: Engine, service: Callable[[str], Engine]
) -> list[str]:
    """Every context's tables against both sides' schemas (`strangler check --config`): what
    `describe` would refuse, one problem per context, each naming its line; a context with no
    service yet is checked on the monolith's side only."""
    problems: list[str] = []
    for name in context_names(workspace):
        spec = workspace.contexts[name]
        try:
            if spec.service is not None:
                describe(workspace, name, monolith, service(name))
                continue
            schema = _schema(workspace, "monolith", monolith, [t.monolith for t in spec.tables])
            for index, table in enumerate(spec.tables):
                if table.monolith not in schema.tables:
                    where = ("contexts", name, "tables", index)
                    raise workspace.problem(where, f"the monolith has no table {table.monolith!r}")
        except WorkspaceError as error:
            problems.extend(error.problems)
        except Exception as error:  # a hook or a model imports the user's code
            problems.append(f"{workspace.file}: contexts.{name}: {type(error).__name__}: {error}")
    return problems
