"""Applying a feed's change log to its target: idempotent, in order, one transaction a batch.

A batch locks the feed's position in the target, reads the next entries from the source's
log, re-reads the rows they name from the source, then in the target deletes the rows the
source no longer has (children first) and upserts the others (parents first), records the
keys when verify asked to track them, and saves the new position: all in one commit. Applying
a batch again, or an entry late, writes the source's current row again, so nothing is lost or
doubled whatever is killed when. A table whose references the feed defers (it references
itself) is written in two steps: its rows, then their references. A batch the target refuses
(a foreign key) is tried again at once with more entries, since the parent it waits for may be
just past the batch's end (one transaction's entries split over two batches); if that does
not help, it fails and is retried later, the position unmoved. A forward feed applies nothing
until its backfill is complete: the backfill may write a row older than the one the sync would
have written. This module must never change a feed's capture or its direction.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from strangler.datapath import change_log, links, positions, rows
from strangler.datapath.contexts import Direction, Feed
from strangler.datapath.keys import Key
from strangler.datapath.link import Link
from strangler.datapath.tables import checkpoints, touched_keys

# A refused batch is tried again with up to this many times its entries, before giving up.
GROWTH = (4, 16)


@dataclass(frozen=True)
class Batch:
    """What one batch did; `captured_at` (source clock) lets the caller measure each lag."""

    feed: str
    direction: Direction
    is_applying: bool  # false: the feed is inactive, or still waiting for its backfill
    entries: int = 0
    upserted: int = 0
    deleted: int = 0
    is_opened: bool = False
    is_closed: bool = True
    captured_at: list[float] = field(default_factory=list)


def is_backfilled(connection: Connection, feed: Feed) -> bool:
    """Whether every table of `feed` has a complete backfill checkpoint in this target, with
    no reference left to set."""
    found = connection.scalars(
        select(checkpoints.c.table_name).where(
            checkpoints.c.feed == feed.name, checkpoints.c.is_complete.is_(True)
        )
    ).all()
    if not {table.service for table in feed.tables} <= set(found):
        return False
    if not feed.defers_references:
        return True
    pending = connection.scalar(
        select(func.count()).where(touched_keys.c.position_key == links.pending_key(feed))
    )
    return not pending


def apply_batch(link: Link, feed: Feed, direction: Direction, limit: int) -> Batch:
    """Apply the next (at most `limit`) entries of `feed` in `direction`; see the module doc.

    It looks before it locks: an idle feed costs two reads and no write, which matters when
    the target is the monolith's SQLite file that the monolith's own writers need.
    """
    for growth in (1, *GROWTH):
        try:
            return _apply_batch(link, feed, direction, limit * growth)
        except IntegrityError:
            if growth == GROWTH[-1]:
                raise
    raise AssertionError("unreachable")


def _apply_batch(link: Link, feed: Feed, direction: Direction, limit: int) -> Batch:
    target = link.target(direction)
    key = feed.position_key(direction)
    seen = positions.current(target, key)
    if seen is None or not seen.is_active or not _is_ready(link, feed, direction):
        return Batch(feed.name, direction, False)
    window, keys, fetched = _look(link, feed, direction, seen, limit)
    if not window.entries and (seen.high is None or window.position == seen):
        # Nothing new. (On PostgreSQL the low mark need not move: an empty window just opened
        # applied nothing. A window opened earlier whose last page was full ends here empty:
        # its closing position is saved below, or every later commit would stay hidden.)
        return Batch(feed.name, direction, True, is_opened=window.is_opened)
    with target.begin() as connection:
        position = positions.lock(connection, key)
        if position is None or not position.is_active:
            return Batch(feed.name, direction, False)
        if position != seen:  # another applier moved on meanwhile: look again, under the lock
            window, keys, fetched = _look(link, feed, direction, position, limit)
        upserted, deleted = _write(connection, link, feed, direction, keys, fetched)
        if position.is_tracking:
            _track(connection, position.key, link, feed, direction, keys)
        applied = position.applied_entries + len(window.entries)
        positions.save(connection, replace(window.position, applied_entries=applied))
    return Batch(
        feed.name,
        direction,
        True,
        len(window.entries),
        upserted,
        deleted,
        window.is_opened,
        window.is_closed,
        [entry.captured_at for entry in window.entries],
    )


def _is_ready(link: Link, feed: Feed, direction: Direction) -> bool:
    if direction is Direction.REVERSE:
        return True
    with link.target(direction).connect() as connection:
        return is_backfilled(connection, feed)


def _keys_by_table(
    link: Link, feed: Feed, direction: Direction, window: change_log.Window
) -> dict[str, set[Key]]:
    """The keys the window's entries name, by source table, as Python values."""
    logged: dict[str, list[str]] = defaultdict(list)
    for entry in window.entries:
        logged[entry.table_name].append(entry.row_key)
    keys: dict[str, set[Key]] = {}
    for name, texts in logged.items():
        decode = link.copy(feed.table(name, direction), direction).source_key.decode
        keys[name] = {decode(text) for text in texts}
    return keys


