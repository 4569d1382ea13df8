"""Keys of the tables a feed copies: one column or several, of integers, text, UUIDs or dates.

A key travels three ways. As Python values: a tuple with one value per key column, typed as
SQLAlchemy types it (int, str, uuid.UUID, date, datetime), the same whichever backend a side
is on, so a key read on one side can be bound on the other. As text in the data path's own
tables (checkpoints, tracked keys): a JSON array written by `encode` and read back by `decode`;
the capture triggers write the same shape with the database's own JSON functions, which
`decode` reads too. And as SQL over a key range (`after < key <= upto`, rows in key order), in
an order both backends share whatever a column's collation: text compares by code point (the
C collation on PostgreSQL, BINARY on SQLite, both byte order of UTF-8), so a chunk of keys means
the same rows on a SQLite side and a PostgreSQL side. This module must never run a query.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Dialect,
    Table,
    and_,
    bindparam,
    false,
    tuple_,
)
from sqlalchemy.types import TypeEngine

Key = tuple[Any, ...]
# The kinds of key column the data path can order, encode and compare on every backend.
KINDS: dict[type, str] = {int: "int", str: "text", uuid.UUID: "uuid", datetime: "datetime",
                          date: "date"}  # fmt: skip
# Byte order of UTF-8 text on each backend, whatever collation a column declares.
BYTE_ORDER = {"postgresql": "C", "sqlite": "BINARY"}


class UnsupportedKey(ValueError):
    """A key the data path cannot order the same way on every backend."""


def python_type(column_type: TypeEngine[Any]) -> type:
    """The Python type of a column's values (`object` when the type does not say)."""
    try:
        return column_type.python_type
    except NotImplementedError:
        return object


def kind_of(column: Column[Any]) -> str:
    """How a key column is handled: int, text, uuid, datetime or date; else UnsupportedKey."""
    found = python_type(column.type)
    for kind, name in KINDS.items():
        if issubclass(found, kind) and not issubclass(found, bool):
            # datetime is a date: the most specific match wins.
            if name == "date" and issubclass(found, datetime):
                return "datetime"
            return name
    raise UnsupportedKey(
        f"{column.table.name}.{column.name} is a key column of type {column.type}: the data"
        " path orders keys of integers, text, UUIDs, dates and timestamps only"
    )


