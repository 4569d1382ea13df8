"""Reading rows by key from one database and writing them into another, idempotently.

Rows travel as Python values typed by each side's SQLAlchemy table (datetimes, ints, text), so a
SQLite source and a PostgreSQL target agree on what a row is. Writes are upserts by key
(`INSERT ... ON CONFLICT (key) DO UPDATE`, executed as one batch), so copying a row again only
rewrites it. This module must never decide which rows to copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, delete, select, text
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

# SQLite allows 32,766 bound parameters per statement; stay far below for IN lists.
KEYS_PER_QUERY = 900

Row = dict[str, Any]


def fetch_range(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    key: str,
    after: int | None,
    upto: int | None,
    limit: int | None = None,
) -> list[Row]:
    """Rows with `after < key <= upto` (either bound may be open), in key order."""
    key_column = table.c[key]
    query = select(*(table.c[name] for name in columns)).order_by(key_column)
    if after is not None:
        query = query.where(key_column > after)
    if upto is not None:
        query = query.where(key_column <= upto)
    if limit is not None:
        query = query.limit(limit)
    return [dict(row) for row in connection.execute(query).mappings()]


def fetch_keys(
    connection: Connection, table: Table, columns: Sequence[str], key: str, keys: Iterable[int]
) -> list[Row]:
    """The rows whose key is in `keys` (missing keys are simply absent), in key order."""
    wanted = sorted(set(keys))
    found: list[Row] = []
    for start in range(0, len(wanted), KEYS_PER_QUERY):
        batch = wanted[start : start + KEYS_PER_QUERY]
        query = (
            select(*(table.c[name] for name in columns))
            .where(table.c[key].in_(batch))
            .order_by(table.c[key])
        )
        found.extend(dict(row) for row in connection.execute(query).mappings())
    return found


def upsert(connection: Connection, table: Table, key: str, rows: list[Row]) -> None:
    """Insert `rows`, or overwrite the rows already there with the same key."""
    if not rows:
        return
    build = postgres_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = build(table)
    changed = {name: statement.excluded[name] for name in rows[0] if name != key}
    connection.execute(statement.on_conflict_do_update(index_elements=[key], set_=changed), rows)


def delete_keys(connection: Connection, table: Table, key: str, keys: Iterable[int]) -> int:
    wanted = sorted(set(keys))
    deleted = 0
    for start in range(0, len(wanted), KEYS_PER_QUERY):
        batch = wanted[start : start + KEYS_PER_QUERY]
        deleted += connection.execute(delete(table).where(table.c[key].in_(batch))).rowcount or 0
    return deleted


def delete_range(
    connection: Connection, table: Table, key: str, after: int | None, upto: int | None
) -> int:
    """Delete every row with `after < key <= upto`."""
    statement = delete(table)
    if after is not None:
        statement = statement.where(table.c[key] > after)
    if upto is not None:
        statement = statement.where(table.c[key] <= upto)
    return int(connection.execute(statement).rowcount or 0)


def keys_in_range(
    connection: Connection, table: Table, key: str, after: int | None, upto: int | None
) -> list[int]:
    query = select(table.c[key]).order_by(table.c[key])
    if after is not None:
        query = query.where(table.c[key] > after)
    if upto is not None:
        query = query.where(table.c[key] <= upto)
    return list(connection.scalars(query))


def advance_sequence(connection: Connection, table: Table, key: str) -> None:
    """On PostgreSQL, move the key's sequence past every key in the table (never backwards).

    Rows copied with explicit keys leave the sequence where it was; the side that takes over
    the writes would otherwise hand out keys that already exist. SQLite needs nothing: a new
    rowid is always past the largest.
    """
    if connection.dialect.name != "postgresql":
        return
    sequence = connection.scalar(
        text("SELECT pg_get_serial_sequence(:table, :column)"),
        {"table": table.name, "column": key},
    )
    if sequence is None:
        return
    largest = connection.scalar(select(table.c[key]).order_by(table.c[key].desc()).limit(1)) or 0
    last, is_called = connection.execute(
        text(f"SELECT last_value, is_called FROM {sequence}")
    ).one()
    following = max(int(largest) + 1, int(last) + 1 if is_called else int(last))
    connection.execute(
        text("SELECT setval(:sequence, :value, false)"),
        {"sequence": sequence, "value": following},
    )
