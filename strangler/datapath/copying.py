"""Copying one table's rows from one database to another, fast and idempotently.

A `TableCopy` reads rows as the source's driver returns them and upserts them by key in one
statement per batch, bypassing the ORM and SQLAlchemy's per-row parameter handling, which cost
more than the databases themselves: on SQLite an executemany of `INSERT ... ON CONFLICT (key)
DO UPDATE`; on PostgreSQL a `COPY` into a temporary table, then one `INSERT ... SELECT ... ON
CONFLICT` (psycopg's executemany costs ~75 us of Python per row; COPY a few).
Values are converted only where the two sides store a type differently (a SQLite datetime is
text, a PostgreSQL one a timestamp): through SQLAlchemy's own result processor of the source and
bind processor of the target, composed once per column. Between two databases of one kind the
driver's values pass through untouched. Copying a row again only rewrites it. This module must
never decide which rows to copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Table
from sqlalchemy.types import TypeEngine

from strangler.datapath.contexts import Direction, TableMap

KEYS_PER_QUERY = 900  # SQLite allows 32,766 bound parameters per statement; stay far below
COPY_FROM_ROWS = 64  # on PostgreSQL, batches this large go through COPY
Convert = Callable[[Any], Any] | None


def _converter(column_type: TypeEngine[Any], source: Dialect, target: Dialect) -> Convert:
    if source.name == target.name:
        return None
    read = column_type.dialect_impl(source).result_processor(source, None)
    write = column_type.dialect_impl(target).bind_processor(target)
    if read is None:
        return write
    if write is None:
        return read
    return lambda value: write(read(value))


class TableCopy:
    """One table of a feed, copied in one direction, as driver-level tuples."""

    def __init__(
        self,
        mapping: TableMap,
        direction: Direction,
        source: Table,
        target: Table,
        source_dialect: Dialect,
        target_dialect: Dialect,
    ) -> None:
        self.mapping = mapping
        self.direction = direction
        self.columns = mapping.columns
        self.key_index = mapping.columns.index(mapping.key)
        self.source, self.target = source, target
        self.source_dialect, self.target_dialect = source_dialect, target_dialect
        self.converters = [
            _converter(source.c[name].type, source_dialect, target_dialect) for name in self.columns
        ]
        self.defaulted = (
            tuple(name for name, _ in mapping.service_defaults)
            if direction is Direction.FORWARD
            else ()
        )
        self._read = self._select_sql(source_dialect, source.name)
        self._upsert = self._upsert_sql()
        self._staging = f"strangler_copy_{target.name}"

    def _select_sql(self, dialect: Dialect, table: str) -> str:
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(name) for name in self.columns)
        return f"SELECT {names} FROM {quote(table)} WHERE {quote(self.mapping.key)}"

    def _names(self) -> str:
        quote = self.target_dialect.identifier_preparer.quote
        return ", ".join(quote(name) for name in (*self.columns, *self.defaulted))

    def _on_conflict(self) -> str:
        quote = self.target_dialect.identifier_preparer.quote
        changed = ", ".join(
            f"{quote(name)} = excluded.{quote(name)}"
            for name in (*self.columns, *self.defaulted)
            if name != self.mapping.key
        )
        return f" ON CONFLICT ({quote(self.mapping.key)}) DO UPDATE SET {changed}"

    def _upsert_sql(self) -> str:
        marker = "?" if self.target_dialect.paramstyle == "qmark" else "%s"
        markers = ", ".join(marker for _ in (*self.columns, *self.defaulted))
        table = self.target_dialect.identifier_preparer.quote(self.target.name)
        return f"INSERT INTO {table} ({self._names()}) VALUES ({markers}){self._on_conflict()}"

    def _marker(self) -> str:
        return "?" if self.source_dialect.paramstyle == "qmark" else "%s"

    def key(self, row: Sequence[Any]) -> int:
        return int(row[self.key_index])

    def read_range(
        self, connection: Connection, after: int, upto: int | None, limit: int
    ) -> list[tuple[Any, ...]]:
        """Source rows with `after < key <= upto` (no upper bound when None), in key order."""
        marker, key = (
            self._marker(),
            self.source_dialect.identifier_preparer.quote(self.mapping.key),
        )
        bound = f" AND {key} <= {marker}" if upto is not None else ""
        statement = f"{self._read} > {marker}{bound} ORDER BY {key} LIMIT {int(limit)}"
        parameters = (after, upto) if upto is not None else (after,)
        return [tuple(row) for row in connection.exec_driver_sql(statement, parameters)]

    def read_keys(self, connection: Connection, keys: Iterable[int]) -> list[tuple[Any, ...]]:
        """Source rows whose key is in `keys` (missing ones are simply absent)."""
        wanted = sorted(set(keys))
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(wanted), KEYS_PER_QUERY):
            batch = wanted[start : start + KEYS_PER_QUERY]
            markers = ", ".join(self._marker() for _ in batch)
            statement = f"{self._read} IN ({markers})"
            found.extend(tuple(row) for row in connection.exec_driver_sql(statement, tuple(batch)))
        return found

    def write(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Upsert `rows` (as read from the source) into the target, one executemany."""
        if not rows:
            return
        converters = list(enumerate(self.converters))
        extra = self._defaults()
        if any(convert is not None for _, convert in converters):
            rows = [
                tuple(
                    value if convert is None else convert(value)
                    for (_, convert), value in zip(converters, row, strict=True)
                )
                for row in rows
            ]
        if extra:
            rows = [row + extra for row in rows]
        if self.target_dialect.name == "postgresql" and len(rows) >= COPY_FROM_ROWS:
            self._copy_in(connection, rows)
        else:
            connection.exec_driver_sql(self._upsert, rows)

    def _copy_in(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        """COPY into a session-local staging table, then upsert from it (PostgreSQL)."""
        table = self.target_dialect.identifier_preparer.quote(self.target.name)
        names = self._names()
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self._staging} ON COMMIT DELETE ROWS"
            f" AS SELECT {names} FROM {table} WITH NO DATA"
        )
        connection.exec_driver_sql(f"TRUNCATE {self._staging}")
        driver = connection.connection.driver_connection
        assert driver is not None
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {self._staging} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        staged = f"SELECT {names} FROM {self._staging}"
        connection.exec_driver_sql(f"INSERT INTO {table} ({names}) {staged}{self._on_conflict()}")

    def _defaults(self) -> tuple[Any, ...]:
        values = self.mapping.defaults_for(self.direction)
        typed = []
        for name in self.defaulted:
            column_type = self.target.c[name].type.dialect_impl(self.target_dialect)
            bind = column_type.bind_processor(self.target_dialect)
            typed.append(values[name] if bind is None else bind(values[name]))
        return tuple(typed)

    def as_dicts(self, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        """Rows as {column: value} (for hooks that want names)."""
        return [dict(zip(self.columns, row, strict=True)) for row in rows]
