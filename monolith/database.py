"""The monolith's one database: engine construction and a session per request.

Tables are created by alembic (`migrations/monolith`), never here.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker


def make_engine(database_url: str, **options: Any) -> Engine:
    """An engine tuned for its backend: WAL and a busy timeout on SQLite, a pool on PostgreSQL."""
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 30}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(database_url, pool_size=10, max_overflow=20, pool_pre_ping=True, **options)


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session() -> Session:
    """The current request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        factory: sessionmaker[Session] = current_app.extensions["db_sessions"]
        g.db_session = factory()
    return g.db_session  # type: ignore[no-any-return]


def close_session(_: BaseException | None = None) -> None:
    db_session: Session | None = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()


def can_connect(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
