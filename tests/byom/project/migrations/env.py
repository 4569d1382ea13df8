"""The bookshelf's alembic environment: its models, its database (BOOKSHELF_DATABASE_URL)."""

from __future__ import annotations

import os

from alembic import context
from bookshelf.models import db
from sqlalchemy import create_engine, pool

config = context.config
url = os.environ.get("BOOKSHELF_DATABASE_URL") or config.get_main_option("sqlalchemy.url")

if context.is_offline_mode():
    context.configure(url=url, target_metadata=db.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(str(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=db.metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
