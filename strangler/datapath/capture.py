"""Change capture: triggers that append every insert, update and delete to a change log.

For each table of a feed, in the feed's source database, a trigger appends one row per changed
row to `strangler_change_log`: the feed, the table, the row's key (a JSON array of its key
columns, made by the database's own JSON functions: `keys.KeyColumns.decode` reads it), the
operation and when. The log has the same shape on SQLite and PostgreSQL; its `seq` orders
everything. Rows carry keys, not data: the sync re-reads each changed row, so applying an
entry twice, or late, still converges on the source's current state. On PostgreSQL each
entry also records the writing transaction's id (`txid`), which the sync uses to read entries
in commit order (see `change_log`). Triggers are installed and removed per feed and
direction, so two feeds may capture one table (the monolith's `users` feeds both the users
service and the forum's `authors`). This module must never read or apply the log.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, delete, text
from sqlalchemy.exc import OperationalError

from strangler.datapath import positions, tables
from strangler.datapath.contexts import Context, Direction, Feed, TableMap
from strangler.datapath.link import Link

TRIGGER_PREFIX = "strangler_capture_"
# Names go into DDL quoted; these characters can neither end a quote nor a string literal.
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ $-]{0,62}$")
_LONGEST_TRIGGER = 55  # PostgreSQL cuts identifiers at 63 bytes
_LOCK_ATTEMPTS = 40

SQLITE_LOG = """
CREATE TABLE IF NOT EXISTS strangler_change_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    txid BIGINT,
    feed VARCHAR(64) NOT NULL,
    table_name VARCHAR(64) NOT NULL,
    row_key TEXT NOT NULL,
    operation CHAR(1) NOT NULL,
    captured_at DOUBLE PRECISION NOT NULL
)"""
POSTGRES_LOG = """
CREATE TABLE IF NOT EXISTS strangler_change_log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    feed VARCHAR(64) NOT NULL,
    table_name VARCHAR(64) NOT NULL,
    row_key TEXT NOT NULL,
    operation CHAR(1) NOT NULL,
    captured_at DOUBLE PRECISION NOT NULL
        DEFAULT extract(epoch FROM clock_timestamp())::double precision
)"""
LOG_INDEXES = {
    "sqlite": ["CREATE INDEX IF NOT EXISTS ix_strangler_change_log_feed_seq"
               " ON strangler_change_log (feed, seq)"],
    "postgresql": [
        "CREATE INDEX IF NOT EXISTS ix_strangler_change_log_feed_seq"
        " ON strangler_change_log (feed, seq)",
        "CREATE INDEX IF NOT EXISTS ix_strangler_change_log_feed_txid"
        " ON strangler_change_log (feed, txid)",
    ],
}  # fmt: skip
# Seconds since the epoch by the database's own clock, at the moment of the write.
SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"


def trigger_name(feed: Feed, table: str) -> str:
    """A lowercase name, the same in every catalogue (long ones end in a digest)."""
    plain = re.sub(r"[^a-z0-9_]", "_", f"{feed.name}_{table}".lower())
    if len(TRIGGER_PREFIX) + len(plain) > _LONGEST_TRIGGER:
        digest = hashlib.sha1(f"{feed.name}/{table}".encode()).hexdigest()[:10]
        plain = f"{plain[: _LONGEST_TRIGGER - len(TRIGGER_PREFIX) - 11]}_{digest}"
    return f"{TRIGGER_PREFIX}{plain}"


def _checked(*names: str) -> None:
    for name in names:
        if not _SAFE_NAME.match(name):
            raise ValueError(f"{name!r} is not a plain lowercase name; refusing to build DDL")


def _key_of(row: str, key: tuple[str, ...], dialect: str) -> str:
    """SQL for the JSON array of a row's key (`NEW` or `OLD`), as `keys.decode` reads it."""
    values = ", ".join(f'{row}."{column}"' for column in key)
    return f"json_array({values})" if dialect == "sqlite" else f"json_build_array({values})::text"


def _key_changed(key: tuple[str, ...], dialect: str) -> str:
    distinct = "IS NOT" if dialect == "sqlite" else "IS DISTINCT FROM"
    return " OR ".join(f'OLD."{column}" {distinct} NEW."{column}"' for column in key)


