"""The forum and search databases are alembic's: each upgrades, downgrades and upgrades again
with its own version table, and its models never drift from its migrations, on every backend.

Search's full-text index is backend-specific DDL the models cannot describe; it must exist
after an upgrade and be gone after a downgrade, and only it is left out of the comparison.
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect

from extracted.forum.models import Base as ForumBase
from extracted.search.models import Base as SearchBase
from extracted.search.models import is_modelled
from strangler.datapath.schemas import downgrade, upgrade
from strangler.plumbing.database import make_engine

BOOKKEEPING = {"outbox", "consumed_events", "failed_events"}
SCHEMAS: dict[str, tuple[MetaData, set[str]]] = {
    "forum": (ForumBase.metadata, {"authors", "threads", "posts"} | BOOKKEEPING),
    "search": (SearchBase.metadata, {"documents", "consumed_events", "failed_events"}),
}


def _tables(database_url: str, context: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        names = set(inspect(engine).get_table_names()) - {f"alembic_version_{context}"}
        return {name for name in names if not name.startswith("documents_fts")}
    finally:
        engine.dispose()


def _has_full_text_index(database_url: str) -> bool:
    engine = make_engine(database_url)
    try:
        inspector = inspect(engine)
        if engine.dialect.name == "postgresql":
            columns = {column["name"] for column in inspector.get_columns("documents")}
            return "search_vector" in columns
        return "documents_fts" in inspector.get_table_names()
    finally:
        engine.dispose()


def _drift(context: str, database_url: str, metadata: MetaData) -> list[Any]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            migration = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "version_table": f"alembic_version_{context}",
                    "include_name": is_modelled,
                },
            )
            return list(compare_metadata(migration, metadata))
    finally:
        engine.dispose()


@pytest.mark.parametrize("context", sorted(SCHEMAS))
def test_upgrade_downgrade_and_upgrade_again(context: str, database_url: str) -> None:
    _, tables = SCHEMAS[context]
    upgrade(context, database_url)
    assert _tables(database_url, context) == tables
    downgrade(context, database_url)
    assert _tables(database_url, context) == set()
    upgrade(context, database_url)
    assert _tables(database_url, context) == tables


def test_the_search_index_comes_and_goes_with_its_migration(database_url: str) -> None:
    upgrade("search", database_url)
    assert _has_full_text_index(database_url)
    downgrade("search", database_url)
    engine = make_engine(database_url)
    try:
        assert not (set(inspect(engine).get_table_names()) & {"documents", "documents_fts"})
    finally:
        engine.dispose()


@pytest.mark.parametrize("context", sorted(SCHEMAS))
def test_models_do_not_drift_from_migrations(context: str, database_url: str) -> None:
    metadata, _ = SCHEMAS[context]
    upgrade(context, database_url)
    assert _drift(context, database_url, metadata) == []
