"""Backfill: copy a context's existing rows into the service's database, resumably.

Capture starts first, so every write from then on is in the change log. Then every table's
largest key is recorded at once as its bound (`high_key`; rows created later come through the
log). Each table (parents first, in the order the foreign keys give) is copied in key-ordered
chunks up to its bound: each chunk is read from the source and written to the target *with*
the checkpoint that says it is done, in one target transaction. A chunk stops at a number of
rows or of bytes, so large rows make smaller chunks. A killed backfill resumes after the last
committed chunk and never copies a row twice; a chunk also removes target rows of its key
range that the source lacks, so a second backfill over old data ends equal too.
Keys need not grow: a row created after its table's bound, wherever its key falls, is in the
log. A child whose parent arrived after the parent table was copied is left to the log too
(`links`), and references a table makes to itself are set once the whole feed is copied. The
monolith keeps taking writes throughout; the sync, which starts once every table is complete,
brings the copied rows current. This module must never apply the change log.

    STRANGLER_WORKSPACE=... MONOLITH_DATABASE_URL=... FORUM_DATABASE_URL=... \
        python -m strangler.datapath.backfill forum

runs one backfill as a bare process (no progress bars; `strangler data backfill` has them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from strangler.datapath import capture, links, rows
from strangler.datapath.contexts import Direction, Feed, TableMap
from strangler.datapath.copying import MAX_CHUNK_BYTES, Row, TableCopy
from strangler.datapath.keys import Key
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
    left_to_the_feed: int = 0  # rows whose parents came after their table was copied

    @property
    def rows_per_second(self) -> float:
        return self.rows_this_run / self.seconds if self.seconds else 0.0


@dataclass
class Checkpoint:
    high_key: str | None  # encoded keys (`keys.KeyColumns.encode`); None: empty, not begun
    last_key: str | None
    rows_copied: int
    is_complete: bool


def backfill(
    link: Link,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
    max_chunk_bytes: int = MAX_CHUNK_BYTES,
) -> BackfillReport:
    """Start capture where missing, then copy every table of the context; resumes by itself."""
    if chunk_rows < 1 or max_chunk_bytes < 1:
        raise ValueError("chunks need at least one row and one byte")
    link.ensure_bookkeeping()
    capture.start(link)
    started = time.perf_counter()
    report = BackfillReport()
    for feed in link.context.feeds:
        _bound(link, feed)
        for table in feed.tables:
            copied, skipped, done = _copy_table(
                link, feed, table, (chunk_rows, max_chunk_bytes), progress
            )
            report.rows_this_run += copied
            report.left_to_the_feed += skipped
            report.tables.append(TableReport(feed.name, table.monolith, done.rows_copied, True))
        report.left_to_the_feed += links.link_pending(link, feed)
    with link.service.begin() as connection:
        for table in link.context.main.tables:
            rows.advance_sequences(connection, link.context.target_table(table, Direction.FORWARD))
    report.seconds = time.perf_counter() - started
    return report


def _copy_table(
    link: Link,
    feed: Feed,
    table: TableMap,
    limits: tuple[int, int],
    progress: Progress | None,
) -> tuple[int, int, Checkpoint]:
    """Copy one table chunk by chunk: (rows copied, rows left to the feed, last checkpoint)."""
    context = link.context
    copy = link.copy(table, Direction.FORWARD)
    checkpoint = _checkpoint(link, feed, table)
    total = 0
    if checkpoint.high_key is not None:
        with link.monolith.connect() as reader:
            high = copy.source_key.decode(checkpoint.high_key)
            total = rows.count_upto(reader, copy.source_key, high)
    copied = skipped = 0
    label = table.monolith if feed is context.main else f"{table.monolith} -> {table.service}"
    while not checkpoint.is_complete:
        chunk: list[Row] = []
        after = None if checkpoint.last_key is None else copy.source_key.decode(checkpoint.last_key)
        if checkpoint.high_key is not None:  # None: the table was empty when capture began
            with link.monolith.connect() as reader:
                high = copy.source_key.decode(checkpoint.high_key)
                chunk = copy.read_range(reader, after, high, *limits)
        try:
            moved = _commit_chunk(link, feed, copy, checkpoint, after, chunk, careful=False)
        except IntegrityError:  # a parent arrived after its table was copied: look row by row
            moved = _commit_chunk(link, feed, copy, checkpoint, after, chunk, careful=True)
        if moved is None:  # another run moved on: follow it
            checkpoint = _checkpoint(link, feed, table)
            continue
        checkpoint, written = moved
        copied += written
        skipped += len(chunk) - written
        if progress is not None:
            progress(label, checkpoint.rows_copied, max(total, checkpoint.rows_copied))
    return copied, skipped, checkpoint


def _commit_chunk(
    link: Link,
    feed: Feed,
    copy: TableCopy,
    checkpoint: Checkpoint,
    after: Key | None,
    chunk: list[Row],
    careful: bool,
) -> tuple[Checkpoint, int] | None:
    """Write a chunk and its checkpoint in one target transaction: (checkpoint, rows written),
    or None when another run committed this chunk first."""
    with link.service.begin() as writer:
        current = _lock(writer, feed, copy.mapping)
        if current.last_key != checkpoint.last_key:
            return None
        written = chunk
        if chunk:
            written = _write_chunk(writer, link, feed, copy, after, chunk, careful)
        last = copy.source_key.encode(copy.key(chunk[-1])) if chunk else None
        return _advance(writer, feed, copy.mapping, current, last, len(chunk)), len(written)


def _write_chunk(
    writer: Connection,
    link: Link,
    feed: Feed,
    copy: TableCopy,
    after: Key | None,
    chunk: list[Row],
    careful: bool,
) -> list[Row]:
    """Make the target's rows of the chunk's key range the chunk's; the rows written."""
    target = copy.target_key
    present = {copy.key(row) for row in chunk}
    existing = rows.keys_in_range(writer, target, after, copy.key(chunk[-1]))
    stale = [found for found in existing if found not in present]
    hook = link.context.on_service_rows
    removed = rows.fetch_keys(writer, target, copy.columns, stale) if hook else []
    rows.delete_keys(writer, target, stale)
    if careful:
        chunk = links.without_missing_parents(writer, link, feed, copy, chunk)
    if copy.deferred:
        copy.write(writer, chunk, unlinked=True)
        links.remember(writer, feed, copy, copy.link(writer, chunk))
    else:
        copy.write(writer, chunk)
    if hook is not None:
        hook(writer, copy.target.name, copy.as_dicts(chunk) + removed)
    return chunk