class KeyColumns:
    """The key of one table on one side: its columns, how their values are encoded, and the
    SQL that selects, orders and bounds rows by key."""

    def __init__(self, table: Table, names: Sequence[str]) -> None:
        if not names:
            raise UnsupportedKey(f"{table.name} has no key: declare a primary key or `key`")
        self.table = table
        self.names = tuple(names)
        self.columns = [table.c[name] for name in self.names]
        self.kinds = [kind_of(column) for column in self.columns]
        self._is_one_integer = self.kinds == ["int"]

    # Text -------------------------------------------------------------------------------

    def encode(self, key: Key) -> str:
        """The key as the data path's tables keep it (the same key, the same text)."""
        return json.dumps([_plain(value) for value in key], separators=(",", ":"),
                          ensure_ascii=False)  # fmt: skip

    def decode(self, text: str) -> Key:
        """A key from `encode`, or as a capture trigger logged it, as Python values."""
        if self._is_one_integer:  # `[42]`: most keys, read without a JSON parser
            try:
                return (int(text[1:-1]),)
            except ValueError:
                pass
        values = json.loads(text)
        if not isinstance(values, list) or len(values) != len(self.kinds):
            raise ValueError(f"{text!r} is not a key of {self.table.name} {self.names}")
        return tuple(_typed(kind, value) for kind, value in zip(self.kinds, values, strict=True))

    # SQL over Python values ----------------------------------------------------------------

    def ordered(self, dialect: str) -> list[ColumnElement[Any]]:
        """The key columns as the backend must compare them (text in byte order)."""
        return [
            column.collate(BYTE_ORDER[dialect]) if kind == "text" else column
            for column, kind in zip(self.columns, self.kinds, strict=True)
        ]

    def order_by(self, dialect: str, descending: bool = False) -> list[ColumnElement[Any]]:
        return [column.desc() if descending else column for column in self.ordered(dialect)]

    def _bound(self, key: Key) -> list[ColumnElement[Any]]:
        return [
            bindparam(None, value, type_=column.type)
            for column, value in zip(self.columns, key, strict=True)
        ]

    def after(self, dialect: str, key: Key) -> ColumnElement[bool]:
        """Rows whose key comes after `key`."""
        ordered = self.ordered(dialect)
        if len(ordered) == 1:
            return ordered[0] > self._bound(key)[0]
        return tuple_(*ordered) > tuple_(*self._bound(key))

    def upto(self, dialect: str, key: Key) -> ColumnElement[bool]:
        """Rows whose key comes at or before `key`."""
        ordered = self.ordered(dialect)
        if len(ordered) == 1:
            return ordered[0] <= self._bound(key)[0]
        return tuple_(*ordered) <= tuple_(*self._bound(key))

    def within(self, dialect: str, after: Key | None, upto: Key | None) -> ColumnElement[bool]:
        """Rows with `after < key <= upto` (an open end is None)."""
        conditions = []
        if after is not None:
            conditions.append(self.after(dialect, after))
        if upto is not None:
            conditions.append(self.upto(dialect, upto))
        return and_(*conditions) if conditions else and_(True)

    def among(self, keys: Iterable[Key]) -> ColumnElement[bool]:
        """Rows whose key is one of `keys` (equality needs no collation)."""
        wanted = list(keys)
        if not wanted:
            return false()
        if len(self.columns) == 1:
            return self.columns[0].in_([key[0] for key in wanted])
        return tuple_(*self.columns).in_(wanted)

    # Driver-level SQL (the fast copy path) -------------------------------------------------

    def sql_ordered(self, dialect: Dialect) -> list[str]:
        quote = dialect.identifier_preparer.quote
        return [
            f'{quote(name)} COLLATE "{BYTE_ORDER[dialect.name]}"' if kind == "text" else quote(name)
            for name, kind in zip(self.names, self.kinds, strict=True)
        ]

    def sql_row(self, dialect: Dialect) -> str:
        ordered = self.sql_ordered(dialect)
        return ordered[0] if len(ordered) == 1 else f"({', '.join(ordered)})"

    def sql_order_by(self, dialect: Dialect) -> str:
        return ", ".join(self.sql_ordered(dialect))

    def sql_markers(self, dialect: Dialect) -> str:
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        markers = ", ".join(marker for _ in self.names)
        return markers if len(self.names) == 1 else f"({markers})"

    def sql_among(self, dialect: Dialect, count: int) -> str:
        """`key IN (...)` for `count` keys, driver markers in order."""
        quote = dialect.identifier_preparer.quote
        if len(self.names) == 1:
            marker = "?" if dialect.paramstyle == "qmark" else "%s"
            return f"{quote(self.names[0])} IN ({', '.join(marker for _ in range(count))})"
        row = f"({', '.join(quote(name) for name in self.names)})"
        values = ", ".join(self.sql_markers(dialect) for _ in range(count))
        return f"{row} IN (VALUES {values})"


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | str):
        return value
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    raise UnsupportedKey(f"a key value of type {type(value).__name__} cannot be encoded")


def _typed(kind: str, value: Any) -> Any:
    if kind == "int":
        return int(value)
    if kind == "text":
        return value if isinstance(value, str) else str(value)
    if kind == "uuid":
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    if kind == "datetime":
        return datetime.fromisoformat(str(value))
    return date.fromisoformat(str(value)[:10])


def describe_key(key: Key | None) -> str:
    """A key as a person reads it: `12`, `'ab'`, `(3, 'x')`; None is an open end."""
    if key is None:
        return "end"
    shown = [str(value) if isinstance(value, int | uuid.UUID) else repr(value) for value in key]
    return shown[0] if len(shown) == 1 else f"({', '.join(shown)})"
