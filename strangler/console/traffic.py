"""Requests, errors and latency per route and side, from two scrapes of the proxy's /metrics.

The proxy counts every request by route, target (the monolith or a service) and status, and
times it in a histogram by route and target. Two scrapes some seconds apart give, per route and
side, the request rate, the share of 5xx answers and the p50/p95 latency of that interval
(interpolated within the histogram's buckets, as Prometheus's `histogram_quantile` does). This
module must never send a request: it reads expositions it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, str]  # (route, target)


@dataclass
class Scrape:
    """The proxy's cumulative counts at one moment."""

    at: float
    requests: dict[Key, float] = field(default_factory=dict)
    errors: dict[Key, float] = field(default_factory=dict)
    buckets: dict[Key, list[tuple[float, float]]] = field(default_factory=dict)


def parse(exposition: str, at: float) -> Scrape:
    scrape = Scrape(at)
    for family in text_string_to_metric_families(exposition):
        if family.name == "proxy_requests":
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                labels = sample.labels
                key = (labels["route"], labels["target"])
                scrape.requests[key] = scrape.requests.get(key, 0.0) + sample.value
                if labels.get("status", "").startswith("5"):
                    scrape.errors[key] = scrape.errors.get(key, 0.0) + sample.value
        elif family.name == "proxy_request_duration_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    key = (sample.labels["route"], sample.labels["target"])
                    bound = float(sample.labels["le"])
                    scrape.buckets.setdefault(key, []).append((bound, sample.value))
    for found in scrape.buckets.values():
        found.sort()
    return scrape


@dataclass(frozen=True)
class Flow:
    """One route's traffic to one side over the interval between two scrapes."""

    route: str
    target: str
    requests_per_second: float
    error_ratio: float
    p50_ms: float | None
    p95_ms: float | None
    total: float


def flows(before: Scrape | None, after: Scrape) -> list[Flow]:
    """Per route and side: rates of the interval (totals only, with no earlier scrape)."""
    seconds = max(after.at - before.at, 1e-6) if before is not None else None
    found = []
    for key, total in sorted(after.requests.items()):
        earlier = before.requests.get(key, 0.0) if before is not None else total
        count = max(total - earlier, 0.0)
        errors = after.errors.get(key, 0.0) - (
            before.errors.get(key, 0.0) if before is not None else after.errors.get(key, 0.0)
        )
        buckets = _delta(before.buckets.get(key, []) if before else [], after.buckets.get(key, []))
        found.append(
            Flow(
                route=key[0],
                target=key[1],
                requests_per_second=round(count / seconds, 2) if seconds else 0.0,
                error_ratio=round(errors / count, 4) if count else 0.0,
                p50_ms=_quantile(buckets, 0.5),
                p95_ms=_quantile(buckets, 0.95),
                total=total,
            )
        )
    return found


def _delta(
    before: list[tuple[float, float]], after: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    earlier = dict(before)
    return [(bound, count - earlier.get(bound, 0.0)) for bound, count in after]


def _quantile(buckets: list[tuple[float, float]], quantile: float) -> float | None:
    """The quantile of cumulative buckets, linearly within its bucket, in milliseconds."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = quantile * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return round(lower_bound * 1000, 2)
            inside = (rank - lower_count) / max(count - lower_count, 1e-9)
            return round((lower_bound + (bound - lower_bound) * inside) * 1000, 2)
        lower_bound, lower_count = bound, count
    return None
