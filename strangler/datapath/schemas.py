"""Run any of a workspace's alembic environments against a database URL, from code.

Each database of a workspace (the monolith's, each service's) names its alembic folder in
`strangler.toml`; every environment keeps its version in `alembic_version_<name>`, so two may
share one PostgreSQL database. Upgrades and downgrades of a database are serialised by a lock
held in the database itself on PostgreSQL (a session advisory lock keyed by the environment),
and by an exclusive lock on a file beside the database on SQLite (whose only writers share the
machine): any number started at once, as when several replicas of a service start together,
all succeed and apply each revision once. A migration that stopped half-way (killed, or a
failure on SQLite, whose DDL is not transactional) is reported with what to do. This module
must never decide when a schema changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from strangler.datapath.alembic_env import ignoring_data_path
from strangler.workspace import Workspace, find_workspace


class SchemaError(RuntimeError):
    """A schema change that could not be applied, with what to do about it."""


def environments(workspace: Workspace | None = None) -> list[str]:
    """The databases of the workspace that have an alembic environment."""
    workspace = workspace or find_workspace()
    return [name for name in workspace.databases if workspace.alembic_folder(name) is not None]


def alembic_config(name: str, database_url: str, workspace: Workspace | None = None) -> Config:
    """An alembic Config for environment `name` pointed at `database_url`."""
    workspace = workspace or find_workspace()
    if name not in workspace.databases or workspace.alembic_folder(name) is None:
        raise ValueError(
            f"no alembic environment named {name!r}; have {', '.join(environments(workspace))}"
        )
    folder = workspace.alembic_folder(name)
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.set_main_option("version_table", f"alembic_version_{name}")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    workspace.make_importable()
    return config


def upgrade(
    name: str, database_url: str, revision: str = "head", workspace: Workspace | None = None
) -> None:
    workspace = workspace or find_workspace()
    config = alembic_config(name, database_url, workspace)
    with exclusive_schema_change(name, database_url), _pointed(workspace, name, database_url):
        _run(name, lambda: command.upgrade(config, revision))


def downgrade(
    name: str, database_url: str, revision: str = "base", workspace: Workspace | None = None
) -> None:
    workspace = workspace or find_workspace()
    config = alembic_config(name, database_url, workspace)
    with exclusive_schema_change(name, database_url), _pointed(workspace, name, database_url):
        _run(name, lambda: command.downgrade(config, revision))


_ENVIRONMENT = threading.Lock()


@contextmanager
def _pointed(workspace: Workspace, name: str, database_url: str) -> Iterator[None]:
    """Set the database's URL variable to `database_url` while its alembic environment runs.

    A user's own `env.py` often reads its URL from that variable before `sqlalchemy.url`
    (alembic's usual recipe): without this it would migrate whatever database the shell names,
    not the one asked for (say, `strangler compare`'s fresh files)."""
    variable = workspace.url_variable(name)
    with _ENVIRONMENT:
        before = os.environ.get(variable)
        os.environ[variable] = database_url
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = before


def _run(name: str, change: Any) -> None:
    try:
        change()
    except SQLAlchemyError as error:
        original = getattr(error, "orig", None)
        first = str(original or error).splitlines()[0]
        raise SchemaError(
            f"the {name} schema change stopped: {first}. If an earlier upgrade was interrupted"
            f" half-way, the database holds part of a revision: drop what it created (or"
            f" restore the database) and run the upgrade again"
        ) from error


@contextmanager
def exclusive_schema_change(name: str, database_url: str) -> Iterator[None]:
    """Hold the lock that serialises schema changes of environment `name` on this database."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with _file_lock(url.database):
            yield
        return
    key = int.from_bytes(hashlib.sha256(f"strangler-schema:{name}".encode()).digest()[:8], "big")
    key -= 1 << 63 if key >= 1 << 63 else 0  # a signed 64-bit advisory lock key
    engine = create_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
    finally:
        engine.dispose()


@contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    if not database or database == ":memory:":
        yield
        return
    path = Path(database).with_name(Path(database).name + ".schema-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def drift(name: str, database_url: str, metadata: MetaData) -> list[Any]:
    """What differs between a migrated database and the models' metadata (empty when in sync)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            options = {
                "compare_type": True,
                "version_table": f"alembic_version_{name}",
                "include_name": ignoring_data_path(),
            }
            context = MigrationContext.configure(connection, opts=options)
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()
