"""The proxy's Prometheus metrics, in a registry owned by one app instance.

Requests and latency per route, target and status; fallbacks; shadow comparisons by outcome;
breaker state per upstream and canary percentage per route (both refreshed at scrape time).
This module must never decide anything: it only counts what others report.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from plumbing.metrics import LATENCY_BUCKETS


class ProxyMetrics:
    """Counters, histograms and gauges of one proxy process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "proxy_requests_total",
            "Requests answered by the proxy",
            ["route", "target", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "proxy_request_duration_seconds",
            "Time from request to the last byte of the response",
            ["route", "target"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "proxy_fallbacks_total",
            "Safe requests answered by the monolith after the service failed",
            ["route", "upstream", "reason"],
            registry=self.registry,
        )
        self.upstream_failures = Counter(
            "proxy_upstream_failures_total",
            "Failed attempts to reach an upstream",
            ["upstream", "reason"],
            registry=self.registry,
        )
        self.shadow = Counter(
            "proxy_shadow_comparisons_total",
            "Shadow comparisons by outcome (match, mismatch, error, dropped)",
            ["route", "outcome"],
            registry=self.registry,
        )
        self.breaker_state = Gauge(
            "proxy_breaker_state",
            "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open",
            ["upstream"],
            registry=self.registry,
        )
        self.canary_percent = Gauge(
            "proxy_canary_percent",
            "Share of callers sent to the service, per route (0..100)",
            ["route"],
            registry=self.registry,
        )
        self._counters: dict[tuple[str, str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}
        self.table_version = Gauge(
            "proxy_route_table_version", "Version of the route table in use", registry=self.registry
        )

    def observe(self, route: str, target: str, method: str, status: int, seconds: float) -> None:
        # labels() takes a lock and builds a key each call; the hot path keeps the children.
        counter = self._counters.get((route, target, method, status))
        if counter is None:
            counter = self.requests.labels(route, target, method, str(status))
            self._counters[(route, target, method, status)] = counter
        counter.inc()
        histogram = self._histograms.get((route, target))
        if histogram is None:
            histogram = self._histograms[(route, target)] = self.latency.labels(route, target)
        histogram.observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
