"""Small typed helpers on one table by key: fetch, list, delete, move its sequences on.

Rows come back as Python values typed by the side's SQLAlchemy table (datetimes, ints, text,
UUIDs), as verify and the hooks want them; keys are tuples (`keys.KeyColumns`); bulk copying
between databases is `copying`'s job. This module must never decide which rows to touch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Integer, Table, delete, func, select, text

from strangler.datapath.keys import Key, KeyColumns

# SQLite allows 32,766 bound parameters per statement; stay far below for IN lists.
KEY_VALUES_PER_QUERY = 900

Row = dict[str, Any]


def _batches(keys: KeyColumns, wanted: Iterable[Key]) -> Iterable[list[Key]]:
    ordered = list(dict.fromkeys(wanted))
    per_query = max(1, KEY_VALUES_PER_QUERY // len(keys.names))
    for start in range(0, len(ordered), per_query):
        yield ordered[start : start + per_query]


def fetch_keys(
    connection: Connection, keys: KeyColumns, columns: Sequence[str], wanted: Iterable[Key]
) -> list[Row]:
    """The rows whose key is in `wanted` (missing keys are simply absent), in key order."""
    table = keys.table
    found: list[Row] = []
    for batch in _batches(keys, wanted):
        query = (
            select(*(table.c[name] for name in columns))
            .where(keys.among(batch))
            .order_by(*keys.order_by(connection.dialect.name))
        )
        found.extend(dict(row) for row in connection.execute(query).mappings())
    return found


def delete_keys(connection: Connection, keys: KeyColumns, wanted: Iterable[Key]) -> int:
    deleted = 0
    for batch in _batches(keys, wanted):
        statement = delete(keys.table).where(keys.among(batch))
        deleted += connection.execute(statement).rowcount or 0
    return deleted


def keys_in_range(
    connection: Connection, keys: KeyColumns, after: Key | None, upto: Key | None
) -> list[Key]:
    """Every key with `after < key <= upto` (open ends are None), in key order."""
    dialect = connection.dialect.name
    query = (
        select(*keys.columns)
        .where(keys.within(dialect, after, upto))
        .order_by(*keys.order_by(dialect))
    )
    return [tuple(row) for row in connection.execute(query)]


def largest_key(connection: Connection, keys: KeyColumns) -> Key | None:
    """The last key in key order (None: the table is empty)."""
    query = select(*keys.columns).order_by(*keys.order_by(connection.dialect.name, True)).limit(1)
    row = connection.execute(query).first()
    return None if row is None else tuple(row)


def count_upto(connection: Connection, keys: KeyColumns, upto: Key) -> int:
    query = (
        select(func.count()).select_from(keys.table).where(keys.upto(connection.dialect.name, upto))
    )
    return int(connection.scalar(query) or 0)


def advance_sequences(connection: Connection, table: Table) -> None:
    """On PostgreSQL, move every sequence of the table's integer columns past the largest value
    in its column (never backwards).

    Rows copied with explicit keys leave the sequences where they were; the side that takes
    over the writes would otherwise hand out keys that already exist. SQLite needs nothing: a
    new rowid is always past the largest.
    """
    if connection.dialect.name != "postgresql":
        return
    for column in table.columns:
        if not isinstance(column.type, Integer):
            continue
        sequence = connection.scalar(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {
                "table": connection.dialect.identifier_preparer.quote(table.name),
                "column": column.name,
            },
        )
        if sequence is None:
            continue
        largest = connection.scalar(select(func.max(column))) or 0
        last, is_called = connection.execute(
            text(f"SELECT last_value, is_called FROM {sequence}")
        ).one()
        following = max(int(largest) + 1, int(last) + 1 if is_called else int(last))
        connection.execute(
            text("SELECT setval(:sequence, :value, false)"),
            {"sequence": sequence, "value": following},
        )
