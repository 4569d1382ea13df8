"""The idempotent consumer runner: applies bus events to a consumer's own database once.

Each event is applied in one transaction together with its mark in `consumed_events`, so an
event delivered again (after a crash, a relay retry, a rewind) changes nothing. A failing
event is retried in order (nothing behind it overtakes it) until `max_attempts`, then parked
in `failed_events` with its error and acknowledged, so it cannot block the others. A consumer
with a batch handler gets each received batch in one transaction instead (its effect the same
as applying the events one by one, its cost shared: polls recomputes a poll once per batch, not
once per vote); if that fails, the batch is applied event by event, as above, so a poison event
is still found and parked alone. Services declare what they consume as a `Consumer` in their
`events.py`; `strangler.events.consumer` runs one as a process. An event that carries a trace
context is applied under a consumer span of its trace (in a batch, every event's span lasts
the batch's transaction), so a write's trace goes on into what its events caused.

This module knows no domain: the handler does the work.
"""

from __future__ import annotations

import enum
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from opentelemetry.trace import SpanKind
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from strangler.events.bus import Bus, Delivery, source_of
from strangler.events.metrics import EventMetrics
from strangler.events.outbox import Event
from strangler.events.tables import ConsumerTables
from strangler.plumbing.clock import utcnow
from strangler.plumbing.logs import get_logger
from strangler.plumbing.tracing import span_from

log = get_logger("consumer")

Handler = Callable[[Session, Event], None]
BatchHandler = Callable[[Session, Sequence[Event]], None]


@dataclass(frozen=True)
class Consumer:
    """What a service consumes: a subscription name, its topics, and the handler; optionally
    a batch handler (several new events, in order, to the same effect as one by one) and a
    `reset` run before a replay."""

    name: str
    context: str
    topics: frozenset[str]
    handle: Handler
    tables: ConsumerTables
    reset: Callable[[Session], None] | None = None
    handle_batch: BatchHandler | None = None

    @property
    def sources(self) -> list[str]:
        return sorted({source_of(topic) for topic in self.topics})


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    PARKED = "parked"
    IGNORED = "ignored"