def _sqlite_triggers(feed: Feed, table: TableMap, direction: Direction) -> list[str]:
    source = table.source_name(direction)
    name, key = trigger_name(feed, source), table.source_key(direction)
    columns = ", ".join(f'"{column}"' for column in table.source_columns(direction))
    entry = "INSERT INTO strangler_change_log (feed, table_name, row_key, operation, captured_at)"
    values = f"'{feed.name}', '{source}'"
    new, old = _key_of("NEW", key, "sqlite"), _key_of("OLD", key, "sqlite")
    return [
        f"""CREATE TRIGGER IF NOT EXISTS {name}_insert AFTER INSERT ON "{source}" BEGIN
            {entry} VALUES ({values}, {new}, 'I', {SQLITE_NOW}); END""",
        f"""CREATE TRIGGER IF NOT EXISTS {name}_update AFTER UPDATE OF {columns} ON "{source}"
            BEGIN
            {entry} VALUES ({values}, {new}, 'U', {SQLITE_NOW});
            {entry} SELECT {values}, {old}, 'D', {SQLITE_NOW}
                WHERE {_key_changed(key, "sqlite")};
            END""",
        f"""CREATE TRIGGER IF NOT EXISTS {name}_delete AFTER DELETE ON "{source}" BEGIN
            {entry} VALUES ({values}, {old}, 'D', {SQLITE_NOW}); END""",
    ]


def _postgres_triggers(feed: Feed, table: TableMap, direction: Direction) -> list[str]:
    source = table.source_name(direction)
    name, key = trigger_name(feed, source), table.source_key(direction)
    columns = ", ".join(f'"{column}"' for column in table.source_columns(direction))
    entry = "INSERT INTO strangler_change_log (feed, table_name, row_key, operation)"
    values = f"'{feed.name}', '{source}'"
    new, old = _key_of("NEW", key, "postgresql"), _key_of("OLD", key, "postgresql")
    function = f"""
        CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $capture$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                {entry} VALUES ({values}, {old}, 'D');
            ELSE
                {entry} VALUES ({values}, {new}, left(TG_OP, 1));
                IF TG_OP = 'UPDATE' AND ({_key_changed(key, "postgresql")}) THEN
                    {entry} VALUES ({values}, {old}, 'D');
                END IF;
            END IF;
            RETURN NULL;
        END
        $capture$"""
    trigger = f"""
        CREATE TRIGGER {name} AFTER INSERT OR DELETE OR UPDATE OF {columns} ON "{source}"
        FOR EACH ROW EXECUTE FUNCTION {name}()"""
    return [function, f'DROP TRIGGER IF EXISTS {name} ON "{source}"', trigger]


def _installed(connection: Connection) -> set[str]:
    if connection.dialect.name == "sqlite":
        found = connection.scalars(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE :prefix"),
            {"prefix": TRIGGER_PREFIX + "%"},
        )
        return {name.rsplit("_", 1)[0] for name in found}
    found = connection.scalars(
        text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE :prefix"),
        {"prefix": TRIGGER_PREFIX + "%"},
    )
    return set(found)


def is_installed(engine: Engine, feed: Feed, direction: Direction) -> bool:
    """Whether every table of `feed` has its trigger in the source database of `direction`."""
    with engine.connect() as connection:
        names = _installed(connection)
    wanted = {trigger_name(feed, table.source_name(direction)) for table in feed.tables}
    return wanted <= names


def install(engine: Engine, feed: Feed, direction: Direction) -> bool:
    """Create the change log if needed and the feed's triggers; False if already installed.

    A fresh install first deletes whatever the feed left in the log before (a previous
    direction's entries mean nothing now). On PostgreSQL, creating a trigger waits for the
    table's writers in flight, so once this returns every earlier write has committed.
    """
    if is_installed(engine, feed, direction):
        return False
    for table in feed.tables:
        _checked(feed.name, table.source_name(direction), *table.source_columns(direction))
    _with_lock_retries(engine, lambda connection: _install(connection, feed, direction))
    return True


def _install(connection: Connection, feed: Feed, direction: Direction) -> None:
    dialect = connection.dialect.name
    connection.exec_driver_sql(SQLITE_LOG if dialect == "sqlite" else POSTGRES_LOG)
    for statement in LOG_INDEXES[dialect]:
        connection.exec_driver_sql(statement)
    connection.execute(delete(tables.change_log).where(tables.change_log.c.feed == feed.name))
    build = _sqlite_triggers if dialect == "sqlite" else _postgres_triggers
    # Children first: a writer touches a child before its parent (a post, then its thread's
    # counter), so taking the child's lock first cannot deadlock with it.
    for table in reversed(feed.tables):
        for statement in build(feed, table, direction):
            connection.exec_driver_sql(statement)


