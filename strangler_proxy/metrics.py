"""The proxy's Prometheus metrics, in a registry owned by one app instance.

Requests and latency per route, target and status; fallbacks; shadow comparisons by outcome;
breaker state per upstream (a label) and canary ratio per route (both refreshed at scrape
time).
The two metrics every request touches are plain counters read by a custom collector at scrape
time (`RequestCounts`): a `prometheus_client` child takes a lock and a method call per update,
which was a measurable share of the proxy's CPU per request. The proxy serves each request on
one event-loop thread, so plain integers need no lock. This module must never decide anything:
it only counts what others report.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from strangler.plumbing.metrics import LATENCY_BUCKETS

REQUESTS_HELP = "Requests answered by the proxy"
LATENCY_HELP = "Time from request to the last byte of the response"


class _Latency:
    """One histogram's state: the count per bucket (not cumulative) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.total = 0.0


class RequestCounts(Collector):
    """`proxy_requests_total` and `proxy_request_duration_seconds` as plain numbers.

    Written only from the event loop's thread; read by `collect` on the same thread when
    /metrics is served, so a scrape sees a consistent state.
    """

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self._bounds = (*buckets, float("inf"))
        self._requests: dict[tuple[str, str, str, int], int] = {}
        self._latency: dict[tuple[str, str], _Latency] = {}

    def observe(self, route: str, target: str, method: str, status: int, seconds: float) -> None:
        key = (route, target, method, status)
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        latency = self._latency.get((route, target))
        if latency is None:
            latency = self._latency[(route, target)] = _Latency(len(self._bounds))
        latency.counts[bisect_left(self._bounds, seconds)] += 1
        latency.total += seconds

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "proxy_requests_total", REQUESTS_HELP, labels=["route", "target", "method", "status"]
        )
        latency = HistogramMetricFamily(
            "proxy_request_duration_seconds", LATENCY_HELP, labels=["route", "target"]
        )
        return requests, latency

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        requests, latency = self._families()
        for (route, target, method, status), count in self._requests.items():
            requests.add_metric([route, target, method, str(status)], count)
        for (route, target), state in self._latency.items():
            cumulative, buckets = 0, []
            for bound, count in zip(self._bounds, state.counts, strict=True):
                cumulative += count
                buckets.append((_bound_label(bound), cumulative))
            latency.add_metric([route, target], buckets, state.total)
        yield requests
        yield latency


def _bound_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class ProxyMetrics:
    """Counters, histograms and gauges of one proxy process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = RequestCounts()
        self.registry.register(self.requests)
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
            "1 for the state each upstream's circuit breaker is in (closed, half_open, open)",
            ["upstream", "state"],
            registry=self.registry,
        )
        self.canary_ratio = Gauge(
            "proxy_canary_ratio",
            "Share of callers a route sends to its service (0..1; 1 once the service serves it)",
            ["route"],
            registry=self.registry,
        )
        self.table_version = Gauge(
            "proxy_route_table_version", "Version of the route table in use", registry=self.registry
        )

    def observe(self, route: str, target: str, method: str, status: int, seconds: float) -> None:
        self.requests.observe(route, target, method, status, seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
