"""The monolith's schema is alembic's: it upgrades, downgrades and upgrades again, and the
models never drift from the migrations, on every backend."""

from __future__ import annotations

from sqlalchemy import inspect

from monolith.models import Base
from strangler.datapath.schemas import downgrade, drift, upgrade
from strangler.plumbing.database import make_engine

TABLES = {"users", "threads", "posts", "polls", "poll_options", "votes"}


def _tables(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version_monolith"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_and_upgrade_again(database_url: str) -> None:
    upgrade("monolith", database_url)
    assert _tables(database_url) == TABLES
    downgrade("monolith", database_url)
    assert _tables(database_url) == set()
    upgrade("monolith", database_url)
    assert _tables(database_url) == TABLES


def test_models_do_not_drift_from_migrations(database_url: str) -> None:
    upgrade("monolith", database_url)
    assert drift("monolith", database_url, Base.metadata) == []