def remove(engine: Engine, feed: Feed, direction: Direction) -> None:
    """Drop the feed's triggers and its entries from the log (idempotent)."""
    _with_lock_retries(engine, lambda connection: _remove(connection, feed, direction))


def _remove(connection: Connection, feed: Feed, direction: Direction) -> None:
    for table in reversed(feed.tables):
        source = table.source_name(direction)
        name = trigger_name(feed, source)
        if connection.dialect.name == "sqlite":
            for operation in ("insert", "update", "delete"):
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}_{operation}")
        else:
            connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {name}() CASCADE")
    has_log = connection.dialect.has_table(connection, tables.change_log.name)
    if has_log:
        connection.execute(delete(tables.change_log).where(tables.change_log.c.feed == feed.name))


def _with_lock_retries(engine: Engine, work: Callable[[Connection], None]) -> None:
    """Run DDL in one transaction; on PostgreSQL give way to the application's writers.

    DDL on a table waits for its writers in flight. A short lock timeout, retried, means a
    writer is never the one a deadlock or a long wait hurts: the install yields and tries again.
    """
    for attempt in range(_LOCK_ATTEMPTS):
        try:
            with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql("SET LOCAL lock_timeout = '500ms'")
                work(connection)
            return
        except OperationalError as error:
            if attempt == _LOCK_ATTEMPTS - 1 or "lock" not in str(error).lower():
                raise
            time.sleep(0.05 * (attempt + 1))


def feeds_flowing(context: Context, direction: Direction) -> list[Feed]:
    """The feeds that can flow in `direction`: all forward, only the main feed in reverse."""
    if direction is Direction.FORWARD:
        return list(context.feeds)
    return [feed for feed in context.feeds if feed.is_reversible]


def start(link: Link, direction: Direction = Direction.FORWARD) -> list[str]:
    """Capture each of the context's feeds in `direction` that is not captured yet.

    Each newly captured feed starts from an empty log with its position reset in the target
    (active; a reverse feed also tracks the keys it applies, for rollback's verify), and a
    forward feed forgets any old backfill. Feeds already captured *for this target* (it holds
    their position) are left alone, pending entries and all; triggers left behind for a target
    that no longer knows them are started afresh. Returns the feeds started.
    """
    link.ensure_bookkeeping()
    started = []
    for feed in feeds_flowing(link.context, direction):
        source, target = link.source(direction), link.target(direction)
        key = feed.position_key(direction)
        is_known = positions.current(target, key) is not None
        if is_installed(source, feed, direction):
            if is_known:
                continue
            remove(source, feed, direction)
        if direction is Direction.FORWARD:
            _forget_backfill(link, feed)
        positions.change(target, key, is_active=False)  # no applier reads a log being replaced
        install(source, feed, direction)
        positions.reset(target, key, is_tracking=direction is Direction.REVERSE)
        started.append(feed.name)
    return started


def _forget_backfill(link: Link, feed: Feed) -> None:
    """Drop the feed's checkpoints, and the references its backfill had still to set."""
    with link.service.begin() as connection:
        connection.execute(delete(tables.checkpoints).where(tables.checkpoints.c.feed == feed.name))
        connection.execute(
            delete(tables.touched_keys).where(
                tables.touched_keys.c.position_key == f"{feed.name}:links"
            )
        )


def stop(link: Link, direction: Direction = Direction.FORWARD) -> list[str]:
    """Stop capturing the context's feeds in `direction` and deactivate their positions.

    Stopping the forward capture also forgets the backfill: writes made while nothing captured
    them never reach the service, so the next start must backfill again.
    """
    link.ensure_bookkeeping()
    stopped = []
    for feed in feeds_flowing(link.context, direction):
        remove(link.source(direction), feed, direction)
        positions.change(link.target(direction), feed.position_key(direction), is_active=False)
        if direction is Direction.FORWARD:
            _forget_backfill(link, feed)
        stopped.append(feed.name)
    return stopped
