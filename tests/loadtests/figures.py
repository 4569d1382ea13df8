"""Plausible `Comparison` objects built in code: what a short run on two cores might measure.

Each architecture has a capacity (req/s) and a base latency per endpoint; a step's latency grows
as its load nears the capacity, and its histograms are drawn from a seeded generator, so every
figure (locust's percentiles included) is consistent with the histograms it carries.
"""

from __future__ import annotations

import numpy

from strangler.compare.results import (
    AGGREGATED,
    Architecture,
    Comparison,
    Endpoint,
    Resources,
    Settings,
    Window,
)

SEARCH = "GET /api/search"
ENDPOINTS = {  # name -> share of the normal mix, base latency (ms)
    "GET /api/threads": (0.4, 8.0),
    "GET /api/threads/{id}": (0.3, 6.0),
    "POST /api/polls/{id}/votes": (0.2, 12.0),
    SEARCH: (0.1, 30.0),
}
STEPS = [10, 20, 40, 60, 80]  # the limit search's steps (users with no think time)
WINDOW_SECONDS = 20.0
REFERENCE_USERS = 20


def settings(**changes: object) -> Settings:
    values: dict[str, object] = {
        "profile": "short",
        "start_users": STEPS[0],
        "max_users": STEPS[-1],
        "search_seconds": 25.0 * len(STEPS),
        "settle_seconds": 5.0,
        "window_seconds": WINDOW_SECONDS,
        "idle_seconds": 5.0,
        "reference_rate": 80.0,
        "p95_bound_ms": 200.0,
        "error_bound": 0.01,
        "reference_users": REFERENCE_USERS,
        "hot_users": 10,
        "hot_endpoint": SEARCH,
        "worker_budget": 4,
        "generator_processes": 1,
        "scale": 0.1,
        "mix": {"reader": 3, "voter": 1, "think_seconds": [0.5, 1.5]},
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def percentile(histogram: dict[int, int], quantile: float) -> float:
    """Locust's rule by brute force: the time at position int(n * quantile) of every time."""
    times = sorted(time for time, count in histogram.items() for _ in range(count))
    return float(times[min(int(len(times) * quantile), len(times) - 1)])


def endpoint(name: str, times: numpy.ndarray, failures: int, seconds: float) -> Endpoint:
    """Locust's figures for these response times (ms, rounded): its percentiles, its histogram."""
    ordered = numpy.sort(times)
    values, counts = numpy.unique(ordered, return_counts=True)

    def at(quantile: float) -> float:
        return float(ordered[min(int(len(ordered) * quantile), len(ordered) - 1)])

    return Endpoint(
        name=name,
        requests=len(ordered),
        failures=failures,
        requests_per_second=len(ordered) / seconds,
        p50_ms=at(0.5),
        p95_ms=at(0.95),
        p99_ms=at(0.99),
        max_ms=float(ordered[-1]),
        histogram=dict(zip(values.tolist(), counts.tolist(), strict=True)),
    )


def window(
    random: numpy.random.Generator,
    users: int,
    capacity: float,
    slowdown: float,
    roles: dict[str, float],
    hot_users: int = 0,
    hot_sharing: float = 1.0,
    phase: str = "search",
) -> Window:
    """One window; `roles` is each role's share of the CPU, `hot_sharing` how much the hot
    searchers slow everything else (1.0: not at all)."""
    offered = users * 4.0 + hot_users * 6.0
    served = min(offered, capacity)
    pressure = 1.0 / max(1.0 - served / capacity, 0.02)
    endpoints, every = [], []
    for name, (share, base) in ENDPOINTS.items():
        count = int(served * WINDOW_SECONDS * share) + (
            int(hot_users * 6.0 * WINDOW_SECONDS * 0.5) if name == SEARCH else 0
        )
        scale = base * slowdown * pressure * (1.0 if name == SEARCH else hot_sharing)
        times = numpy.rint(random.gamma(2.0, scale / 2.0, size=max(count, 1))).astype(int)
        failures = int(count * 0.02) if pressure > 20 else 0
        endpoints.append(endpoint(name, times, failures, WINDOW_SECONDS))
        every.append(times)
    failures = sum(found.failures for found in endpoints)
    endpoints.append(endpoint(AGGREGATED, numpy.concatenate(every), failures, WINDOW_SECONDS))
    cpu = served * WINDOW_SECONDS * 0.0045 * slowdown
    return Window(
        phase="hot search" if hot_users else phase,
        users=users,
        hot_users=hot_users,
        started_at=1_700_000_000.0,
        seconds=WINDOW_SECONDS,
        endpoints=endpoints,
        resources=Resources(
            cpu_seconds=cpu,
            cpu_seconds_by_role={role: cpu * share for role, share in roles.items()},
            peak_memory_mib=150.0 + 20 * len(roles) + users * 0.5,
            generator_cpu_seconds=served * WINDOW_SECONDS * 0.0005,
            generator_busiest_core=min(served * 0.0005, 1.0),
        ),
    )


def architecture(
    key: str,
    title: str,
    capacity: float,
    slowdown: float,
    roles: dict[str, float],
    workers: dict[str, int],
    hot_sharing: float,
    seed: int,
) -> Architecture:
    random = numpy.random.default_rng(seed)
    idle_cpu = {role: 0.05 for role in roles if role in ("events", "sync")} or {
        role: 0.01 for role in roles
    }
    idle = Window(
        "idle", 0, 0, 1_700_000_000.0, 5.0, [],
        Resources(sum(idle_cpu.values()), idle_cpu, 150.0, 0.0, 0.0),
    )  # fmt: skip
    windows = [idle]
    windows += [window(random, users, capacity, slowdown, roles) for users in STEPS]
    reference = REFERENCE_USERS
    windows.append(window(random, reference, capacity, slowdown, roles, phase="reference"))
    windows.append(window(random, reference, capacity, slowdown, roles, 10, hot_sharing))
    processes = {name: name for name in workers} | {
        role: role for role in roles if role not in workers
    }
    return Architecture(
        key=key,
        title=title,
        stage=None if key == "direct" else int(key.split("-")[1]),
        workers=workers,
        processes=processes,
        windows=windows,
        seconds=len(windows) * 25.0,
    )


def comparison(
    split_capacity: float = 240.0, split_slowdown: float = 1.5, **setting_changes: object
) -> Comparison:
    """Three architectures: the monolith direct, behind the proxy, and the full split (whose
    capacity and slowdown a test may change: the monolith wins by default)."""
    split_roles = {"proxy": 0.3, "users": 0.1, "forum": 0.25, "polls": 0.1, "search": 0.15}
    return Comparison(
        settings=settings(**setting_changes),
        machine={"cpus": 2, "memory_mib": 7900, "python": "3.11.9", "locust": "2.47.0"},
        started_at=1_700_000_000.0,
        seconds=400.0,
        architectures=[
            architecture("direct", "monolith direct", 320.0, 1.0, {"monolith": 1.0},
                         {"monolith": 4}, 3.0, 1),
            architecture("stage-0", "stage 0: all monolith", 260.0, 1.3,
                         {"proxy": 0.35, "monolith": 0.65}, {"monolith": 4}, 3.0, 2),
            architecture("stage-5", "stage 5: full split", split_capacity, split_slowdown,
                         split_roles | {"events": 0.05, "sync": 0.05},
                         {"users": 1, "forum": 1, "polls": 1, "search": 1}, 1.2, 3),
        ],
    )  # fmt: skip
