"""The tables a consumer keeps in its own database: which events it applied, which it parked.

A service that consumes events declares them on its own metadata with `consumer_tables` (as
it declares its outbox with `strangler.events.outbox.outbox_table`), so its alembic migration
creates them and the consumer's effect and its "applied" mark commit in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)


@dataclass(frozen=True)
class ConsumerTables:
    """`consumed_events`: ids applied per consumer; `failed_events`: attempts, errors, parking."""

    consumed: Table
    failed: Table


def consumer_tables(metadata: MetaData) -> ConsumerTables:
    """Declare the consumer bookkeeping tables on a service's metadata."""
    consumed = Table(
        "consumed_events",
        metadata,
        Column("consumer", String(100), nullable=False),
        Column("event_id", String(200), nullable=False),
        Column("applied_at", DateTime, nullable=False),
        PrimaryKeyConstraint("consumer", "event_id"),
    )
    failed = Table(
        "failed_events",
        metadata,
        Column("consumer", String(100), nullable=False),
        Column("event_id", String(200), nullable=False),
        Column("topic", String(100), nullable=False),
        Column("event", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("error", Text, nullable=False),
        Column("failed_at", DateTime, nullable=False),
        Column("parked_at", DateTime, nullable=True),
        PrimaryKeyConstraint("consumer", "event_id"),
    )
    return ConsumerTables(consumed=consumed, failed=failed)
