"""Backfill: copy a context's existing rows into the service's database, resumably.

Capture starts first, so every write from then on is in the change log. Then every table's
largest key is recorded at once as its bound (`high_key`; rows created later come through the
log), children before parents, so every child within its bound has its parent within the
parent's bound. Each table (parents first) is copied in key-ordered chunks up to its bound: each
chunk is read from the source and written to the
target *with* the checkpoint that says it is done, in one target transaction. A killed backfill
resumes after the last committed chunk and never copies a row twice; a chunk also removes
target rows of its key range that the source lacks, so a second backfill over old data ends
equal too. The monolith keeps taking writes throughout; the sync, which starts once every table
is complete, brings the copied rows current. This module must never apply the change log.

    MONOLITH_DATABASE_URL=... FORUM_DATABASE_URL=... python -m migrations.data.backfill forum

runs one backfill as a bare process (no progress bars; `strangler data backfill` has them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, insert, select, update

from strangler.datapath import capture, rows
from strangler.datapath.contexts import Direction, Feed, TableMap
from strangler.datapath.copying import TableCopy
from strangler.datapath.link import Link
from strangler.datapath.tables import checkpoints

DEFAULT_CHUNK_ROWS = 5000
Progress = Callable[[str, int, int], None]  # (table, rows done, rows in all)


@dataclass
class TableReport:
    feed: str
    table: str
    rows_copied: int  # by every run together (the checkpoint's count)
    is_complete: bool


@dataclass
class BackfillReport:
    """What a backfill run did; `rows_this_run` over `seconds` is its speed."""

    tables: list[TableReport] = field(default_factory=list)
    rows_this_run: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows_this_run / self.seconds if self.seconds else 0.0


@dataclass
class Checkpoint:
    high_key: int | None
    last_key: int
    rows_copied: int
    is_complete: bool


def backfill(
    link: Link, chunk_rows: int = DEFAULT_CHUNK_ROWS, progress: Progress | None = None
) -> BackfillReport:
    """Start capture where missing, then copy every table of the context; resumes by itself."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    link.ensure_bookkeeping()
    capture.start(link)
    started = time.perf_counter()
    report = BackfillReport()
    for feed in link.context.feeds:
        _bound(link, feed)
        for table in feed.tables:
            copied, done = _copy_table(link, feed, table, chunk_rows, progress)
            report.rows_this_run += copied
            report.tables.append(TableReport(feed.name, table.monolith, done.rows_copied, True))
    with link.service.begin() as connection:
        for table in link.context.main.tables:
            target = link.context.target_table(table, Direction.FORWARD)
            rows.advance_sequence(connection, target, table.key)
    report.seconds = time.perf_counter() - started
    return report


def _copy_table(
    link: Link, feed: Feed, table: TableMap, chunk_rows: int, progress: Progress | None
) -> tuple[int, Checkpoint]:
    context = link.context
    source = context.source_table(table, Direction.FORWARD)
    copy = link.copy(table, Direction.FORWARD)
    checkpoint = _checkpoint(link, feed, table)
    total = 0
    if checkpoint.high_key is not None:
        with link.monolith.connect() as reader:
            counted = select(func.count()).where(source.c[table.key] <= checkpoint.high_key)
            total = int(reader.scalar(counted) or 0)
    copied = 0
    label = table.monolith if feed is context.main else f"{table.monolith} -> {table.service}"
    while not checkpoint.is_complete:
        chunk: list[tuple[Any, ...]] = []
        if checkpoint.high_key is not None:  # None: the table was empty when capture began
            with link.monolith.connect() as reader:
                chunk = copy.read_range(
                    reader, checkpoint.last_key, checkpoint.high_key, chunk_rows
                )
        with link.service.begin() as writer:
            current = _lock(writer, feed, table)
            if current.last_key != checkpoint.last_key:  # another run moved on: follow it
                checkpoint = current
                continue
            if chunk:
                _write_chunk(writer, link, copy, checkpoint.last_key, chunk)
            checkpoint = _advance(writer, feed, table, current, [copy.key(row) for row in chunk])
        copied += len(chunk)
        if progress is not None:
            progress(label, checkpoint.rows_copied, max(total, checkpoint.rows_copied))
    return copied, checkpoint


