"""References between rows while a backfill copies them: parents that are not on the target yet.

A backfill copies a feed's tables parents first, each in key order, while the monolith keeps
writing. A child row may then name a parent the target does not have: one created after the
parent table was copied. Such a child changed after capture began, so the change feed will
bring it, after its parent; the backfill leaves it out (`without_missing_parents`). A child
whose parent the monolith itself lacks breaks the foreign key the service declares: that is
refused, naming the row. References the feed defers (a table that references itself, a loop
of tables) are written after their row: those whose parent is not copied yet are remembered
with the chunk (`remember`) and set once every table of the feed is copied (`link_pending`),
before the sync may start. This module must never decide the order of tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from strangler.datapath.contexts import Direction, Feed, TableMap
from strangler.datapath.copying import Row, TableCopy
from strangler.datapath.keys import Key, KeyColumns
from strangler.datapath.link import Link
from strangler.datapath.tables import touched_keys


class OrphanRow(IntegrityError):
    """A monolith row names a parent the monolith does not have."""

    def __init__(self, message: str) -> None:
        super().__init__(message, None, Exception(message))
        self.message = message

    def __str__(self) -> str:
        return self.message


def pending_key(feed: Feed) -> str:
    """Where a feed's rows with references still to set are kept (`strangler_touched_keys`)."""
    return f"{feed.name}:links"


def without_missing_parents(
    writer: Connection, link: Link, feed: Feed, copy: TableCopy, chunk: list[Row]
) -> list[Row]:
    """The rows of `chunk` whose parents (in tables of the feed, by references not deferred)
    are on the target; raises OrphanRow for a row whose parent the source lacks too."""
    kept = chunk
    for parent_map, columns, parent_columns in _references(feed, copy):
        indexes = [copy.columns.index(name) for name in columns]
        converted = copy.converted(kept)
        wanted = {
            tuple(row[i] for i in indexes)
            for row in converted
            if all(row[i] is not None for i in indexes)
        }
        parent = link.context.target_table(parent_map, Direction.FORWARD)
        present = _present(writer, KeyColumns(parent, parent_columns), wanted)
        missing = wanted - present
        if not missing:
            continue
        _refuse_orphans(link, copy, parent_map, parent_columns, kept, indexes, missing)
        kept = [
            row
            for row, ready in zip(kept, converted, strict=True)
            if tuple(ready[i] for i in indexes) not in missing
        ]
    return kept


def _references(feed: Feed, copy: TableCopy) -> Iterable[tuple[TableMap, list[str], list[str]]]:
    """(parent's map, child columns, parent columns) of each foreign key the target declares
    to another table of the feed, by columns the feed does not defer (target names)."""
    by_target = {table.target_name(Direction.FORWARD): table for table in feed.tables}
    for constraint in copy.target.foreign_key_constraints:
        parent = by_target.get(constraint.referred_table.name)
        columns = [column.name for column in constraint.columns]
        if parent is None or set(columns) & set(copy.deferred):
            continue
        if not set(columns) <= set(copy.columns):
            continue
        yield parent, columns, [element.column.name for element in constraint.elements]


def _present(writer: Connection, keys: KeyColumns, wanted: set[tuple[Any, ...]]) -> set[Key]:
    """Which of these driver-level values the parent table holds (compared as the driver
    returns them)."""
    dialect = writer.dialect
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in keys.names)
    found: set[Key] = set()
    ordered = list(wanted)
    per_query = max(1, 900 // len(keys.names))
    for start in range(0, len(ordered), per_query):
        batch = ordered[start : start + per_query]
        statement = (
            f"SELECT {names} FROM {quote(keys.table.name)}"
            f" WHERE {keys.sql_among(dialect, len(batch))}"
        )
        parameters = tuple(value for values in batch for value in values)
        found.update(tuple(row) for row in writer.exec_driver_sql(statement, parameters))
    return found


def _refuse_orphans(
    link: Link,
    copy: TableCopy,
    parent_map: TableMap,
    parent_columns: list[str],
    chunk: list[Row],
    indexes: list[int],
    missing: set[tuple[Any, ...]],
) -> None:
    """A parent missing on the target but present on the source was created after capture
    began: fine. One missing on both sides is an orphan: refused."""
    source_parent = link.context.source_table(parent_map, Direction.FORWARD)
    renamed = dict(zip(parent_map.service_columns, parent_map.columns, strict=True))
    source_keys = KeyColumns(source_parent, [renamed.get(name, name) for name in parent_columns])
    child_names = [copy.columns[i] for i in indexes]
    for row in chunk:
        ready = copy.converted([row])[0]
        values = tuple(ready[i] for i in indexes)
        if values not in missing:
            continue
        with link.monolith.connect() as reader:
            typed = tuple(
                _python(source_parent.c[name], value, reader)
                for name, value in zip(source_keys.names, (row[i] for i in indexes), strict=True)
            )
            exists = reader.scalar(
                select(source_keys.columns[0]).where(source_keys.among([typed])).limit(1)
            )
        if exists is None:
            raise OrphanRow(
                f"the monolith's {copy.source.name} row {copy.key(row)} names"
                f" {parent_map.monolith} {dict(zip(child_names, values, strict=True))}, which"
                f" the monolith does not have: its data breaks the foreign key the service"
                f" declares. Fix or delete that row (or drop the constraint on the service's"
                f" side), then backfill again"
            )


def _python(column: Any, value: Any, connection: Connection) -> Any:
    read = column.type.dialect_impl(connection.dialect).result_processor(connection.dialect, None)
    return value if read is None or value is None else read(value)


def remember(writer: Connection, feed: Feed, copy: TableCopy, keys: list[Key]) -> None:
    """In the chunk's transaction: these rows' deferred references are still to set."""
    if not keys:
        return
    writer.execute(
        insert(touched_keys),
        [
            {
                "position_key": pending_key(feed),
                "table_name": copy.target.name,
                "row_key": copy.source_key.encode(key),
            }
            for key in dict.fromkeys(keys)
        ],
    )


def link_pending(link: Link, feed: Feed) -> int:
    """Set every reference a backfill left unset, from the source's current rows; returns how
    many rows are still waiting (their parents come with the change feed)."""
    waiting = 0
    for table in feed.tables:
        if not table.deferred:
            continue
        copy = link.copy(table, Direction.FORWARD)
        position, where = pending_key(feed), touched_keys.c.table_name == copy.target.name
        with link.service.connect() as connection:
            encoded = list(
                connection.scalars(
                    select(touched_keys.c.row_key).where(
                        touched_keys.c.position_key == position, where
                    )
                )
            )
        if not encoded:
            continue
        with link.monolith.connect() as reader:
            found = copy.read_keys(reader, [copy.source_key.decode(text) for text in encoded])
        with link.service.begin() as writer:
            copy.write(writer, found, unlinked=True)
            waiting += len(copy.link(writer, found))
            writer.execute(
                delete(touched_keys).where(touched_keys.c.position_key == position, where)
            )
    return waiting
