"""The event path: outbox relay, buses and idempotent consumers, under SIGKILL and poison.

Real processes (`python -m extracted.events.relay`, `python -m extracted.events.consumer`) on
the embedded database bus of each backend and on Redis Streams (when STRANGLER_TEST_REDIS_URL
is set). The probe consumer counts applications per event, so a lost event shows as a missing
row and a twice-applied one as a 2.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from strangler.events.bus import open_bus
from strangler.events.database_bus import bus_events
from strangler.events.metrics import EventMetrics
from strangler.events.outbox import Event, record
from strangler.events.relay import Relay
from strangler.events.runner import ConsumerRunner
from strangler.plumbing.clock import utcnow
from strangler.plumbing.database import make_engine
from strangler.runtime.processes import free_port
from tests.services import event_probe
from tests.services.event_processes import (
    BUSES,
    eventually,
    fresh_bus,
    running,
    start_consumer,
    start_relay,
)
from tests.support.databases import fresh_database

EVENTS = 600
PROBE = "tests.services.event_probe:consumer"
SLOW = {"batch_size": "5", "poll_seconds": "0.02"}


@pytest.fixture(params=BUSES)
def bus_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[str]:
    with fresh_bus(request.param, backend, tmp_path) as url:
        yield url


def _probe_database(backend: str, folder: Path, name: str) -> Iterator[tuple[str, Engine]]:
    with fresh_database(backend, folder, name) as url:
        engine = make_engine(url)
        event_probe.metadata.create_all(engine)
        try:
            yield url, engine
        finally:
            engine.dispose()


@pytest.fixture
def source(backend: str, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """The database of the probe context, with its outbox."""
    yield from _probe_database(backend, tmp_path, "probe-source")


@pytest.fixture
def target(backend: str, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """The probe consumer's own database: its tally and its bookkeeping."""
    yield from _probe_database(backend, tmp_path, "probe-target")


def _record(engine: Engine, count: int, poison: frozenset[int] = frozenset()) -> None:
    with Session(engine) as db:
        for number in range(1, count + 1):
            payload = {"number": number, "poison": number in poison}
            record(db, event_probe.outbox, event_probe.TICKED, number, payload)
        db.commit()


def _scalar(engine: Engine, statement: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(statement) or 0)


def _published(engine: Engine) -> int:
    outbox = event_probe.outbox
    return _scalar(
        engine, select(func.count()).select_from(outbox).where(outbox.c.published_at.isnot(None))
    )


def _applied(engine: Engine) -> int:
    return _scalar(engine, select(func.count()).select_from(event_probe.tally))


def _applied_at_least(engine: Engine, goal: int) -> Callable[[], bool]:
    return lambda: _applied(engine) >= goal


