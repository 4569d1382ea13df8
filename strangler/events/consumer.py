"""Run one service's consumer as a process, until SIGTERM or SIGINT.

    SEARCH_DATABASE_URL=... STRANGLER_BUS_URL=... \
        python -m strangler.events.consumer extracted.search.events:consumer
    POLLS_DATABASE_URL=...  STRANGLER_BUS_URL=... POLLS_RESULTS_DIR=... \
        python -m strangler.events.consumer extracted.polls.events:consumer

The argument is the `module:attribute` of a `Consumer` (as a workspace's service names it), or
of a factory that builds one at start (given the process's metrics registry, for metrics of its
own): the polls results consumer reads its pages folder that way. `--replay`
first resets the projection (the consumer's `reset` hook) and rewinds the subscription.
Settings come from the consumer's context (`<CONTEXT>_DATABASE_URL`, `<CONTEXT>_EVENT_*`) and
the shared `STRANGLER_BUS_URL` (see `settings`).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from strangler.events.bus import open_bus
from strangler.events.metrics import EventMetrics
from strangler.events.process import stop_on_signals
from strangler.events.runner import Consumer, ConsumerRunner
from strangler.events.settings import event_settings
from strangler.plumbing.database import make_engine
from strangler.plumbing.logs import configure_logging, get_logger

log = get_logger("consumer")


def load_consumer(target: str, registry: CollectorRegistry) -> Consumer:
    """The consumer `module:attribute` names (the workspace file's `consumer` of a service).
    A callable found there is a factory: it is called with `registry` to build the consumer."""
    module_name, _, attribute = target.partition(":")
    if not attribute:
        raise SystemExit(f"{target!r} is not an import path (module:attribute) of a Consumer")
    found = getattr(importlib.import_module(module_name), attribute)
    if callable(found) and not isinstance(found, Consumer):
        found = found(registry)
    if not isinstance(found, Consumer):
        raise SystemExit(f"{target} is not a Consumer")
    return found


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Apply bus events to a service's database.")
    parser.add_argument("consumer", help="module:attribute of a Consumer")
    parser.add_argument(
        "--replay", action="store_true", help="clear the projection and re-read the bus first"
    )
    arguments = parser.parse_args(argv)
    metrics = EventMetrics()
    consumer = load_consumer(arguments.consumer, metrics.registry)
    settings = event_settings(consumer.context)
    configure_logging(f"{consumer.name}-consumer", settings.log_level)
    metrics.serve(settings.event_metrics_port)
    engine = make_engine(settings.database_url)
    bus = open_bus(settings.bus_url)
    runner = ConsumerRunner(
        consumer, engine, bus, metrics, settings.event_batch_size, settings.event_max_attempts
    )
    if arguments.replay:
        runner.replay()
    log.info("consumer started", consumer=consumer.name, sources=consumer.sources)
    try:
        runner.run(stop_on_signals(), settings.event_poll_seconds, settings.event_retry_seconds)
    finally:
        bus.close()
        engine.dispose()


if __name__ == "__main__":
    main()
