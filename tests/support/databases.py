"""Fresh databases for tests: a new SQLite file, or a new database on the PostgreSQL server.

PostgreSQL is used only when `STRANGLER_TEST_POSTGRES_URL` names a server (any existing
database on it, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres); each fresh
database gets a unique name and is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ENV = "STRANGLER_TEST_POSTGRES_URL"


def postgres_server_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres)"
        )
    return url


@contextmanager
def fresh_database(backend: str, folder: Path, name: str = "app") -> Iterator[str]:
    """Yield the URL of an empty database of `backend` ('sqlite' or 'postgres')."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'{name}-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    server = make_url(postgres_server_url())
    database = f"test_{name}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        yield server.set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
