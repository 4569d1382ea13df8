"""Run any of the project's alembic environments against a database URL, from code.

`migrations/<name>/` is one environment per database (`monolith`, `users`, `polls`, ...), each
with its own version table, so two of them may even share one PostgreSQL database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine

from strangler.datapath.alembic_env import ignoring_data_path

# The bundled example's alembic environments (until the workspace file names them).
HERE = Path(__file__).resolve().parents[2] / "migrations"


def environments() -> list[str]:
    """The names of every alembic environment in this folder."""
    return sorted(p.parent.name for p in HERE.glob("*/env.py"))


def alembic_config(name: str, database_url: str) -> Config:
    """An alembic Config for environment `name` pointed at `database_url`."""
    if name not in environments():
        raise ValueError(f"no alembic environment named {name!r}; have {environments()}")
    config = Config()
    config.set_main_option("script_location", str(HERE / name))
    config.set_main_option("version_table", f"alembic_version_{name}")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(name: str, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(name, database_url), revision)


def downgrade(name: str, database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(name, database_url), revision)


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
