"""What every alembic environment here does, so each `env.py` only names its database.

An environment named `name` migrates the URL the runner passes in (or `<NAME>_DATABASE_URL`, or
a local SQLite file), keeps its version in `alembic_version_<name>` so that environments can
share a database, renders batch operations so SQLite can ALTER tables, and never looks at the
data path's own `strangler_*` tables (they belong to no application's schema).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from alembic import context
from sqlalchemy import MetaData, create_engine, pool

IncludeName = Callable[[str | None, str, Any], bool]


def run(name: str, metadata: MetaData, include_name: IncludeName | None = None) -> None:
    """Run the migrations of environment `name` whose models are `metadata`."""
    config = context.config
    database_url = str(
        config.attributes.get("database_url")
        or os.environ.get(f"{name.upper()}_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
        or f"sqlite:///{name}.sqlite3"
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


def ignoring_data_path(include_name: IncludeName | None = None) -> IncludeName:
    """An `include_name` that leaves out the data path's tables (and honours `include_name`)."""

    def include(name: str | None, type_: str, parents: Any) -> bool:
        if type_ == "table" and name is not None and name.startswith("strangler_"):
            return False
        return include_name is None or include_name(name, type_, parents)

    return include
