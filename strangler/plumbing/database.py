"""Engines for any of the project's databases: SQLite tuned for concurrency, or PostgreSQL.

Every process builds its engine here so that the same URL behaves the same everywhere. Nothing
here creates tables: each database's alembic environment does. Engines are built through
`sqlalchemy.create_engine` looked up at call time, so that when tracing is on (see
`strangler.plumbing.tracing`) the SQLAlchemy instrumentation traces every engine's queries.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy
from sqlalchemy import BigInteger, Engine, Integer, event, text

from strangler.plumbing.capacity import SESSION_THREADS

# BIGINT on PostgreSQL, INTEGER on SQLite so that the primary key is the rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_engine(database_url: str, **options: Any) -> Engine:
    """An engine tuned for its backend: WAL and a busy timeout on SQLite, a pool on PostgreSQL."""
    if database_url.startswith("sqlite"):
        engine = sqlalchemy.create_engine(database_url, connect_args={"timeout": 30}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 20)
    return sqlalchemy.create_engine(database_url, pool_pre_ping=True, **options)


def make_session_engine(database_url: str) -> Engine:
    """The engine of a service's sessions: writes, and reads too long for the event loop.

    They run in at most SESSION_THREADS threads and its pool keeps a connection for each, so a
    request never pays for opening a connection (on SQLite, four PRAGMAs too) that the pool
    throws away after it, as a pool smaller than the thread pool does under load. Two more,
    never kept, serve anything else (the health check).
    """
    return make_engine(database_url, pool_size=SESSION_THREADS, max_overflow=2)


def make_reader_engine(database_url: str) -> Engine:
    """An engine for the reads a service runs on its event loop (`plumbing.fastapi.read`).

    One connection, kept open: the loop runs one read at a time, so it never needs a second,
    and a pool of its own means a read never waits for a connection the thread pool's writes
    hold (a wait there would stall every request of the process).
    """
    return make_engine(database_url, pool_size=1, max_overflow=0)


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def can_connect(engine: Engine) -> bool:
    """Whether the database answers a trivial query right now (for /healthz)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means not healthy
        return False