class ConsumerRunner:
    """Reads a subscription and applies each event once, in order, parking poison events."""

    def __init__(
        self,
        consumer: Consumer,
        engine: Engine,
        bus: Bus,
        metrics: EventMetrics,
        batch_size: int = 100,
        max_attempts: int = 5,
    ) -> None:
        self.consumer = consumer
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.bus = bus
        self.metrics = metrics
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.lag_due = 0.0
        bus.subscribe(consumer.name, consumer.sources)

    def run_once(self, wait_seconds: float = 0.0) -> tuple[int, bool]:
        """Apply the next batch; return (events acknowledged, whether one failed)."""
        deliveries = self.bus.receive(
            self.consumer.name, self.consumer.sources, self.batch_size, wait_seconds
        )
        done: list[Delivery] = []
        failed = False
        if len(deliveries) > 1 and self.apply_batch([d.event for d in deliveries]):
            done = deliveries
        else:
            for delivery in deliveries:
                if self.apply(delivery.event) is Outcome.FAILED:
                    failed = True
                    break  # keep order: nothing behind a failing event is applied before it
                done.append(delivery)
        self.bus.acknowledge(self.consumer.name, done)
        if time.monotonic() >= self.lag_due:  # counting the lag is a query: once a second
            self.lag_due = time.monotonic() + 1.0
            self.metrics.consumer_lag.labels(self.consumer.name).set(
                self.bus.lag(self.consumer.name, self.consumer.sources)
            )
        return len(done), failed

    @contextmanager
    def _traced(self, events: Sequence[Event]) -> Iterator[None]:
        """A consumer span for each event that carries a trace, open for the block."""
        with ExitStack() as spans:
            for event in events:
                if event.trace is not None:
                    attributes = {
                        "messaging.operation": "process",
                        "messaging.destination.name": event.topic,
                        "messaging.message.id": event.id,
                    }
                    spans.enter_context(
                        span_from(
                            event.trace,
                            f"{self.consumer.name} {event.topic}",
                            SpanKind.CONSUMER,
                            attributes,
                        )
                    )
            yield

    def apply(self, event: Event) -> Outcome:
        """Apply one event exactly once in effect, or count a failed attempt."""
        if event.topic not in self.consumer.topics:
            return Outcome.IGNORED
        with self._traced([event]):
            return self._apply(event)

    def _apply(self, event: Event) -> Outcome:
        name = self.consumer.name
        tables = self.consumer.tables
        try:
            with self.sessions.begin() as session:
                if self._already_applied(session, event):
                    self.metrics.redeliveries.labels(name).inc()
                    return Outcome.DUPLICATE
                self.consumer.handle(session, event)
                session.execute(
                    insert(tables.consumed).values(
                        consumer=name, event_id=event.id, applied_at=utcnow()
                    )
                )
        except IntegrityError as error:
            with self.sessions() as session:
                if self._already_applied(session, event):  # applied concurrently by a twin
                    self.metrics.redeliveries.labels(name).inc()
                    return Outcome.DUPLICATE
            return self._failed(event, error)
        except Exception as error:  # the handler's failure, whatever it is, is this event's
            return self._failed(event, error)
        self._count_applied([event])
        return Outcome.APPLIED

    def apply_batch(self, events: Sequence[Event]) -> bool:
        """Apply the new events of a batch in one transaction with the batch handler; False if
        the consumer has none or it failed (nothing of the batch is then applied)."""
        handle_batch = self.consumer.handle_batch
        if handle_batch is None:
            return False
        wanted = [event for event in events if event.topic in self.consumer.topics]
        try:
            with self._traced(wanted), self.sessions.begin() as session:
                applied = self._applied_ids(session, [event.id for event in wanted])
                fresh = list({e.id: e for e in wanted if e.id not in applied}.values())
                if fresh:
                    handle_batch(session, fresh)
                    now, name = utcnow(), self.consumer.name
                    marks = [{"consumer": name, "event_id": e.id, "applied_at": now} for e in fresh]
                    session.execute(insert(self.consumer.tables.consumed), marks)
        except Exception as error:  # one of them may be poison: find it, one event at a time
            log.warning("batch failed", consumer=self.consumer.name, error=type(error).__name__)
            return False
        if len(wanted) > len(fresh):
            self.metrics.redeliveries.labels(self.consumer.name).inc(len(wanted) - len(fresh))
        self._count_applied(fresh)
        return True

    def _count_applied(self, events: Sequence[Event]) -> None:
        name = self.consumer.name
        now = utcnow()
        self.metrics.applied.labels(name).inc(len(events))
        for event in events:
            self.metrics.delay.labels(name).observe((now - event.occurred_at).total_seconds())

    def _applied_ids(self, session: Session, event_ids: Sequence[str]) -> set[str]:
        consumed = self.consumer.tables.consumed
        return set(
            session.scalars(
                select(consumed.c.event_id).where(
                    consumed.c.consumer == self.consumer.name, consumed.c.event_id.in_(event_ids)
                )
            )
        )

    def _already_applied(self, session: Session, event: Event) -> bool:
        return bool(self._applied_ids(session, [event.id]))

    def _failed(self, event: Event, error: Exception) -> Outcome:
        """Count the attempt; park the event (and mark it consumed) once out of attempts."""
        name = self.consumer.name
        failed = self.consumer.tables.failed
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()[:4000]
        self.metrics.failures.labels(name).inc()
        with self.sessions.begin() as session:
            attempts = session.scalar(
                select(failed.c.attempts).where(
                    failed.c.consumer == name, failed.c.event_id == event.id
                )
            )
            now = utcnow()
            if attempts is None:
                attempts = 1
                session.execute(
                    insert(failed).values(
                        consumer=name,
                        event_id=event.id,
                        topic=event.topic,
                        event=event.to_json(),
                        attempts=1,
                        error=detail,
                        failed_at=now,
                    )
                )
            else:
                attempts += 1
                self.metrics.redeliveries.labels(name).inc()
                session.execute(
                    update(failed)
                    .where(failed.c.consumer == name, failed.c.event_id == event.id)
                    .values(attempts=attempts, error=detail, failed_at=now)
                )
            if attempts < self.max_attempts:
                log.warning("event failed", consumer=name, event_id=event.id, attempts=attempts)
                return Outcome.FAILED
            session.execute(
                update(failed)
                .where(failed.c.consumer == name, failed.c.event_id == event.id)
                .values(parked_at=now)
            )
            session.execute(
                insert(self.consumer.tables.consumed).values(
                    consumer=name, event_id=event.id, applied_at=now
                )
            )
        log.error("event parked", consumer=name, event_id=event.id, error=detail)
        self.metrics.parked.labels(name).inc()
        return Outcome.PARKED

    def replay(self) -> None:
        """Forget what was applied, clear the projection, and read the bus from its start."""
        tables = self.consumer.tables
        with self.sessions.begin() as session:
            if self.consumer.reset is not None:
                self.consumer.reset(session)
            for table in (tables.consumed, tables.failed):
                session.execute(delete(table).where(table.c.consumer == self.consumer.name))
        self.bus.rewind(self.consumer.name, self.consumer.sources)

    def run(self, until: threading.Event, poll_seconds: float, retry_seconds: float) -> None:
        """Consume until `until` is set (by SIGTERM or SIGINT in a process)."""
        while not until.is_set():
            try:
                count, failed = self.run_once(wait_seconds=poll_seconds)
            except Exception as error:  # the bus or the database is away: wait, try again
                log.exception(
                    "consumer batch failed", consumer=self.consumer.name, error=type(error).__name__
                )
                until.wait(max(poll_seconds, 1.0))
                continue
            if failed:
                until.wait(retry_seconds)
            elif count == 0:
                until.wait(poll_seconds)