def _where(feed: Feed, table: TableMap) -> ColumnElement[bool]:
    return and_(checkpoints.c.feed == feed.name, checkpoints.c.table_name == table.service)


def _bound(link: Link, feed: Feed) -> None:
    """On a first run, record every table's bound: the largest keys now, children first.

    Rows made after capture began are the log's, wherever their keys fall; so a bound taken
    after capture began covers every row that the log will not bring.
    """
    with link.service.connect() as connection:
        known = connection.scalar(select(func.count()).where(checkpoints.c.feed == feed.name))
    if known:
        return
    bounds = {}
    with link.monolith.connect() as reader:
        for table in reversed(feed.tables):
            keys = link.copy(table, Direction.FORWARD).source_key
            largest = rows.largest_key(reader, keys)
            bounds[table.service] = None if largest is None else keys.encode(largest)
    with link.service.begin() as writer:
        for table in feed.tables:
            writer.execute(
                insert(checkpoints).values(
                    feed=feed.name,
                    table_name=table.service,
                    high_key=bounds[table.service],
                    last_key=None,
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
    writer: Connection,
    feed: Feed,
    table: TableMap,
    current: Checkpoint,
    last: str | None,
    count: int,
) -> Checkpoint:
    if last is None:
        writer.execute(
            update(checkpoints)
            .where(_where(feed, table))
            .values(is_complete=True, finished_at=time.time())
        )
        return Checkpoint(current.high_key, current.last_key, current.rows_copied, True)
    following = Checkpoint(current.high_key, last, current.rows_copied + count, False)
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
    from strangler.workspace import find_workspace

    parser = argparse.ArgumentParser(prog="python -m strangler.datapath.backfill")
    parser.add_argument("context")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--chunk-bytes", type=int, default=MAX_CHUNK_BYTES)
    arguments = parser.parse_args(argv)
    configure_logging(f"{arguments.context}-backfill")
    workspace = find_workspace()
    monolith = os.environ.get(workspace.url_variable("monolith"), "sqlite:///monolith.sqlite3")
    service = os.environ.get(
        workspace.url_variable(arguments.context), f"sqlite:///{arguments.context}.sqlite3"
    )
    with Link.open(arguments.context, monolith, service, workspace=workspace) as link:
        report = backfill(link, arguments.chunk_rows, max_chunk_bytes=arguments.chunk_bytes)
    get_logger("backfill").info(
        "backfilled", rows=report.rows_this_run, rows_per_second=round(report.rows_per_second)
    )


if __name__ == "__main__":
    main()