Fetched = dict[str, list[tuple[Any, ...]]]


def _look(
    link: Link, feed: Feed, direction: Direction, position: positions.Position, limit: int
) -> tuple[change_log.Window, dict[str, set[Key]], Fetched]:
    """The next window of entries, the keys they name, and the source's current rows for
    those keys."""
    with change_log.reading(link.source(direction)) as reader:
        window = change_log.read(reader, feed.name, position, limit)
        keys = _keys_by_table(link, feed, direction, window)
        fetched = {
            name: link.copy(feed.table(name, direction), direction).read_keys(reader, wanted)
            for name, wanted in keys.items()
        }
    return window, keys, fetched


def _write(
    connection: Connection,
    link: Link,
    feed: Feed,
    direction: Direction,
    keys: dict[str, set[Key]],
    fetched: Fetched,
) -> tuple[int, int]:
    """Deletes children first, then upserts parents first (deferred references last), so
    foreign keys always hold."""
    hook = link.context.on_service_rows if direction is Direction.FORWARD else None
    affected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for table in feed.tables:  # a row about to be deleted may be pointed at by one rewritten
        copy = link.copy(table, direction)
        found = fetched.get(table.source_name(direction))
        if found and copy.deferred:
            copy.unlink(connection, (copy.key(row) for row in found))
    deleted = 0
    for table in reversed(feed.tables):
        copy = link.copy(table, direction)
        name = table.source_name(direction)
        gone = keys.get(name, set()) - {copy.key(row) for row in fetched.get(name, [])}
        if gone:
            if hook is not None:
                affected[copy.target.name] += rows.fetch_keys(
                    connection, copy.target_key, copy.columns, gone
                )
            deleted += rows.delete_keys(connection, copy.target_key, gone)
    upserted = 0
    for table in feed.tables:
        copy = link.copy(table, direction)
        found = fetched.get(table.source_name(direction))
        if found:
            copy.write(connection, found, unlinked=bool(copy.deferred))
            upserted += len(found)
            if hook is not None:
                affected[copy.target.name] += copy.as_dicts(found)
    for table in feed.tables:
        copy = link.copy(table, direction)
        found = fetched.get(table.source_name(direction))
        if found and copy.deferred:
            copy.link(connection, found)
    if hook is not None:
        for name, changed in affected.items():
            hook(connection, name, changed)
    return upserted, deleted


def _track(
    connection: Connection,
    position_key: str,
    link: Link,
    feed: Feed,
    direction: Direction,
    keys: dict[str, set[Key]],
) -> None:
    """Remember which keys changed, so verify can re-check exactly those later."""
    build = postgres_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = build(touched_keys).on_conflict_do_nothing()
    records: list[dict[str, str]] = []
    for name, wanted in keys.items():
        copy = link.copy(feed.table(name, direction), direction)
        records.extend(
            {
                "position_key": position_key,
                "table_name": copy.target.name,
                "row_key": copy.source_key.encode(key),
            }
            for key in wanted
        )
    if records:
        connection.execute(statement, records)


Progress = Callable[[str, int], None]


@dataclass
class Drained:
    """What a drain applied, per feed, and how long it took."""

    entries: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class DrainTimeout(RuntimeError):
    """The feed did not catch up within the time allowed."""


def drain(
    link: Link,
    feeds: list[tuple[Feed, Direction]],
    limit: int = 2000,
    timeout: float = 120.0,
    progress: Progress | None = None,
) -> Drained:
    """Apply batches until each feed has caught up with every commit made before the call.

    A feed has caught up once a read that took its snapshot after this call began finds
    nothing more (under a write freeze that is zero lag). Feeds that are inactive or wait for
    their backfill are skipped.
    """
    started = time.monotonic()
    report = Drained()
    for feed, direction in feeds:
        applied = 0
        has_fresh_window = False
        while True:
            batch = apply_batch(link, feed, direction, limit)
            if not batch.is_applying:
                break
            applied += batch.entries
            if progress is not None and batch.entries:
                progress(feed.name, applied)
            has_fresh_window = has_fresh_window or batch.is_opened
            if has_fresh_window and batch.is_closed:
                break
            if time.monotonic() - started > timeout:
                raise DrainTimeout(f"{feed.name} did not catch up within {timeout:.0f}s")
        report.entries[feed.name] = applied
    report.seconds = time.monotonic() - started
    return report


def lags(link: Link, feeds: list[tuple[Feed, Direction]]) -> dict[str, change_log.Lag]:
    """Each feed's lag now (feeds with no position yet are left out)."""
    found: dict[str, change_log.Lag] = {}
    for feed, direction in feeds:
        position = positions.current(link.target(direction), feed.position_key(direction))
        if position is not None and position.is_active:
            found[feed.name] = change_log.lag(link.source(direction), feed.name, position)
    return found
