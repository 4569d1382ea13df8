"""What every alembic environment here does, so each `env.py` only names its database.

An environment named `name` migrates the URL the runner passes in (`strangler db`, the
gates), else the one the variable strangler.toml names for that database holds (as every
process of the system reads it), else `sqlalchemy.url` of its alembic.ini section, else the
local system's SQLite file (`.strangler/<name>.sqlite3`, the one `strangler up` uses): so
`alembic -n <name> upgrade head` from the project's root migrates what the system runs on. It
keeps its version in `alembic_version_<name>` so that environments can share a database,
renders batch operations so SQLite can ALTER tables, and never looks at the data path's own
`strangler_*` tables (they belong to no application's schema).
"""

from __future__ import annotations

import configparser
import logging.config
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import context
from sqlalchemy import MetaData, create_engine, pool

from strangler.workspace import WorkspaceError, find_workspace

IncludeName = Callable[[str | None, str, Any], bool]


def run(name: str, metadata: MetaData, include_name: IncludeName | None = None) -> None:
    """Run the migrations of environment `name` whose models are `metadata`."""
    config = context.config
    _log_as_configured(config.config_file_name)
    database_url = str(
        config.attributes.get("database_url")
        or os.environ.get(_variable(name))
        or config.get_main_option("sqlalchemy.url")
        or f"sqlite:///{Path.cwd() / '.strangler' / f'{name}.sqlite3'}"
    )
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "render_as_batch": True,
        "version_table": f"alembic_version_{name}",
    }
    options["include_name"] = ignoring_data_path(include_name)
    if context.is_offline_mode():
        context.configure(url=database_url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, compare_type=True, **options)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def _log_as_configured(ini: str | None) -> None:
    """From the shell, alembic prints what its ini file's logging sections say."""
    if ini is None:
        return
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ini)
    if parser.has_section("loggers"):
        logging.config.fileConfig(ini, disable_existing_loggers=False)


def _variable(name: str) -> str:
    """The variable strangler.toml names for database `name` (`<NAME>_DATABASE_URL` when the
    workspace does not know it)."""
    try:
        workspace = find_workspace()
    except WorkspaceError:
        workspace = None
    if workspace is not None and name in workspace.databases:
        return workspace.url_variable(name)
    return f"{name.upper()}_DATABASE_URL"


def ignoring_data_path(include_name: IncludeName | None = None) -> IncludeName:
    """An `include_name` that leaves out the data path's tables (and honours `include_name`)."""

    def include(name: str | None, type_: str, parents: Any) -> bool:
        if type_ == "table" and name is not None and name.startswith("strangler_"):
            return False
        return include_name is None or include_name(name, type_, parents)

    return include
