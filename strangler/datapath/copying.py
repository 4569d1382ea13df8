"""Copying one table's rows from one database to another, fast and idempotently.

A `TableCopy` reads rows as the source's driver returns them and upserts them by key in one
statement per batch, bypassing the ORM and SQLAlchemy's per-row parameter handling, which cost
more than the databases themselves: on SQLite an executemany of `INSERT ... ON CONFLICT (key)
DO UPDATE`; on PostgreSQL a `COPY` into a temporary table, then one `INSERT ... SELECT ... ON
CONFLICT` (psycopg's executemany costs ~75 us of Python per row; COPY a few). A table of key
columns only (an association table) is inserted with `DO NOTHING`.
Values are converted only where the two sides store a type differently (a SQLite datetime is
text, a PostgreSQL one a timestamp; a UUID is hex text on SQLite): through SQLAlchemy's own
result processor of the source and bind processor of the target, composed once per column, and
a timestamp with a time zone on one side and without on the other is taken as UTC. Between two
databases of one kind and type the driver's values pass through untouched. Reads stop at a
number of rows or of bytes, whichever comes first, so a chunk of large rows stays small in
memory. References the feed defers (`TableMap.deferred`) can be written after their rows
(`write(unlinked=True)`, then `link`). Copying a row again only rewrites it. This module must
never decide which rows to copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, Dialect, ForeignKeyConstraint, Table, update
from sqlalchemy.types import DateTime, TypeEngine

from strangler.datapath.contexts import Direction, TableMap
from strangler.datapath.keys import Key, KeyColumns, python_type

KEY_VALUES_PER_QUERY = 900  # SQLite allows 32,766 bound parameters per statement; stay far below
COPY_FROM_ROWS = 64  # on PostgreSQL, batches this large go through COPY
MAX_CHUNK_BYTES = 16 * 1024 * 1024  # a chunk stops growing at this much text and binary data
FETCH_ROWS = 100
Convert = Callable[[Any], Any] | None
Row = tuple[Any, ...]


def _is_aware(column_type: TypeEngine[Any], dialect: Dialect) -> bool:
    """Whether this side keeps a timestamp's time zone (SQLite never does)."""
    return bool(getattr(column_type, "timezone", False)) and dialect.name != "sqlite"


def _timezone(aware: bool) -> Callable[[Any], Any]:
    def normalise(value: Any) -> Any:
        if not isinstance(value, datetime):
            return value
        if aware and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        if not aware and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    return normalise


def _converter(
    source_type: TypeEngine[Any], target_type: TypeEngine[Any], source: Dialect, target: Dialect
) -> Convert:
    is_timestamp = isinstance(target_type, DateTime)
    aware = _is_aware(target_type, target)
    differs = is_timestamp and _is_aware(source_type, source) != aware
    if source.name == target.name and not differs:
        return None
    steps = [
        source_type.dialect_impl(source).result_processor(source, None),
        _timezone(aware) if is_timestamp else None,
        target_type.dialect_impl(target).bind_processor(target),
    ]
    chain = [step for step in steps if step is not None]

    def convert(value: Any) -> Any:
        for step in chain:
            value = step(value)
        return value

    return convert if chain else None


