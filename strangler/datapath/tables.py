"""The data path's own bookkeeping tables, kept in the databases it moves data between.

In a feed's *source* database: `strangler_change_log` (created with the capture triggers, see
`capture`). In a feed's *target* database, committed in the same transaction as the rows they
describe: `strangler_feed_positions` (how far the sync has applied), `strangler_backfill` (the
backfill's checkpoint per table) and `strangler_touched_keys` (keys applied since verify last
looked, so cutover re-verifies only those; and, under `<feed>:links`, rows whose deferred
references a backfill still has to set). In the monolith's database: `strangler_contexts`
(who owns each context, and any cutover or rollback in progress). Keys are kept as text, the
JSON arrays of `keys.KeyColumns.encode`, so one shape serves keys of any kind and width. None
of them belongs to an application's schema, so alembic environments ignore every `strangler_`
table. This module must never hold logic beyond declaring and creating them.
"""

from __future__ import annotations

import warnings

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SAWarning

PREFIX = "strangler_"

bookkeeping = MetaData()

positions = Table(
    "strangler_feed_positions",
    bookkeeping,
    Column("position_key", String(80), primary_key=True),
    Column("is_active", Boolean, nullable=False),
    Column("low_snapshot", Text, nullable=True),
    Column("high_snapshot", Text, nullable=True),
    Column("after_seq", BigInteger, nullable=False),
    Column("applied_entries", BigInteger, nullable=False),
    Column("is_tracking", Boolean, nullable=False),
    Column("updated_at", Float, nullable=False),
)

checkpoints = Table(
    "strangler_backfill",
    bookkeeping,
    Column("feed", String(64), primary_key=True),
    Column("table_name", String(64), primary_key=True),
    Column("high_key", Text, nullable=True),  # None: the table was empty
    Column("last_key", Text, nullable=True),  # None: nothing copied yet
    Column("rows_copied", BigInteger, nullable=False),
    Column("is_complete", Boolean, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
)

touched_keys = Table(
    "strangler_touched_keys",
    bookkeeping,
    Column("position_key", String(80), primary_key=True),
    Column("table_name", String(64), primary_key=True),
    Column("row_key", Text, primary_key=True),
)

contexts = Table(
    "strangler_contexts",
    bookkeeping,
    Column("context", String(32), primary_key=True),
    Column("owner", String(16), nullable=False),
    Column("operation", String(16), nullable=False),
    Column("step", String(64), nullable=False),
    Column("last_freeze_seconds", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
)

# Declared for queries only: `capture` creates it with backend-specific DDL (PostgreSQL adds
# the writing transaction's id, `txid`, which orders nothing but tells the sync what committed).
change_log = Table(
    "strangler_change_log",
    MetaData(),
    Column("seq", BigInteger, primary_key=True),
    Column("feed", String(64), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("row_key", Text, nullable=False),
    Column("operation", String(1), nullable=False),
    Column("captured_at", Float, nullable=False),
)


def ensure(engine: Engine) -> None:
    """Create the bookkeeping tables a target or the monolith needs, if they are missing.

    Two processes may race to create them (a backfill and a sync starting together); the one
    that loses finds them there.
    """
    for attempt in range(3):
        try:
            bookkeeping.create_all(engine, checkfirst=True)
            break
        except (IntegrityError, ProgrammingError, OperationalError):
            if attempt == 2:
                raise
    refuse_integer_keys(engine)


class OlderBookkeeping(RuntimeError):
    """The database holds the data path's tables as an older version wrote them."""


def refuse_integer_keys(engine: Engine) -> None:
    """Refuse tables from before keys were text (they held one integer column only)."""
    inspector = inspect(engine)
    for table, column in (
        (checkpoints.name, "last_key"), (touched_keys.name, "row_key"), (change_log.name, "row_key")
    ):  # fmt: skip
        if not inspector.has_table(table):
            continue
        with warnings.catch_warnings():  # the log's `txid xid8` is a type SQLAlchemy lacks
            warnings.simplefilter("ignore", SAWarning)
            found = {found["name"]: found["type"] for found in inspector.get_columns(table)}
        if isinstance(found.get(column), Integer):
            raise OlderBookkeeping(
                f"{engine.url.render_as_string()}: {table} was made by an older strangler, which"
                " kept keys as integers: finish or roll back moves with that version, or drop"
                " the strangler_* tables (and backfill again)"
            )


def is_bookkeeping(name: str | None) -> bool:
    """Whether a table is the data path's (alembic must neither create nor drop it)."""
    return bool(name) and str(name).startswith(PREFIX)
