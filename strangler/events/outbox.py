"""The transactional outbox: a service records its domain events in its own database, in the
same transaction as the data change, so an event exists if and only if the change committed.

Each service adds `outbox_table(metadata)` to its own metadata (and its alembic migration
creates it). A relay (see the events issue) later publishes unpublished rows in id order and
marks them; consumers deduplicate by the event id `<source>:<outbox id>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text, insert
from sqlalchemy.orm import Session

from strangler.plumbing.clock import to_iso, utcnow
from strangler.plumbing.database import Id


def outbox_table(metadata: MetaData) -> Table:
    """The outbox table, declared on a service's own metadata."""
    return Table(
        "outbox",
        metadata,
        Column("id", Id, primary_key=True),
        Column("topic", String(100), nullable=False),
        Column("aggregate_id", String(64), nullable=False),
        Column("payload", Text, nullable=False),
        Column("occurred_at", DateTime, nullable=False),
        Column("published_at", DateTime, nullable=True),
        Index("ix_outbox_published_at_id", "published_at", "id"),
    )


@dataclass(frozen=True)
class Event:
    """A domain event as it travels: unique id, topic, the aggregate it is about, its data."""

    id: str
    topic: str
    aggregate_id: str
    payload: dict[str, Any]
    occurred_at: datetime

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "topic": self.topic,
                "aggregate_id": self.aggregate_id,
                "payload": self.payload,
                "occurred_at": to_iso(self.occurred_at),
            },
            separators=(",", ":"),
        )


def record(
    session: Session, outbox: Table, topic: str, aggregate_id: str | int, payload: dict[str, Any]
) -> None:
    """Add an event to the outbox within the caller's transaction (the caller commits)."""
    session.execute(
        insert(outbox).values(
            topic=topic,
            aggregate_id=str(aggregate_id),
            payload=json.dumps(payload, separators=(",", ":")),
            occurred_at=utcnow(),
        )
    )