def _binder(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """Python value -> what this side's driver takes for the column."""
    bind = column.type.dialect_impl(dialect).bind_processor(dialect)
    aware = _timezone(_is_aware(column.type, dialect))
    if isinstance(column.type, DateTime):
        return (lambda value: bind(aware(value))) if bind else aware
    return bind or (lambda value: value)


def _reader(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """What this side's driver returns for the column -> Python value."""
    read = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return read or (lambda value: value)


def _is_plain(column: Column[Any], dialect: Dialect) -> bool:
    """The driver's values of this column are its Python values, both ways."""
    impl = column.type.dialect_impl(dialect)
    return impl.result_processor(dialect, None) is None and impl.bind_processor(dialect) is None


def row_bytes(row: Sequence[Any]) -> int:
    """About how much memory a row's values take (text and binary by length)."""
    return sum(
        len(value) if isinstance(value, str | bytes | bytearray | memoryview) else 8
        for value in row
    )


def _may_be_large(column: Column[Any]) -> bool:
    """Text, binary or JSON without a small length: the values a chunk's size depends on."""
    length = getattr(column.type, "length", None)
    kind = python_type(column.type)
    return (kind in (str, bytes) or kind is dict or kind is object) and (
        length is None or length > 1024
    )


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
        self.source, self.target = source, target
        self.source_dialect, self.target_dialect = source_dialect, target_dialect
        self.source_columns = mapping.source_columns(direction)
        self.columns = mapping.target_columns(direction)  # as the target calls them
        self.source_key = KeyColumns(source, mapping.source_key(direction))
        self.target_key = KeyColumns(target, mapping.target_key(direction))
        self.key_indexes = [self.source_columns.index(name) for name in self.source_key.names]
        self.deferred = mapping.target_deferred(direction)
        self.deferred_indexes = [self.columns.index(name) for name in self.deferred]
        self.converters = [
            _converter(source.c[name].type, target.c[target_name].type, source_dialect,
                       target_dialect)
            for name, target_name in zip(self.source_columns, self.columns, strict=True)
        ]  # fmt: skip
        self.key_readers = [_reader(column, source_dialect) for column in self.source_key.columns]
        # One integer key column, read and bound as it is stored: the common case, fast.
        is_plain = self.source_key.kinds == ["int"] and _is_plain(
            self.source_key.columns[0], source_dialect
        )
        self._plain_key = self.key_indexes[0] if is_plain else None
        self._sized = [
            index for index, name in enumerate(self.source_columns)
            if _may_be_large(source.c[name])
        ]  # fmt: skip
        self.key_binders = [_binder(column, source_dialect) for column in self.source_key.columns]
        self.filled = tuple(mapping.filled(direction))  # names of target-only columns
        self.initial = tuple(mapping.initial(direction))
        self._read = self._select_sql()
        self._upsert = self._upsert_sql()
        self._staging = f"strangler_copy_{target.name}"

    # Reading the source --------------------------------------------------------------------

    def _quote(self, dialect: Dialect, name: str) -> str:
        return dialect.identifier_preparer.quote(name)

    def _select_sql(self) -> str:
        names = ", ".join(self._quote(self.source_dialect, name) for name in self.source_columns)
        return f"SELECT {names} FROM {self._quote(self.source_dialect, self.source.name)}"

    def key(self, row: Sequence[Any]) -> Key:
        """The Python key of a row as read from the source."""
        if self._plain_key is not None:
            return (row[self._plain_key],)
        return tuple(read(row[index]) for read, index in zip(self.key_readers, self.key_indexes,
                                                              strict=True))  # fmt: skip

    def _driver_key(self, key: Key) -> list[Any]:
        if self._plain_key is not None:  # an integer binds as it is
            return list(key)
        return [bind(value) for bind, value in zip(self.key_binders, key, strict=True)]

    def read_range(
        self,
        connection: Connection,
        after: Key | None,
        upto: Key | None,
        limit: int,
        max_bytes: int = MAX_CHUNK_BYTES,
    ) -> list[Row]:
        """Source rows with `after < key <= upto` (open ends are None), in key order: at most
        `limit` rows, and fewer once they hold `max_bytes` (always at least one)."""
        dialect, key = self.source_dialect, self.source_key
        conditions, parameters = [], []
        if after is not None:
            conditions.append(f"{key.sql_row(dialect)} > {key.sql_markers(dialect)}")
            parameters += self._driver_key(after)
        if upto is not None:
            conditions.append(f"{key.sql_row(dialect)} <= {key.sql_markers(dialect)}")
            parameters += self._driver_key(upto)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        statement = f"{self._read}{where} ORDER BY {key.sql_order_by(dialect)} LIMIT {int(limit)}"
        result = connection.exec_driver_sql(
            statement, tuple(parameters), execution_options={"stream_results": True}
        )
        found: list[Row] = []
        size = 0
        try:
            while batch := result.fetchmany(FETCH_ROWS):
                rows = [tuple(row) for row in batch]
                more = self._bytes(rows)
                if size + more < max_bytes:  # the common case: the whole batch fits
                    found.extend(rows)
                    size += more
                    continue
                for row in rows:
                    found.append(row)
                    size += self._bytes([row])
                    if size >= max_bytes:
                        return found
        finally:
            result.close()
        return found

    def _bytes(self, rows: list[Row]) -> int:
        """The length of the values that may be large, in these rows."""
        sized = self._sized
        return sum(len(value) for row in rows for index in sized if (value := row[index]))

    def read_keys(self, connection: Connection, keys: Iterable[Key]) -> list[Row]:
        """Source rows whose key is in `keys` (missing ones are simply absent)."""
        wanted = list(dict.fromkeys(keys))
        per_query = max(1, KEY_VALUES_PER_QUERY // len(self.source_key.names))
        found: list[Row] = []
        for start in range(0, len(wanted), per_query):
            batch = wanted[start : start + per_query]
            among = self.source_key.sql_among(self.source_dialect, len(batch))
            parameters = tuple(value for key in batch for value in self._driver_key(key))
            statement = f"{self._read} WHERE {among}"
            found.extend(tuple(row) for row in connection.exec_driver_sql(statement, parameters))
        return found

    # Writing the target --------------------------------------------------------------------

    def _names(self) -> list[str]:
        return [*self.columns, *self.filled, *self.initial]

    def _on_conflict(self) -> str:
        quote = self.target_dialect.identifier_preparer.quote
        keys = ", ".join(quote(name) for name in self.target_key.names)
        changed = ", ".join(
            f"{quote(name)} = excluded.{quote(name)}"
            for name in (*self.columns, *self.filled)
            if name not in self.target_key.names
        )
        if not changed:  # nothing but the key: a row that is there is already right
            return f" ON CONFLICT ({keys}) DO NOTHING"
        return f" ON CONFLICT ({keys}) DO UPDATE SET {changed}"

    def _upsert_sql(self) -> str:
        marker = "?" if self.target_dialect.paramstyle == "qmark" else "%s"
        names = self._names()
        markers = ", ".join(marker for _ in names)
        quoted = ", ".join(self._quote(self.target_dialect, name) for name in names)
        table = self._quote(self.target_dialect, self.target.name)
        return f"INSERT INTO {table} ({quoted}) VALUES ({markers}){self._on_conflict()}"

    def converted(self, rows: list[Row]) -> list[Row]:
        """Source rows as the target's driver takes them (copied columns only)."""
        converters = self.converters
        if all(convert is None for convert in converters):
            return rows
        return [
            tuple(value if convert is None or value is None else convert(value)
                  for convert, value in zip(converters, row, strict=True))
            for row in rows
        ]  # fmt: skip

    def write(self, connection: Connection, rows: list[Row], unlinked: bool = False) -> None:
        """Upsert `rows` (as read from the source) into the target; `unlinked` writes the
        deferred references as NULL (`link` sets them once their parents are there)."""
        if not rows:
            return
        ready = self.converted(rows)
        if unlinked and self.deferred_indexes:
            blank = set(self.deferred_indexes)
            ready = [tuple(None if i in blank else v for i, v in enumerate(row)) for row in ready]
        extra = self._extra()
        if extra:
            ready = [row + extra for row in ready]
        if self.target_dialect.name == "postgresql" and len(ready) >= COPY_FROM_ROWS:
            self._copy_in(connection, ready)
        else:
            connection.exec_driver_sql(self._upsert, ready)

    def _copy_in(self, connection: Connection, rows: list[Row]) -> None:
        """COPY into a session-local staging table, then upsert from it (PostgreSQL)."""
        table = self._quote(self.target_dialect, self.target.name)
        names = ", ".join(self._quote(self.target_dialect, name) for name in self._names())
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

    def _extra(self) -> Row:
        """The target-only columns' values, as the target's driver takes them."""
        values = {**self.mapping.filled(self.direction), **self.mapping.initial(self.direction)}
        names = [*self.filled, *self.initial]
        return tuple(_binder(self.target.c[name], self.target_dialect)(values[name])
                     for name in names)  # fmt: skip

    def unlink(self, connection: Connection, keys: Iterable[Key]) -> None:
        """Set the deferred references of these target rows to NULL (before rows they point
        at are deleted; the rows are written again, and linked, right after)."""
        wanted = list(dict.fromkeys(keys))
        per_query = max(1, KEY_VALUES_PER_QUERY // len(self.target_key.names))
        for start in range(0, len(wanted), per_query):
            connection.execute(
                update(self.target)
                .where(self.target_key.among(wanted[start : start + per_query]))
                .values(dict.fromkeys(self.deferred))
            )

    def link(self, connection: Connection, rows: list[Row]) -> list[Key]:
        """Set the deferred references of rows written `unlinked`, where their parents are on
        the target; the keys of the rows whose parents are not (yet)."""
        wanted = [row for row in self.converted(rows)
                  if any(row[index] is not None for index in self.deferred_indexes)]  # fmt: skip
        if not wanted:
            return []
        quote = lambda name: self._quote(self.target_dialect, name)  # noqa: E731
        marker = "?" if self.target_dialect.paramstyle == "qmark" else "%s"
        target_keys = [self.columns.index(name) for name in self.target_key.names]
        settings = ", ".join(f"{quote(name)} = {marker}" for name in self.deferred)
        match = " AND ".join(f"{quote(name)} = {marker}" for name in self.target_key.names)
        parents = self._parent_checks()
        checks = "".join(f" AND {sql}" for sql, _ in parents)
        statement = f"UPDATE {quote(self.target.name)} SET {settings} WHERE {match}{checks}"
        connection.exec_driver_sql(
            statement,
            [
                (*(row[i] for i in self.deferred_indexes), *(row[i] for i in target_keys),
                 *(row[i] for _, indexes in parents for i in indexes))
                for row in wanted
            ],
        )  # fmt: skip
        return self._unlinked(connection, wanted, target_keys)

    def _parent_checks(self) -> list[tuple[str, list[int]]]:
        """`EXISTS` of the parent row for each deferred foreign key the target declares (a
        reference the target does not enforce needs none)."""
        quote = lambda name: self._quote(self.target_dialect, name)  # noqa: E731
        marker = "?" if self.target_dialect.paramstyle == "qmark" else "%s"
        found = []
        for constraint in self.target.foreign_key_constraints:
            assert isinstance(constraint, ForeignKeyConstraint)
            names = [column.name for column in constraint.columns]
            if not set(names) <= set(self.deferred):
                continue
            parent = constraint.referred_table.name
            pairs = [f"{quote(element.column.name)} = {marker}" for element in constraint.elements]
            found.append(
                (
                    f"EXISTS (SELECT 1 FROM {quote(parent)} WHERE {' AND '.join(pairs)})",
                    [self.columns.index(name) for name in names],
                )
            )
        return found

    def _unlinked(self, connection: Connection, wanted: list[Row], indexes: list[int]) -> list[Key]:
        """Of the rows meant to be linked, those whose references are still NULL."""
        target = self.target_key
        readers = [_reader(column, self.target_dialect) for column in target.columns]
        per_query = max(1, KEY_VALUES_PER_QUERY // len(target.names))
        quote = lambda name: self._quote(self.target_dialect, name)  # noqa: E731
        nulls = " OR ".join(f"{quote(name)} IS NULL" for name in self.deferred)
        keys = ", ".join(quote(name) for name in target.names)
        missing: list[Key] = []
        for start in range(0, len(wanted), per_query):
            batch = wanted[start : start + per_query]
            among = target.sql_among(self.target_dialect, len(batch))
            statement = f"SELECT {keys} FROM {quote(self.target.name)} WHERE ({nulls}) AND {among}"
            parameters = tuple(row[i] for row in batch for i in indexes)
            for found in connection.exec_driver_sql(statement, parameters):
                missing.append(tuple(read(v) for read, v in zip(readers, found, strict=True)))
        return missing

    def as_dicts(self, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        """Rows as {target column: value} (for hooks that want names)."""
        return [dict(zip(self.columns, row, strict=True)) for row in rows]
