"""The embedded bus: a `bus_events` log and `bus_offsets` per subscription in one database.

Needs no server (a SQLite file by default; PostgreSQL by URL). Every event gets a global,
increasing position; a subscription's offset is the last position it acknowledged. Publishing
dedupes on the event id, so a relay that republishes after a crash adds nothing. On PostgreSQL
publishers take an exclusive lock on the log, so positions become visible in commit order and
a reader can never skip past a position that commits later. The bus creates its own two
tables on first use (`ensure_schema`); it is infrastructure, not any service's data.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from strangler.events.bus import Delivery, decode_event, encode_event, source_of
from strangler.events.outbox import Event
from strangler.plumbing.clock import utcnow
from strangler.plumbing.database import NAMING_CONVENTION, Id, make_engine

metadata = MetaData(naming_convention=NAMING_CONVENTION)

bus_events = Table(
    "bus_events",
    metadata,
    Column("position", Id, primary_key=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("source", String(64), nullable=False, index=True),
    Column("event", Text, nullable=False),
    Column("published_at", DateTime, nullable=False),
)

bus_offsets = Table(
    "bus_offsets",
    metadata,
    Column("consumer", String(100), nullable=False),
    Column("source", String(64), nullable=False),
    Column("position", BigInteger, nullable=False),
    PrimaryKeyConstraint("consumer", "source"),
)

_SCHEMA_LOCK = 7_420_001  # PostgreSQL advisory lock id: one process creates the tables


class DatabaseBus:
    """The `Bus` over SQLAlchemy: SQLite or PostgreSQL."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.engine = engine or make_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self.ensure_schema()

    def ensure_schema(self) -> None:
        """Create the bus tables unless they exist; safe when several processes start at once."""
        for attempt in range(5):
            try:
                with self.engine.begin() as connection:
                    if self.is_postgres:
                        connection.execute(text(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})"))
                    metadata.create_all(connection, checkfirst=True)
                return
            except OperationalError:  # SQLite: another process created them in between
                if attempt == 4:
                    raise
                time.sleep(0.1)

    def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        dialect = postgresql if self.is_postgres else sqlite
        now = utcnow()
        rows = [
            {
                "event_id": event.id,
                "source": source_of(event.id),
                "event": encode_event(event),
                "published_at": now,
            }
            for event in events
        ]
        with self.engine.begin() as connection:
            if self.is_postgres:
                connection.execute(text("LOCK TABLE bus_events IN EXCLUSIVE MODE"))
            for row in rows:
                connection.execute(
                    dialect.insert(bus_events)
                    .values(row)
                    .on_conflict_do_nothing(index_elements=["event_id"])
                )

    def subscribe(self, consumer: str, sources: Sequence[str]) -> None:
        dialect = postgresql if self.is_postgres else sqlite
        with self.engine.begin() as connection:
            for source in sources:
                connection.execute(
                    dialect.insert(bus_offsets)
                    .values(consumer=consumer, source=source, position=0)
                    .on_conflict_do_nothing(index_elements=["consumer", "source"])
                )

    def _offsets(self, consumer: str, sources: Sequence[str]) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(bus_offsets.c.source, bus_offsets.c.position).where(
                    bus_offsets.c.consumer == consumer, bus_offsets.c.source.in_(sources)
                )
            ).all()
        return {row.source: row.position for row in rows}

    def receive(
        self, consumer: str, sources: Sequence[str], limit: int, wait_seconds: float
    ) -> list[Delivery]:
        offsets = self._offsets(consumer, sources)
        conditions = [
            (bus_events.c.source == source) & (bus_events.c.position > offsets.get(source, 0))
            for source in sources
        ]
        if not conditions:
            return []
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(bus_events.c.position, bus_events.c.event)
                .where(or_(*conditions))
                .order_by(bus_events.c.position)
                .limit(limit)
            ).all()
        return [Delivery(decode_event(row.event), str(row.position)) for row in rows]

    def acknowledge(self, consumer: str, deliveries: Sequence[Delivery]) -> None:
        last: dict[str, int] = {}
        for delivery in deliveries:
            source = source_of(delivery.event.id)
            last[source] = max(last.get(source, 0), int(delivery.receipt))
        if not last:
            return
        with self.engine.begin() as connection:
            for source, position in last.items():
                connection.execute(
                    update(bus_offsets)
                    .where(
                        bus_offsets.c.consumer == consumer,
                        bus_offsets.c.source == source,
                        bus_offsets.c.position < position,
                    )
                    .values(position=position)
                )

    def lag(self, consumer: str, sources: Sequence[str]) -> int:
        offsets = self._offsets(consumer, sources)
        total = 0
        with self.engine.connect() as connection:
            for source in sources:
                total += (
                    connection.scalar(
                        select(func.count())
                        .select_from(bus_events)
                        .where(
                            bus_events.c.source == source,
                            bus_events.c.position > offsets.get(source, 0),
                        )
                    )
                    or 0
                )
        return total

    def rewind(self, consumer: str, sources: Sequence[str]) -> None:
        self.subscribe(consumer, sources)
        with self.engine.begin() as connection:
            connection.execute(
                update(bus_offsets)
                .where(bus_offsets.c.consumer == consumer, bus_offsets.c.source.in_(sources))
                .values(position=0)
            )

    def close(self) -> None:
        self.engine.dispose()
