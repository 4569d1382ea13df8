"""Verify: per-chunk checksums of a feed's tables on both sides, and a repair of what differs.

The owner's rows are read in key-ordered chunks (a number of rows, fewer when they are large);
each chunk's key range is read on the replica too, in the same order (text keys by code point
on both backends), and every row is reduced to a digest by the same Python code: typed values
rendered one canonical way (timestamps as UTC ISO text with microseconds whether or not a side
keeps their time zone, UUIDs as hex, decimals normalised, booleans as words, text as UTF-8,
binary as itself, each prefixed by its length), so a SQLite side and a PostgreSQL side agree
exactly when their rows do, whatever their column names. Chunks that differ are reported as key
ranges, with the keys that differ. `repair` re-copies only those ranges, holding the feed's
position lock so the sync cannot interleave an older row.
Under live writes a difference may only be lag: re-check after the sync drains. This module
must never change the owner's data.
"""

from __future__ import annotations

import enum
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, func, select

from strangler.datapath import positions, rows
from strangler.datapath.contexts import Direction, Feed, TableMap
from strangler.datapath.copying import MAX_CHUNK_BYTES, row_bytes
from strangler.datapath.keys import Key, KeyColumns, describe_key, python_type
from strangler.datapath.link import Link

DEFAULT_CHUNK_ROWS = 5000
MAX_KEYS_PER_DIFFERENCE = 100
_NO_LIMIT = 2**62
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Difference:
    """A key range `after < key <= upto` (open ends are None) whose rows differ; or, when
    `exact`, exactly the keys listed."""

    feed: str
    table: str  # the owner's table
    after: Key | None
    upto: Key | None
    owner_rows: int
    replica_rows: int
    keys: tuple[Key, ...]  # the differing keys (the first MAX_KEYS_PER_DIFFERENCE)
    exact: bool = False

    def describe(self) -> str:
        shown = ", ".join(describe_key(key) for key in self.keys[:10])
        more = "..." if len(self.keys) > 10 else ""
        where = (
            "keys" if self.exact
            else f"({'start' if self.after is None else describe_key(self.after)},"
            f" {describe_key(self.upto)}]: keys"
        )  # fmt: skip
        return (
            f"{self.table} {where} {shown}{more}: {self.owner_rows} rows on the owner,"
            f" {self.replica_rows} on the replica"
        )


@dataclass
class VerifyReport:
    direction: Direction
    chunks: int = 0
    rows: int = 0
    differences: list[Difference] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def is_equal(self) -> bool:
        return not self.differences


Render = Callable[[Any], bytes]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _render_for(column_type: Any) -> Render:
    """How one column's values become bytes, the same way on every backend."""
    kind = python_type(column_type)
    if issubclass(kind, bool):
        return lambda value: b"true" if value else b"false"
    if issubclass(kind, datetime):
        return lambda value: _utc(value).isoformat(timespec="microseconds").encode()
    if issubclass(kind, str):
        return lambda value: str(value).encode("utf-8", "surrogatepass")
    if issubclass(kind, bytes):
        return bytes
    return _render_any


def _render_any(value: Any) -> bytes:
    """Any other value, by what it is (a driver may return a type the column did not say)."""
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, datetime):
        return _utc(value).isoformat(timespec="microseconds").encode()
    if isinstance(value, date | time_of_day):
        return value.isoformat().encode()
    if isinstance(value, uuid.UUID):
        return value.hex.encode()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f").encode()
    if isinstance(value, float | int):
        return repr(value).encode()
    if isinstance(value, timedelta):
        return repr(value.total_seconds()).encode()
    if isinstance(value, enum.Enum):
        return str(value.name).encode()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


