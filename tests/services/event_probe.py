"""A probe context for the event path's fault tests: a source of `probe.ticked` events and a
consumer whose effect is deliberately not idempotent (a counter per event), so applying any
event twice would show. An event whose payload says `poison` always fails to apply.

Run by the real runner: `python -m extracted.events.consumer tests.services.event_probe:consumer`.
`batch_consumer` is the same tally with a batch handler (each event of a batch in turn).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.orm import Session

from strangler.events.outbox import Event, outbox_table
from strangler.events.runner import Consumer
from strangler.events.tables import consumer_tables
from strangler.plumbing.database import NAMING_CONVENTION

TICKED = "probe.ticked"

metadata = MetaData(naming_convention=NAMING_CONVENTION)
outbox = outbox_table(metadata)
tally = Table(
    "probe_tally",
    metadata,
    Column("aggregate_id", String(64), primary_key=True),
    Column("applications", Integer, nullable=False),
)
tables = consumer_tables(metadata)


class PoisonEvent(ValueError):
    """What applying a poison event raises, every time."""


def count(db: Session, event: Event) -> None:
    if event.payload.get("poison"):
        raise PoisonEvent(f"event {event.id} is poison and can never be applied")
    applications = db.scalar(
        select(tally.c.applications).where(tally.c.aggregate_id == event.aggregate_id)
    )
    if applications is None:
        db.execute(insert(tally).values(aggregate_id=event.aggregate_id, applications=1))
    else:
        db.execute(
            update(tally)
            .where(tally.c.aggregate_id == event.aggregate_id)
            .values(applications=applications + 1)
        )


consumer = Consumer(
    name="probe-tally", context="probe", topics=frozenset({TICKED}), handle=count, tables=tables
)


def count_each(db: Session, events: Sequence[Event]) -> None:
    for event in events:
        count(db, event)


batch_consumer = Consumer(
    name="probe-tally",
    context="probe",
    topics=frozenset({TICKED}),
    handle=count,
    tables=tables,
    handle_batch=count_each,
)
