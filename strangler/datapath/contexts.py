"""Which monolith tables belong to each context and how they map onto the service's tables.

A context's *main feed* carries the tables whose ownership moves at cutover (forward:
monolith -> service before it, reverse: service -> monolith after it). A *replica feed* copies
data the service reads but never owns (the forum's `authors`, derived from the monolith's
`users`) and always flows monolith -> service. Tables are listed parents first: that is the copy
order that keeps foreign keys satisfied. Every key is one integer column. This module must
never touch a database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table

from strangler.plumbing.clock import utcnow
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


def _shared_columns(monolith: MetaData, service: MetaData, table: str) -> tuple[str, ...]:
    """The columns a table has on both sides; by design every one of the monolith's."""
    ours = [column.name for column in monolith.tables[table].columns]
    theirs = {column.name for column in service.tables[table].columns}
    missing = [name for name in ours if name not in theirs]
    if missing:
        raise RuntimeError(f"the service's {table} lacks the monolith's columns {missing}")
    return tuple(ours)


def _monolith_schema() -> MetaData:
    from monolith.models import Base

    return Base.metadata


def _same_tables(name: str, tables: tuple[str, ...], service: MetaData) -> Feed:
    maps = tuple(
        TableMap(table, table, _shared_columns(_monolith_schema(), service, table))
        for table in tables
    )
    return Feed(name, maps)


def _users() -> Context:
    from extracted.users.models import Base

    main = _same_tables("users", ("users",), Base.metadata)
    return Context("users", _monolith_schema(), Base.metadata, main)


def _forum() -> Context:
    from extracted.forum.models import Base

    authors = Feed(
        "forum-authors",
        (
            TableMap(
                "users",
                "authors",
                ("id", "display_name"),
                service_defaults=(("is_provisional", lambda: False), ("updated_at", utcnow)),
            ),
        ),
        is_reversible=False,
    )
    main = _same_tables("forum", ("threads", "posts"), Base.metadata)
    return Context("forum", _monolith_schema(), Base.metadata, main, (authors,))


def _polls() -> Context:
    from extracted.polls.models import Base

    main = _same_tables("polls", ("polls", "poll_options", "votes"), Base.metadata)
    return Context(
        "polls",
        _monolith_schema(),
        Base.metadata,
        main,
        on_service_rows=_refresh_results,
        before_flip=_rebuild_results,
    )


def _refresh_results(connection: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """Recompute the results of the polls these rows belong to, in the same transaction."""
    from sqlalchemy.orm import Session

    from extracted.polls import projection

    key = "id" if table == "polls" else "poll_id"
    poll_ids = {row[key] for row in rows}
    if poll_ids:
        with Session(bind=connection) as session:
            projection.refresh(session, poll_ids)


def _rebuild_results(engine: Engine, settings: Mapping[str, str]) -> None:
    """Every poll's results and static page, from the votes, into the folder the polls service
    serves (its `POLLS_RESULTS_DIR`, else this process's)."""
    from extracted.polls import projection
    from extracted.polls.pages import ResultsPages
    from extracted.polls.settings import ResultsSettings

    configured = settings.get("POLLS_RESULTS_DIR")
    folder = Path(configured) if configured else ResultsSettings().results_dir
    projection.rebuild(engine)
    projection.write_all_pages(engine, ResultsPages(folder))


BUILDERS: dict[str, Callable[[], Context]] = {"users": _users, "forum": _forum, "polls": _polls}


def context(name: str) -> Context:
    """The data-path description of context `name` (users, forum, polls)."""
    builder = BUILDERS.get(name)
    if builder is None:
        raise UnknownContext(
            f"the data path knows the contexts {', '.join(BUILDERS)}; not {name!r}"
            + (" (search owns no monolith tables: rebuild its index)" if name == "search" else "")
        )
    return builder()


def context_names() -> list[str]:
    return list(BUILDERS)
