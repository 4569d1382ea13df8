"""The transactional outbox: a service records its domain events in its own database, in the
same transaction as the data change, so an event exists if and only if the change committed.

Each service adds `outbox_table(metadata)` to its own metadata (and its alembic migration
creates it). A relay (see the events issue) later publishes unpublished rows in id order and
marks them; consumers deduplicate by the event id `<source>:<outbox id>`. An event recorded
inside a traced request carries that request's W3C trace context (`TRACE_KEY` in the stored
payload, moved to `Event.trace` by the relay), so the relay and the consumer continue its trace.
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
from strangler.plumbing.tracing import traceparent_now

# Where a stored payload keeps the trace context of the write that recorded it (never a
# payload's own field: the relay takes it out before the event travels).
TRACE_KEY = "__traceparent__"


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
    trace: str | None = None  # the W3C traceparent of the span that published it

    def to_json(self) -> str:
        document = {
            "id": self.id,
            "topic": self.topic,
            "aggregate_id": self.aggregate_id,
            "payload": self.payload,
            "occurred_at": to_iso(self.occurred_at),
        }
        if self.trace is not None:
            document["trace"] = self.trace
        return json.dumps(document, separators=(",", ":"))


def stored_payload(payload: dict[str, Any]) -> str:
    """The payload as the outbox stores it, with the current trace context if any."""
    traceparent = traceparent_now()
    stored = payload if traceparent is None else {**payload, TRACE_KEY: traceparent}
    return json.dumps(stored, separators=(",", ":"))


def split_payload(stored: str) -> tuple[dict[str, Any], str | None]:
    """A stored payload and the trace context it carries (None: recorded outside a trace)."""
    payload: dict[str, Any] = json.loads(stored)
    traceparent = payload.pop(TRACE_KEY, None)
    return payload, traceparent if isinstance(traceparent, str) else None


def record(
    session: Session, outbox: Table, topic: str, aggregate_id: str | int, payload: dict[str, Any]
) -> None:
    """Add an event to the outbox within the caller's transaction (the caller commits)."""
    session.execute(
        insert(outbox).values(
            topic=topic,
            aggregate_id=str(aggregate_id),
            payload=stored_payload(payload),
            occurred_at=utcnow(),
        )
    )
