"""Where each feed's sync stands, kept in the feed's target database.

A position row is committed in the same transaction as the rows it accounts for, so a sync
killed at any moment neither loses nor re-applies a batch. It is also the gate: a feed applies
only while its position is active, and every applier locks the row first, so two appliers of
one feed (the sync process and a cutover's drain) take turns. This module must never read the
change log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from sqlalchemy import Connection, Engine, delete, insert, select, update

from strangler.datapath.tables import positions, touched_keys


@dataclass(frozen=True)
class Position:
    """How far a feed has applied its change log.

    `after_seq` is the last entry applied. On PostgreSQL the log is read in *windows* between
    two snapshots: everything visible in `low` is applied; `high` (when set) is the window being
    applied, in `seq` order, up to `after_seq`. SQLite commits one writer at a time, so `seq`
    alone is commit order there and both snapshots stay empty.
    """

    key: str
    is_active: bool = True
    low: str | None = None
    high: str | None = None
    after_seq: int = 0
    applied_entries: int = 0
    is_tracking: bool = False


def _row_of(position: Position) -> dict[str, object]:
    return {
        "is_active": position.is_active,
        "low_snapshot": position.low,
        "high_snapshot": position.high,
        "after_seq": position.after_seq,
        "applied_entries": position.applied_entries,
        "is_tracking": position.is_tracking,
        "updated_at": time.time(),
    }


def _from_row(key: str, row: object) -> Position:
    return Position(
        key,
        bool(row.is_active),  # type: ignore[attr-defined]
        row.low_snapshot,  # type: ignore[attr-defined]
        row.high_snapshot,  # type: ignore[attr-defined]
        int(row.after_seq),  # type: ignore[attr-defined]
        int(row.applied_entries),  # type: ignore[attr-defined]
        bool(row.is_tracking),  # type: ignore[attr-defined]
    )


def read(connection: Connection, key: str) -> Position | None:
    row = connection.execute(select(positions).where(positions.c.position_key == key)).first()
    return None if row is None else _from_row(key, row)


def lock(connection: Connection, key: str) -> Position | None:
    """Inside a transaction: take the position's row lock first, then read it.

    Writing first is what makes it a lock on both backends: a row lock on PostgreSQL, the
    database's write lock on SQLite (a read first could not be upgraded once another writer
    committed).
    """
    touched = connection.execute(
        update(positions).where(positions.c.position_key == key).values(updated_at=time.time())
    )
    if touched.rowcount == 0:
        return None
    return read(connection, key)


def save(connection: Connection, position: Position) -> None:
    connection.execute(
        update(positions)
        .where(positions.c.position_key == position.key)
        .values(**_row_of(position))
    )


def reset(engine: Engine, key: str, is_tracking: bool = False) -> Position:
    """Start a feed from the beginning of its log (which a fresh capture has just emptied)."""
    position = Position(key, is_tracking=is_tracking)
    with engine.begin() as connection:
        connection.execute(delete(positions).where(positions.c.position_key == key))
        connection.execute(delete(touched_keys).where(touched_keys.c.position_key == key))
        connection.execute(insert(positions).values(position_key=key, **_row_of(position)))
    return position


def change(engine: Engine, key: str, **fields: bool) -> Position | None:
    """Switch `is_active` or `is_tracking` of a feed, under its lock; None if it has none."""
    with engine.begin() as connection:
        position = lock(connection, key)
        if position is None:
            return None
        position = replace(position, **fields)  # type: ignore[arg-type]
        save(connection, position)
        if fields.get("is_tracking") is True:
            connection.execute(delete(touched_keys).where(touched_keys.c.position_key == key))
        return position


def current(engine: Engine, key: str) -> Position | None:
    with engine.connect() as connection:
        return read(connection, key)


def touched(engine: Engine, key: str) -> dict[str, set[str]]:
    """The keys a tracking feed has applied since tracking began (encoded, see `keys`), by
    target table."""
    found: dict[str, set[str]] = {}
    with engine.connect() as connection:
        for table_name, row_key in connection.execute(
            select(touched_keys.c.table_name, touched_keys.c.row_key).where(
                touched_keys.c.position_key == key
            )
        ):
            found.setdefault(table_name, set()).add(row_key)
    return found


def forget_touched(engine: Engine, key: str, keys: dict[str, set[str]]) -> None:
    """Drop these tracked keys: a key applied again from now on is tracked anew."""
    with engine.begin() as connection:
        for table_name, wanted in keys.items():
            ordered = sorted(wanted)
            for start in range(0, len(ordered), 900):
                connection.execute(
                    delete(touched_keys).where(
                        touched_keys.c.position_key == key,
                        touched_keys.c.table_name == table_name,
                        touched_keys.c.row_key.in_(ordered[start : start + 900]),
                    )
                )
