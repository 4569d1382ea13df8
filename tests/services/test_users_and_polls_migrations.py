"""The users and polls databases are alembic's: each upgrades, downgrades and upgrades again with
its own version table, and its models never drift from its migrations, on every backend."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData, inspect

from extracted.polls.models import Base as PollsBase
from extracted.users.models import Base as UsersBase
from strangler.datapath.schemas import downgrade, drift, upgrade
from strangler.plumbing.database import make_engine

SCHEMAS: dict[str, tuple[MetaData, set[str]]] = {
    "users": (UsersBase.metadata, {"users", "outbox"}),
    "polls": (
        PollsBase.metadata,
        {"polls", "poll_options", "votes", "outbox", "poll_results"}
        | {"consumed_events", "failed_events"},
    ),
}


def _tables(database_url: str, context: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        return set(inspect(engine).get_table_names()) - {f"alembic_version_{context}"}
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


@pytest.mark.parametrize("context", sorted(SCHEMAS))
def test_models_do_not_drift_from_migrations(context: str, database_url: str) -> None:
    metadata, _ = SCHEMAS[context]
    upgrade(context, database_url)
    assert drift(context, database_url, metadata) == []