def _applications(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(select(event_probe.tally)).all()
    return {row.aggregate_id: row.applications for row in rows}


def _every_event_applied_once(engine: Engine, count: int) -> None:
    assert _applications(engine) == {str(number): 1 for number in range(1, count + 1)}
    consumed = event_probe.tables.consumed
    assert _scalar(engine, select(func.count()).select_from(consumed)) == count


def test_a_relay_killed_mid_stream_loses_nothing_and_nothing_is_applied_twice(
    source: tuple[str, Engine], target: tuple[str, Engine], bus_url: str, tmp_path: Path
) -> None:
    (source_url, source_engine), (target_url, target_engine) = source, target
    _record(source_engine, EVENTS)
    relay = start_relay("probe", source_url, bus_url, tmp_path, **SLOW)
    with running(relay):
        assert eventually(lambda: _published(source_engine) >= EVENTS // 6, 30, relay)
        relay.signal(signal.SIGKILL)
        relay.popen.wait(5)
    assert _published(source_engine) < EVENTS, "the relay finished before it could be killed"

    relay = start_relay("probe", source_url, bus_url, tmp_path)
    consumer = start_consumer(PROBE, "probe", target_url, bus_url, tmp_path)
    with running(relay), running(consumer):
        assert eventually(lambda: _applied(target_engine) >= EVENTS, 60, consumer)
        assert eventually(lambda: _published(source_engine) == EVENTS, 10, relay)
    _every_event_applied_once(target_engine, EVENTS)
    if not bus_url.startswith("redis"):  # the database bus also drops republished copies
        bus = make_engine(bus_url)
        assert _scalar(bus, select(func.count()).select_from(bus_events)) == EVENTS
        bus.dispose()


def test_a_consumer_killed_mid_stream_applies_every_event_exactly_once(
    source: tuple[str, Engine], target: tuple[str, Engine], bus_url: str, tmp_path: Path
) -> None:
    (source_url, source_engine), (target_url, target_engine) = source, target
    _record(source_engine, EVENTS)
    with running(start_relay("probe", source_url, bus_url, tmp_path)):
        for goal in (EVENTS // 4, EVENTS // 2):
            consumer = start_consumer(PROBE, "probe", target_url, bus_url, tmp_path, **SLOW)
            with running(consumer):
                assert eventually(_applied_at_least(target_engine, goal), 60, consumer)
                consumer.signal(signal.SIGKILL)
                consumer.popen.wait(5)
        assert _applied(target_engine) < EVENTS, "the consumer finished before it could be killed"
        consumer = start_consumer(PROBE, "probe", target_url, bus_url, tmp_path)
        with running(consumer):
            assert eventually(lambda: _applied(target_engine) >= EVENTS, 60, consumer)
    _every_event_applied_once(target_engine, EVENTS)


PARKED_METRICS = [
    'events_parked_total{consumer="probe-tally"} 1.0',
    'event_failures_total{consumer="probe-tally"} 3.0',
    'events_applied_total{consumer="probe-tally"} 19.0',
]


def _metrics_show(port: int, samples: list[str]) -> Callable[[], bool]:
    def check() -> bool:
        exposition = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        return all(sample in exposition for sample in samples)

    return check


def test_a_poison_event_is_parked_with_its_error_and_does_not_block_the_others(
    source: tuple[str, Engine], target: tuple[str, Engine], bus_url: str, tmp_path: Path
) -> None:
    (source_url, source_engine), (target_url, target_engine) = source, target
    _record(source_engine, 20, poison=frozenset({5}))
    metrics_port = free_port()
    tuning = {"max_attempts": "3", "retry_seconds": "0.05", "metrics_port": str(metrics_port)}
    with (
        running(start_relay("probe", source_url, bus_url, tmp_path)),
        running(start_consumer(PROBE, "probe", target_url, bus_url, tmp_path, **tuning)) as c,
    ):
        assert eventually(lambda: _applied(target_engine) >= 19, 30, c)
        assert eventually(_metrics_show(metrics_port, PARKED_METRICS), 5, c)
    assert _applications(target_engine) == {str(n): 1 for n in range(1, 21) if n != 5}
    failed = event_probe.tables.failed
    with target_engine.connect() as connection:
        [parked] = connection.execute(select(failed)).all()
    assert parked.event_id == "probe:5"
    assert parked.attempts == 3
    assert parked.parked_at is not None
    assert "PoisonEvent" in parked.error and "can never be applied" in parked.error


def test_a_redelivered_event_changes_nothing_and_counts_as_a_redelivery(
    target: tuple[str, Engine], bus_url: str, source: tuple[str, Engine]
) -> None:
    (_, target_engine), (_, source_engine) = target, source
    _record(source_engine, 3)
    bus = open_bus(bus_url)
    metrics = EventMetrics()
    try:
        Relay("probe", source_engine, bus, 10, metrics).run_once()
        runner = ConsumerRunner(event_probe.consumer, target_engine, bus, metrics)
        name, sources = event_probe.consumer.name, event_probe.consumer.sources
        assert bus.lag(name, sources) == 3
        assert runner.run_once() == (3, False)
        assert metrics.registry.get_sample_value("consumer_lag", {"consumer": name}) == 0
        bus.rewind(name, sources)
        assert bus.lag(name, sources) == 3
        assert runner.run_once() == (3, False)
    finally:
        bus.close()
    _every_event_applied_once(target_engine, 3)
    redeliveries = metrics.registry.get_sample_value(
        "event_redeliveries_total", {"consumer": "probe-tally"}
    )
    assert redeliveries == 3
    assert metrics.registry.get_sample_value("outbox_backlog", {"source": "probe"}) == 0


def _ticks(*numbers: int, poison: frozenset[int] = frozenset()) -> list[Event]:
    return [
        Event(f"probe:{n}", event_probe.TICKED, str(n), {"poison": n in poison}, utcnow())
        for n in numbers
    ]


def test_a_batch_applies_each_new_event_once_skipping_redeliveries_and_copies(
    target: tuple[str, Engine], bus_url: str
) -> None:
    _, target_engine = target
    bus = open_bus(bus_url)
    metrics = EventMetrics()
    try:
        runner = ConsumerRunner(event_probe.batch_consumer, target_engine, bus, metrics)
        assert runner.apply(_ticks(1)[0]).value == "applied"
        # Event 1 again, and event 2 twice (Redis keeps a copy a restarted relay republished).
        assert runner.apply_batch(_ticks(1, 2, 2, 3))
    finally:
        bus.close()
    _every_event_applied_once(target_engine, 3)
    sample = metrics.registry.get_sample_value
    assert sample("event_redeliveries_total", {"consumer": "probe-tally"}) == 2
    assert sample("events_applied_total", {"consumer": "probe-tally"}) == 3


def test_a_poison_event_fails_its_batch_and_is_parked_alone(
    source: tuple[str, Engine], target: tuple[str, Engine], bus_url: str
) -> None:
    (_, source_engine), (_, target_engine) = source, target
    _record(source_engine, 5, poison=frozenset({3}))
    bus = open_bus(bus_url)
    try:
        Relay("probe", source_engine, bus, 10, EventMetrics()).run_once()
        runner = ConsumerRunner(
            event_probe.batch_consumer, target_engine, bus, EventMetrics(), max_attempts=2
        )
        assert not runner.apply_batch(_ticks(1, 2, 3, poison=frozenset({3})))
        assert _applied(target_engine) == 0, "a failed batch applies nothing"
        assert runner.run_once() == (2, True)  # one by one: 1 and 2, then 3 fails
        assert runner.run_once() == (3, False)  # 3 parked on its second attempt; 4 and 5
    finally:
        bus.close()
    assert _applications(target_engine) == {"1": 1, "2": 1, "4": 1, "5": 1}