class Canon:
    """Rows of one table as digests: equal digests if and only if equal typed values."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.renders = [_render_for(table.c[name].type) for name in columns]

    def digest(self, row: Sequence[Any]) -> bytes:
        hashed = hashlib.blake2b(digest_size=16)
        for render, value in zip(self.renders, row, strict=True):
            if value is None:
                hashed.update(b"N;")
                continue
            rendered = render(value)
            hashed.update(b"V%d:" % len(rendered))  # the length first: no separator is ambiguous
            hashed.update(rendered)
        return hashed.digest()


def chunk_digest(digests: Iterable[bytes]) -> str:
    """A chunk's checksum: of its rows' digests, in key order."""
    hashed = hashlib.blake2b(digest_size=16)
    for digest in digests:
        hashed.update(digest)
    return hashed.hexdigest()


@dataclass(frozen=True)
class _Side:
    """One side of a table for verify: its key and the compared columns, in its own names."""

    keys: KeyColumns
    columns: tuple[str, ...]  # the key first, then the other compared columns

    @classmethod
    def of(cls, link: Link, mapping: TableMap, direction: Direction, owner: bool) -> _Side:
        is_service = (direction is Direction.REVERSE) == owner
        table = (
            link.context.service_schema if is_service else link.context.monolith_schema
        ).tables[mapping.service if is_service else mapping.monolith]
        key = mapping.names(mapping.key, is_service)
        rest = mapping.names(tuple(c for c in mapping.columns if c not in mapping.key), is_service)
        return cls(KeyColumns(table, key), (*key, *rest))


def _read(
    connection: Connection,
    side: _Side,
    after: Key | None,
    upto: Key | None,
    limit: int | None = None,
    max_bytes: int | None = None,
) -> list[tuple[Key, bytes]]:
    """(key, digest of the compared columns) in key order; a limited read also stops once it
    has read `max_bytes`."""
    table, dialect = side.keys.table, connection.dialect.name
    canon = Canon(table, side.columns)
    width = len(side.keys.names)
    query = (
        select(*(table.c[name] for name in side.columns))
        .where(side.keys.within(dialect, after, upto))
        .order_by(*side.keys.order_by(dialect))
    )
    if limit is not None:
        query = query.limit(limit)
    result = connection.execute(query, execution_options={"stream_results": limit is not None})
    found: list[tuple[Key, bytes]] = []
    size = 0
    try:
        for row in result:
            found.append((tuple(row[:width]), canon.digest(row)))
            size += row_bytes(row)
            if max_bytes is not None and size >= max_bytes:
                break
    finally:
        result.close()
    return found


def _compare(
    feed: Feed,
    table: str,
    after: Key | None,
    upto: Key | None,
    owner: list[tuple[Key, bytes]],
    replica: list[tuple[Key, bytes]],
) -> Difference | None:
    ours, theirs = dict(owner), dict(replica)
    if len(owner) == len(replica) and chunk_digest(ours.values()) == chunk_digest(theirs.values()):
        return None
    keys = [key for key in (*ours, *(k for k in theirs if k not in ours))
            if ours.get(key) != theirs.get(key)]  # fmt: skip
    limited = tuple(keys[:MAX_KEYS_PER_DIFFERENCE])
    return Difference(feed.name, table, after, upto, len(owner), len(replica), limited)


def verify(
    link: Link,
    direction: Direction,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
    feeds: Sequence[Feed] | None = None,
    max_chunk_bytes: int = MAX_CHUNK_BYTES,
) -> VerifyReport:
    """Compare every table of the feeds flowing in `direction`, owner against replica."""
    started = time.perf_counter()
    report = VerifyReport(direction)
    for feed in feeds if feeds is not None else _flowing(link, direction):
        for mapping in feed.tables:
            _verify_table(link, feed, mapping, direction, (chunk_rows, max_chunk_bytes), report,
                          progress)  # fmt: skip
    report.seconds = time.perf_counter() - started
    return report


def _flowing(link: Link, direction: Direction) -> list[Feed]:
    return [
        feed for feed in link.context.feeds if direction is Direction.FORWARD or feed.is_reversible
    ]


def _verify_table(
    link: Link,
    feed: Feed,
    mapping: TableMap,
    direction: Direction,
    limits: tuple[int, int],
    report: VerifyReport,
    progress: Progress | None,
) -> None:
    owner_side = _Side.of(link, mapping, direction, owner=True)
    replica_side = _Side.of(link, mapping, direction, owner=False)
    label = mapping.source_name(direction)
    chunk_rows, max_bytes = limits
    with link.source(direction).connect() as owner, link.target(direction).connect() as replica:
        total = int(owner.scalar(select(func.count()).select_from(owner_side.keys.table)) or 0)
        after: Key | None = None
        done = 0
        while True:
            ours = _read(owner, owner_side, after, None, chunk_rows, max_bytes)
            is_last = not ours or (
                len(ours) < chunk_rows and _is_exhausted(owner, owner_side, ours[-1][0])
            )
            upto = None if is_last else ours[-1][0]
            theirs = _read(replica, replica_side, after, upto)
            found = _compare(feed, label, after, upto, ours, theirs)
            if found is not None:
                report.differences.append(found)
            report.chunks += 1
            report.rows += len(ours)
            done += len(ours)
            if progress is not None:
                progress(label, done, max(total, done))
            if is_last:
                return
            after = upto


def _is_exhausted(connection: Connection, side: _Side, last: Key) -> bool:
    """No owner row after `last` (a read cut short by its bytes is not the end)."""
    dialect = connection.dialect.name
    query = select(side.keys.columns[0]).where(side.keys.after(dialect, last)).limit(1)
    return connection.execute(query).first() is None


def verify_ranges(link: Link, direction: Direction, ranges: Sequence[Difference]) -> VerifyReport:
    """Check again exactly the ranges of earlier differences (e.g. after the sync drained)."""
    started = time.perf_counter()
    report = VerifyReport(direction)
    with link.source(direction).connect() as owner, link.target(direction).connect() as replica:
        for earlier in ranges:
            feed = link.context.feed(earlier.feed)
            mapping = feed.table(earlier.table, direction)
            if earlier.exact:
                found = _compare_keys(owner, replica, link, feed, mapping, direction,
                                      set(earlier.keys))  # fmt: skip
                report.differences.extend(found)
                report.chunks += 1
                report.rows += len(earlier.keys)
                continue
            ours = _read(owner, _Side.of(link, mapping, direction, True), earlier.after,
                         earlier.upto)  # fmt: skip
            theirs = _read(replica, _Side.of(link, mapping, direction, False), earlier.after,
                           earlier.upto)  # fmt: skip
            difference = _compare(feed, earlier.table, earlier.after, earlier.upto, ours, theirs)
            if difference is not None:
                report.differences.append(difference)
            report.chunks += 1
            report.rows += len(ours)
    report.seconds = time.perf_counter() - started
    return report


def _compare_keys(
    owner: Connection,
    replica: Connection,
    link: Link,
    feed: Feed,
    mapping: TableMap,
    direction: Direction,
    wanted: set[Key],
) -> list[Difference]:
    """One exact difference per key of `wanted` whose rows differ."""
    owner_side = _Side.of(link, mapping, direction, owner=True)
    replica_side = _Side.of(link, mapping, direction, owner=False)
    mine = _digests(owner, owner_side, wanted)
    other = _digests(replica, replica_side, wanted)
    return [
        Difference(feed.name, mapping.source_name(direction), None, None, int(key in mine),
                   int(key in other), (key,), exact=True)
        for key in wanted
        if mine.get(key) != other.get(key)
    ]  # fmt: skip


def _digests(connection: Connection, side: _Side, wanted: set[Key]) -> dict[Key, bytes]:
    canon = Canon(side.keys.table, side.columns)
    width = len(side.keys.names)
    return {
        tuple(row[name] for name in side.columns[:width]): canon.digest(
            [row[name] for name in side.columns]
        )
        for row in rows.fetch_keys(connection, side.keys, side.columns, wanted)
    }


def verify_keys(
    link: Link, feed: Feed, direction: Direction, keys: dict[str, set[str]]
) -> VerifyReport:
    """Compare exactly the given keys (encoded, by the replica's table name): one exact
    difference per key that differs."""
    started = time.perf_counter()
    report = VerifyReport(direction)
    with link.source(direction).connect() as owner, link.target(direction).connect() as replica:
        for mapping in feed.tables:
            encoded = keys.get(mapping.target_name(direction), set())
            if not encoded:
                continue
            source_keys = link.copy(mapping, direction).source_key
            wanted = {source_keys.decode(text) for text in encoded}
            report.differences.extend(
                _compare_keys(owner, replica, link, feed, mapping, direction, wanted)
            )
            report.rows += len(wanted)
            report.chunks += 1
    report.seconds = time.perf_counter() - started
    return report


def encoded_keys(link: Link, difference: Difference, direction: Direction) -> set[str]:
    """A difference's keys as the data path's tables keep them."""
    mapping = link.context.feed(difference.feed).table(difference.table, direction)
    source_keys = link.copy(mapping, direction).source_key
    return {source_keys.encode(key) for key in difference.keys}


@dataclass
class RepairReport:
    ranges: int = 0
    rows_copied: int = 0
    rows_deleted: int = 0


def repair(link: Link, report: VerifyReport) -> RepairReport:
    """Make each differing range of the replica equal to the owner's, under the feed's lock."""
    direction = report.direction
    repaired = RepairReport()
    hook = link.context.on_service_rows if direction is Direction.FORWARD else None
    for difference in report.differences:
        feed = link.context.feed(difference.feed)
        copy = link.copy(feed.table(difference.table, direction), direction)
        target = copy.target_key
        with link.target(direction).begin() as writer:
            positions.lock(writer, feed.position_key(direction))
            with link.source(direction).connect() as owner:
                if difference.exact:
                    found = copy.read_keys(owner, difference.keys)
                else:
                    found = copy.read_range(owner, difference.after, difference.upto, _NO_LIMIT,
                                            _NO_LIMIT)  # fmt: skip
            present = {copy.key(row) for row in found}
            existing = (
                list(difference.keys) if difference.exact
                else rows.keys_in_range(writer, target, difference.after, difference.upto)
            )  # fmt: skip
            stale = [key for key in existing if key not in present]
            removed = rows.fetch_keys(writer, target, copy.columns, stale) if hook else []
            repaired.rows_deleted += rows.delete_keys(writer, target, stale)
            copy.write(writer, found, unlinked=bool(copy.deferred))
            if copy.deferred:
                copy.link(writer, found)
            if hook is not None:
                hook(writer, copy.target.name, copy.as_dicts(found) + removed)
        repaired.ranges += 1
        repaired.rows_copied += len(found)
    return repaired