def _write_chunk(
    writer: Connection, link: Link, copy: TableCopy, after: int, chunk: list[tuple[Any, ...]]
) -> None:
    target, key = copy.target, copy.mapping.key
    present = {copy.key(row) for row in chunk}
    existing = rows.keys_in_range(writer, target, key, after, copy.key(chunk[-1]))
    stale = [found for found in existing if found not in present]
    hook = link.context.on_service_rows
    removed = rows.fetch_keys(writer, target, copy.columns, key, stale) if hook else []
    rows.delete_keys(writer, target, key, stale)
    copy.write(writer, chunk)
    if hook is not None:
        hook(writer, target.name, copy.as_dicts(chunk) + removed)


def _where(feed: Feed, table: TableMap) -> ColumnElement[bool]:
    return and_(checkpoints.c.feed == feed.name, checkpoints.c.table_name == table.service)


def _bound(link: Link, feed: Feed) -> None:
    """On a first run, record every table's bound: the largest keys now, children first.

    A child row within its bound existed when the bounds were taken (keys only grow), so its
    parent existed before it, when the parent's bound was taken after: within that bound.
    """
    with link.service.connect() as connection:
        known = connection.scalar(select(func.count()).where(checkpoints.c.feed == feed.name))
    if known:
        return
    bounds = {}
    with link.monolith.connect() as reader:
        for table in reversed(feed.tables):
            source = link.context.source_table(table, Direction.FORWARD)
            bounds[table.service] = reader.scalar(select(func.max(source.c[table.key])))
    with link.service.begin() as writer:
        for table in feed.tables:
            writer.execute(
                insert(checkpoints).values(
                    feed=feed.name,
                    table_name=table.service,
                    high_key=bounds[table.service],
                    last_key=0,
                    rows_copied=0,
                    is_complete=False,
                    started_at=time.time(),
                )
            )


def _checkpoint(link: Link, feed: Feed, table: TableMap) -> Checkpoint:
    with link.service.connect() as connection:
        row = connection.execute(select(checkpoints).where(_where(feed, table))).one()
    return Checkpoint(row.high_key, row.last_key, row.rows_copied, row.is_complete)


def _lock(writer: Connection, feed: Feed, table: TableMap) -> Checkpoint:
    """Take the checkpoint's lock (by writing it first) and read it."""
    writer.execute(update(checkpoints).where(_where(feed, table)).values(feed=feed.name))
    row = writer.execute(select(checkpoints).where(_where(feed, table))).one()
    return Checkpoint(row.high_key, row.last_key, row.rows_copied, row.is_complete)


def _advance(
    writer: Connection, feed: Feed, table: TableMap, current: Checkpoint, keys: list[int]
) -> Checkpoint:
    if not keys:
        writer.execute(
            update(checkpoints)
            .where(_where(feed, table))
            .values(is_complete=True, finished_at=time.time())
        )
        return Checkpoint(current.high_key, current.last_key, current.rows_copied, True)
    following = Checkpoint(current.high_key, keys[-1], current.rows_copied + len(keys), False)
    writer.execute(
        update(checkpoints)
        .where(_where(feed, table))
        .values(last_key=following.last_key, rows_copied=following.rows_copied)
    )
    return following


def checkpoints_of(link: Link) -> list[TableReport]:
    """Every checkpoint of the context, for status."""
    names = [feed.name for feed in link.context.feeds]
    with link.service.connect() as connection:
        if not connection.dialect.has_table(connection, checkpoints.name):
            return []
        found = connection.execute(select(checkpoints).where(checkpoints.c.feed.in_(names))).all()
    return [
        TableReport(row.feed, row.table_name, row.rows_copied, row.is_complete) for row in found
    ]


def main(argv: list[str] | None = None) -> None:
    import argparse
    import os

    from strangler.plumbing.logs import configure_logging, get_logger

    parser = argparse.ArgumentParser(prog="python -m migrations.data.backfill")
    parser.add_argument("context")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    arguments = parser.parse_args(argv)
    configure_logging(f"{arguments.context}-backfill")
    monolith = os.environ.get("MONOLITH_DATABASE_URL", "sqlite:///monolith.sqlite3")
    service = os.environ.get(
        f"{arguments.context.upper()}_DATABASE_URL", f"sqlite:///{arguments.context}.sqlite3"
    )
    with Link.open(arguments.context, monolith, service) as link:
        report = backfill(link, arguments.chunk_rows)
    get_logger("backfill").info(
        "backfilled", rows=report.rows_this_run, rows_per_second=round(report.rows_per_second)
    )


if __name__ == "__main__":
    main()
