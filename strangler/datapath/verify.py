"""Verify: per-chunk checksums of a feed's tables on both sides, and a repair of what differs.

The owner's rows are read in key-ordered chunks; each chunk's key range is read on the replica
too, and both are reduced to a checksum by the same Python code (typed values rendered one
canonical way: datetimes as ISO text with microseconds, booleans as words, numbers and text as
themselves, text prefixed by its length), so a SQLite side and a PostgreSQL side agree exactly
when their rows do. Chunks that differ are reported as key ranges, with the keys that differ.
`repair` re-copies only those ranges, holding the feed's position lock so the sync cannot
interleave an older row.
Under live writes a difference may only be lag: re-check after the sync drains. This module
must never change the owner's data.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.types import TypeEngine

from strangler.datapath import positions, rows
from strangler.datapath.contexts import Direction, Feed, TableMap
from strangler.datapath.link import Link

DEFAULT_CHUNK_ROWS = 5000
MAX_KEYS_PER_DIFFERENCE = 100
_BEFORE_EVERY_KEY = -(2**63)
_NO_LIMIT = 2**62
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Difference:
    """A key range `after < key <= upto` (open ends are None) whose rows differ."""

    feed: str
    table: str  # the owner's table
    after: int | None
    upto: int | None
    owner_rows: int
    replica_rows: int
    keys: tuple[int, ...]  # the differing keys (the first MAX_KEYS_PER_DIFFERENCE)

    def describe(self) -> str:
        low = "start" if self.after is None else f"{self.after}"
        high = "end" if self.upto is None else f"{self.upto}"
        shown = ", ".join(str(key) for key in self.keys[:10])
        more = "..." if len(self.keys) > 10 else ""
        return (
            f"{self.table} ({low}, {high}]: {self.owner_rows} rows on the owner, "
            f"{self.replica_rows} on the replica; keys {shown}{more}"
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


Render = Callable[[Any], str]


def _render_for(column_type: TypeEngine[Any]) -> Render:
    """How one column's values are written as text, the same way on every backend."""
    try:
        kind = column_type.python_type
    except NotImplementedError:
        kind = object
    if issubclass(kind, bool):
        return lambda value: "true" if value else "false"
    if issubclass(kind, datetime):
        return lambda value: value.isoformat(timespec="microseconds")
    if issubclass(kind, str):
        return lambda value: f"{len(value)}:{value}"  # length first: no separator is ambiguous
    return str


