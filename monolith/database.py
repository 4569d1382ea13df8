"""The monolith's one database: a session per request (engines come from plumbing.database).

Tables are created by alembic (`migrations/monolith`), never here.
"""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session, sessionmaker


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
