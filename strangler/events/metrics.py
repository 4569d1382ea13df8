"""Prometheus metrics of the event path: outbox backlog, consumer lag and delay, redeliveries,
parking.

One registry per relay or consumer process, served on `<CONTEXT>_EVENT_METRICS_PORT` when set.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# From a few milliseconds to past the contract's 2 seconds, finer where the bound is.
DELAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class EventMetrics:
    """The counters and gauges a relay or a consumer updates as it works."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.outbox_backlog = Gauge(
            "outbox_backlog", "Outbox events not yet published", ["source"], registry=self.registry
        )
        self.published = Counter(
            "events_published_total", "Events handed to the bus", ["source"], registry=self.registry
        )
        self.consumer_lag = Gauge(
            "consumer_lag",
            "Events on the bus not yet acknowledged",
            ["consumer"],
            registry=self.registry,
        )
        self.applied = Counter(
            "events_applied_total", "Events applied", ["consumer"], registry=self.registry
        )
        self.delay = Histogram(
            "event_delay_seconds",
            "Seconds from an event's recording in its outbox to its application by the consumer",
            ["consumer"],
            buckets=DELAY_BUCKETS,
            registry=self.registry,
        )
        self.redeliveries = Counter(
            "event_redeliveries_total",
            "Events received again (already applied, or after a failed attempt)",
            ["consumer"],
            registry=self.registry,
        )
        self.failures = Counter(
            "event_failures_total",
            "Failed attempts to apply an event",
            ["consumer"],
            registry=self.registry,
        )
        self.parked = Counter(
            "events_parked_total",
            "Events parked after too many attempts",
            ["consumer"],
            registry=self.registry,
        )

    def serve(self, port: int | None) -> None:
        """Expose /metrics on `port` (loopback) when one is configured."""
        if port:
            start_http_server(port, addr="127.0.0.1", registry=self.registry)