class Canon:
    """Rows of one table as canonical text: equal text if and only if equal typed values."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.renders = [_render_for(table.c[name].type) for name in columns]

    def text(self, row: Sequence[Any]) -> str:
        return "\x1f".join(
            "~" if value is None else render(value)
            for render, value in zip(self.renders, row, strict=True)
        )


def _compared_columns(mapping: TableMap) -> list[str]:
    return [mapping.key, *(name for name in mapping.columns if name != mapping.key)]


def chunk_digest(texts: Iterable[str]) -> str:
    """A chunk's checksum: of its rows' canonical text, in key order."""
    return hashlib.blake2b(
        "\x1e".join(texts).encode("utf-8", "surrogatepass"), digest_size=16
    ).hexdigest()


def _read(
    connection: Connection,
    table: Table,
    mapping: TableMap,
    after: int | None,
    upto: int | None,
    limit: int | None = None,
) -> list[tuple[int, str]]:
    """(key, canonical text of the compared columns) in key order."""
    columns = _compared_columns(mapping)
    canon = Canon(table, columns)
    key = table.c[mapping.key]
    query = select(*(table.c[name] for name in columns)).order_by(key)
    if after is not None:
        query = query.where(key > after)
    if upto is not None:
        query = query.where(key <= upto)
    if limit is not None:
        query = query.limit(limit)
    return [(row[0], canon.text(row)) for row in connection.execute(query)]


def _compare(
    feed: Feed,
    table: str,
    after: int | None,
    upto: int | None,
    owner: list[tuple[int, str]],
    replica: list[tuple[int, str]],
) -> Difference | None:
    ours, theirs = dict(owner), dict(replica)
    if len(owner) == len(replica) and chunk_digest(ours.values()) == chunk_digest(theirs.values()):
        return None
    keys = sorted(key for key in ours.keys() | theirs.keys() if ours.get(key) != theirs.get(key))
    limited = tuple(keys[:MAX_KEYS_PER_DIFFERENCE])
    return Difference(feed.name, table, after, upto, len(owner), len(replica), limited)


def verify(
    link: Link,
    direction: Direction,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
    feeds: Sequence[Feed] | None = None,
) -> VerifyReport:
    """Compare every table of the feeds flowing in `direction`, owner against replica."""
    started = time.perf_counter()
    report = VerifyReport(direction)
    for feed in feeds if feeds is not None else _flowing(link, direction):
        for mapping in feed.tables:
            _verify_table(link, feed, mapping, direction, chunk_rows, report, progress)
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
    chunk_rows: int,
    report: VerifyReport,
    progress: Progress | None,
) -> None:
    owner_table = link.context.source_table(mapping, direction)
    replica_table = link.context.target_table(mapping, direction)
    label = mapping.source_name(direction)
    with link.source(direction).connect() as owner, link.target(direction).connect() as replica:
        total = int(owner.scalar(select(func.count()).select_from(owner_table)) or 0)
        after: int | None = None
        done = 0
        while True:
            ours = _read(owner, owner_table, mapping, after, None, chunk_rows)
            is_last = len(ours) < chunk_rows
            upto = None if is_last else ours[-1][0]
            theirs = _read(replica, replica_table, mapping, after, upto)
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


def verify_ranges(link: Link, direction: Direction, ranges: Sequence[Difference]) -> VerifyReport:
    """Check again exactly the ranges of earlier differences (e.g. after the sync drained)."""
    started = time.perf_counter()
    report = VerifyReport(direction)
    with link.source(direction).connect() as owner, link.target(direction).connect() as replica:
        for earlier in ranges:
            feed = link.context.feed(earlier.feed)
            mapping = feed.table(earlier.table, direction)
            ours = _read(
                owner,
                link.context.source_table(mapping, direction),
                mapping,
                earlier.after,
                earlier.upto,
            )
            theirs = _read(
                replica, link.context.target_table(mapping, direction), mapping, earlier.after,
                earlier.upto,
            )  # fmt: skip
            found = _compare(feed, earlier.table, earlier.after, earlier.upto, ours, theirs)
            if found is not None:
                report.differences.append(found)
            report.chunks += 1
            report.rows += len(ours)
    report.seconds = time.perf_counter() - started
    return report


def verify_keys(
    link: Link, feed: Feed, direction: Direction, keys: dict[str, set[int]]
) -> VerifyReport:
    """Compare exactly the given keys (by the replica's table name): one difference per key."""
    started = time.perf_counter()
    report = VerifyReport(direction)
    with link.source(direction).connect() as owner, link.target(direction).connect() as replica:
        for mapping in feed.tables:
            wanted = keys.get(mapping.target_name(direction), set())
            if not wanted:
                continue
            owner_table = link.context.source_table(mapping, direction)
            replica_table = link.context.target_table(mapping, direction)
            columns = _compared_columns(mapping)
            ours = rows.fetch_keys(owner, owner_table, columns, mapping.key, wanted)
            theirs = rows.fetch_keys(replica, replica_table, columns, mapping.key, wanted)
            canon = Canon(owner_table, columns)
            mine = {row[mapping.key]: canon.text(list(row.values())) for row in ours}
            other = {row[mapping.key]: canon.text(list(row.values())) for row in theirs}
            for key in sorted(wanted):
                if mine.get(key) != other.get(key):
                    report.differences.append(
                        Difference(
                            feed.name,
                            mapping.source_name(direction),
                            key - 1,
                            key,
                            int(key in mine),
                            int(key in other),
                            (key,),
                        )
                    )
            report.rows += len(ours)
            report.chunks += 1
    report.seconds = time.perf_counter() - started
    return report


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
        key = copy.mapping.key
        after = difference.after if difference.after is not None else _BEFORE_EVERY_KEY
        with link.target(direction).begin() as writer:
            positions.lock(writer, feed.position_key(direction))
            with link.source(direction).connect() as owner:
                found = copy.read_range(owner, after, difference.upto, _NO_LIMIT)
            present = {copy.key(row) for row in found}
            existing = rows.keys_in_range(writer, copy.target, key, after, difference.upto)
            stale = [found_key for found_key in existing if found_key not in present]
            removed = rows.fetch_keys(writer, copy.target, copy.columns, key, stale) if hook else []
            repaired.rows_deleted += rows.delete_keys(writer, copy.target, key, stale)
            copy.write(writer, found)
            if hook is not None:
                hook(writer, copy.target.name, copy.as_dicts(found) + removed)
        repaired.ranges += 1
        repaired.rows_copied += len(found)
    return repaired
