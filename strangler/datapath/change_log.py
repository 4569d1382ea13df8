"""Reading a feed's change log in commit order, and measuring how far behind a sync is.

`seq` orders the log, but on PostgreSQL a transaction that took its `seq` early may commit
after one that took a later `seq`; a reader that remembered only "the last seq applied" would
skip it for ever. So on PostgreSQL the log is read in windows between two snapshots of the
source: a window holds the entries whose transaction had committed by the later snapshot but
not by the earlier one, read in `seq` order and paged by `seq`; when it is exhausted the later
snapshot becomes the new low mark (the technique of PgQ's ticks). No lock is taken on the
writers' path. SQLite commits one writer at a time, so there `seq` order is commit order and the
position is `seq` alone. This module must never write to a target database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, text

from strangler.datapath.positions import Position

SNAPSHOT = "CAST(:{name} AS pg_snapshot)"
NOW = {
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
    "postgresql": "extract(epoch FROM clock_timestamp())::double precision",
}


@dataclass(frozen=True)
class Entry:
    seq: int
    table_name: str
    row_key: str  # the JSON array of the row's key (see `keys`)
    captured_at: float


@dataclass(frozen=True)
class Window:
    """What one read returned: entries to apply and the position once they are applied."""

    entries: list[Entry]
    position: Position
    is_opened: bool  # this read took a new snapshot: it saw every commit made before it
    is_closed: bool  # nothing is left in the window: applying it catches up to that snapshot


@dataclass(frozen=True)
class Lag:
    """How far a feed is behind its source: entries not yet applied, and the oldest one's age."""

    entries: int
    seconds: float


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction on the source; on PostgreSQL one snapshot for all its reads."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


def _pending(position: Position, parameters: dict[str, Any]) -> str:
    """SQL conditions for the entries of `position`'s feed not yet applied (PostgreSQL)."""
    conditions = ["feed = :feed"]
    if position.low is not None:
        parameters["low"] = position.low
        low = SNAPSHOT.format(name="low")
        conditions.append(f"txid >= pg_snapshot_xmin({low})")
        conditions.append(f"NOT pg_visible_in_snapshot(txid, {low})")
    return " AND ".join(conditions)


def read(connection: Connection, feed: str, position: Position, limit: int) -> Window:
    """The next entries of `feed` after `position`, at most `limit`, in commit order."""
    if connection.dialect.name != "postgresql":
        rows = connection.execute(
            text(
                "SELECT seq, table_name, row_key, captured_at FROM strangler_change_log"
                " WHERE feed = :feed AND seq > :after ORDER BY seq LIMIT :limit"
            ),
            {"feed": feed, "after": position.after_seq, "limit": limit},
        ).all()
        entries = [Entry(*row) for row in rows]
        after = entries[-1].seq if entries else position.after_seq
        return Window(entries, replace(position, after_seq=after), True, len(entries) < limit)
    is_opened = position.high is None
    high = position.high
    if high is None:
        high = str(connection.scalar(text("SELECT CAST(pg_current_snapshot() AS text)")))
    after = 0 if is_opened else position.after_seq
    parameters: dict[str, Any] = {"feed": feed, "high": high, "after": after, "limit": limit}
    rows = connection.execute(
        text(
            "SELECT seq, table_name, row_key, captured_at FROM strangler_change_log"
            f" WHERE {_pending(position, parameters)} AND seq > :after"
            f" AND pg_visible_in_snapshot(txid, {SNAPSHOT.format(name='high')})"
            " ORDER BY seq LIMIT :limit"
        ),
        parameters,
    ).all()
    entries = [Entry(*row) for row in rows]
    if len(entries) < limit:
        following = replace(position, low=high, high=None, after_seq=0)
        return Window(entries, following, is_opened, True)
    following = replace(position, high=high, after_seq=entries[-1].seq)
    return Window(entries, following, is_opened, False)


def lag(engine: Engine, feed: str, position: Position) -> Lag:
    """Entries committed but not applied, and the age of the oldest by the source's clock."""
    parameters: dict[str, Any] = {"feed": feed}
    with engine.connect() as connection:
        dialect = connection.dialect.name
        if dialect == "postgresql":
            conditions = _pending(position, parameters)
            if position.high is not None:
                parameters |= {"high": position.high, "after": position.after_seq}
                high = SNAPSHOT.format(name="high")
                conditions += f" AND NOT (seq <= :after AND pg_visible_in_snapshot(txid, {high}))"
        else:
            parameters["after"] = position.after_seq
            conditions = "feed = :feed AND seq > :after"
        row = connection.execute(
            text(
                f"SELECT count(*), {NOW[dialect]} - min(captured_at)"
                f" FROM strangler_change_log WHERE {conditions}"
            ),
            parameters,
        ).one()
    return Lag(int(row[0]), max(0.0, float(row[1] or 0.0)))


def prune(engine: Engine, feed: str, position: Position) -> int:
    """Delete entries of `feed` already applied (they will never be read again)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            if position.low is None:
                return 0
            statement = (
                "DELETE FROM strangler_change_log WHERE feed = :feed"
                f" AND txid < pg_snapshot_xmin({SNAPSHOT.format(name='low')})"
            )
            parameters: dict[str, Any] = {"feed": feed, "low": position.low}
        else:
            statement = "DELETE FROM strangler_change_log WHERE feed = :feed AND seq <= :after"
            parameters = {"feed": feed, "after": position.after_seq}
        return int(connection.execute(text(statement), parameters).rowcount or 0)


def newest_seq(engine: Engine, feed: str) -> int:
    """The last seq of `feed` in the log now (0 when empty)."""
    with engine.connect() as connection:
        found = connection.scalar(
            text("SELECT max(seq) FROM strangler_change_log WHERE feed = :feed"), {"feed": feed}
        )
    return int(found or 0)
