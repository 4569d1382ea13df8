"""Alembic environment of the template service's own database.

It sits inside the template (not under `migrations/`, where every `env.py` is a real database);
a copy moves it to `migrations/<context>/`, renames the module, the variable and the version
table, and `migrations.runner` then runs it like every other.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from extracted._template.models import Base

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    return str(
        config.attributes.get("database_url")
        or os.environ.get("TEMPLATE_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
        or "sqlite:///template.sqlite3"
    )


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        version_table=config.get_main_option("version_table") or "alembic_version_template",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
            version_table=config.get_main_option("version_table") or "alembic_version_template",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
