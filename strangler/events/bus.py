"""The bus interface every relay and consumer talks to, and how a bus URL selects one.

A bus carries events from many sources, each source's events in the order they were
published. Consumers read through a named subscription that remembers what they acknowledged;
unacknowledged deliveries come again (at least once). Two implementations:
`database_bus.DatabaseBus` (SQLite or PostgreSQL, no server of its own) and
`redis_bus.RedisBus` (Redis Streams with consumer groups).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from strangler.events.outbox import Event


@dataclass(frozen=True)
class Delivery:
    """One event as a consumer received it, with the bus's handle to acknowledge it."""

    event: Event
    receipt: str


class Bus(Protocol):
    """Publish events; read them per subscription, at least once, in order per source."""

    def publish(self, events: Sequence[Event]) -> None:
        """Make `events` available to every subscription, atomically, in the given order."""

    def subscribe(self, consumer: str, sources: Sequence[str]) -> None:
        """Create the subscription `consumer` on `sources` from the beginning, if missing."""

    def receive(
        self, consumer: str, sources: Sequence[str], limit: int, wait_seconds: float
    ) -> list[Delivery]:
        """Up to `limit` unacknowledged deliveries, oldest first (waiting at most a while)."""

    def acknowledge(self, consumer: str, deliveries: Sequence[Delivery]) -> None:
        """Mark a prefix of the last `receive` as done: it will not be delivered again."""

    def lag(self, consumer: str, sources: Sequence[str]) -> int:
        """How many events of `sources` the subscription has not acknowledged yet."""

    def rewind(self, consumer: str, sources: Sequence[str]) -> None:
        """Start the subscription again from the first event still on the bus."""

    def close(self) -> None:
        """Release connections."""


def source_of(topic_or_event_id: str) -> str:
    """`forum.post_created` and `forum:42` both come from the `forum` context."""
    return topic_or_event_id.replace(":", ".").split(".", 1)[0]


def encode_event(event: Event) -> str:
    return event.to_json()


def decode_event(text: str) -> Event:
    """The inverse of `Event.to_json`."""
    document = json.loads(text)
    return Event(
        id=document["id"],
        topic=document["topic"],
        aggregate_id=document["aggregate_id"],
        payload=document["payload"],
        occurred_at=datetime.fromisoformat(document["occurred_at"].removesuffix("Z")),
        trace=document.get("trace"),
    )


def open_bus(url: str) -> Bus:
    """The bus a URL names: `redis://...` for Redis Streams, any database URL otherwise."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from strangler.events.redis_bus import RedisBus

        return RedisBus(url)
    from strangler.events.database_bus import DatabaseBus

    return DatabaseBus(url)
