"""Small typed helpers on one table by key: fetch, list, delete, move a key's sequence.

Rows come back as Python values typed by the side's SQLAlchemy table (datetimes, ints, text),
as verify and the hooks want them; bulk copying between databases is `copying`'s job. This
module must never decide which rows to touch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, delete, select, text

# SQLite allows 32,766 bound parameters per statement; stay far below for IN lists.
KEYS_PER_QUERY = 900

Row = dict[str, Any]


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
