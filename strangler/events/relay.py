"""The outbox relay: publishes a service's unpublished outbox rows to the bus, in id order.

At least once: rows are published first and marked afterwards, so a relay killed in between
publishes them again on restart (the database bus drops the copy; consumers drop it by event
id anyway). Run exactly one relay per source:

    FORUM_DATABASE_URL=... STRANGLER_BUS_URL=... python -m extracted.events.relay --source forum

It never changes anything in the source database except `outbox.published_at`. Each event
recorded inside a trace is published under a producer span of that trace, whose context the
event then carries to its consumers.
"""

from __future__ import annotations

import argparse
import threading
from contextlib import ExitStack
from typing import Any

from opentelemetry.trace import SpanKind
from sqlalchemy import Engine, MetaData, func, select, update

from strangler.events.bus import Bus, open_bus
from strangler.events.metrics import EventMetrics
from strangler.events.outbox import Event, outbox_table, split_payload
from strangler.events.process import stop_on_signals
from strangler.events.settings import event_settings
from strangler.plumbing.clock import utcnow
from strangler.plumbing.database import make_engine
from strangler.plumbing.logs import configure_logging, get_logger
from strangler.plumbing.tracing import span_from, traceparent_now

log = get_logger("relay")


class Relay:
    """Moves one source's outbox to a bus, a batch at a time."""

    def __init__(
        self, source: str, engine: Engine, bus: Bus, batch_size: int, metrics: EventMetrics
    ) -> None:
        self.source = source
        self.engine = engine
        self.bus = bus
        self.batch_size = batch_size
        self.metrics = metrics
        self.outbox = outbox_table(MetaData())

    def run_once(self) -> int:
        """Publish the next batch of unpublished rows; return how many were published."""
        outbox = self.outbox
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(outbox)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(self.batch_size)
            ).all()
        if rows:
            with ExitStack() as spans:
                events = [self._event(row, spans) for row in rows]
                self.bus.publish(events)
            with self.engine.begin() as connection:
                connection.execute(
                    update(outbox)
                    .where(outbox.c.id.in_([row.id for row in rows]))
                    .values(published_at=utcnow())
                )
            self.metrics.published.labels(self.source).inc(len(rows))
        self.metrics.outbox_backlog.labels(self.source).set(self.backlog())
        return len(rows)

    def _event(self, row: Any, spans: ExitStack) -> Event:
        """The event of an outbox row; one it traces is published under a producer span of its
        trace (open until `spans` closes), and carries that span's context on."""
        payload, traceparent = split_payload(row.payload)
        event_id = f"{self.source}:{row.id}"
        if traceparent is not None:
            spans.enter_context(
                span_from(
                    traceparent, f"publish {row.topic}", SpanKind.PRODUCER,
                    {"messaging.operation": "publish", "messaging.destination.name": row.topic,
                     "messaging.message.id": event_id},
                )
            )  # fmt: skip
            traceparent = traceparent_now() or traceparent
        return Event(
            id=event_id,
            topic=row.topic,
            aggregate_id=row.aggregate_id,
            payload=payload,
            occurred_at=row.occurred_at,
            trace=traceparent,
        )

    def backlog(self) -> int:
        with self.engine.connect() as connection:
            count = connection.scalar(
                select(func.count())
                .select_from(self.outbox)
                .where(self.outbox.c.published_at.is_(None))
            )
        return int(count or 0)

    def run(self, stopping: threading.Event, poll_seconds: float) -> None:
        """Publish until `stopping` is set, pausing `poll_seconds` whenever the outbox is empty."""
        while not stopping.is_set():
            try:
                if self.run_once() == 0:
                    stopping.wait(poll_seconds)
            except Exception as error:  # a database or bus outage: report and try again
                log.exception("relay batch failed", source=self.source, error=type(error).__name__)
                stopping.wait(max(poll_seconds, 1.0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Publish a service's outbox to the bus.")
    parser.add_argument("--source", required=True, help="the context whose outbox to relay")
    parser.add_argument("--once", action="store_true", help="publish what is there and exit")
    arguments = parser.parse_args(argv)
    settings = event_settings(arguments.source)
    configure_logging(f"{arguments.source}-relay", settings.log_level)
    metrics = EventMetrics()
    metrics.serve(settings.event_metrics_port)
    engine = make_engine(settings.database_url)
    bus = open_bus(settings.bus_url)
    relay = Relay(arguments.source, engine, bus, settings.event_batch_size, metrics)
    log.info("relay started", source=arguments.source)
    try:
        if arguments.once:
            while relay.run_once():
                pass
        else:
            relay.run(stop_on_signals(), settings.event_poll_seconds)
    finally:
        bus.close()
        engine.dispose()


if __name__ == "__main__":
    main()
