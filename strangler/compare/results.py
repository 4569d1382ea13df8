"""What a load comparison measured: the schema of `report.json`, shared by the run that
measures (`strangler.compare.comparison`) and everything that reads its results (analysis, report,
the diff of two reports).

One `Comparison` holds one `Architecture` per system measured (the monolith direct, behind the
proxy, each stage, the full split). Each architecture has one `Window` per phase: the
background window (no traffic), each step of the limit search, the reference load and the
isolation experiment's hot-search window. A window's endpoint figures are
locust's own (its `StatsEntry` per request name, read on the master at the end of the
window); its resources are read off the processes by a sampler over exactly that window.
Times are epoch seconds, latencies milliseconds, memory MiB. This module must never measure
or judge: it only says what the figures are and reads and writes them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "strangler-compare/2"
AGGREGATED = "Aggregated"  # locust's name for the row that sums every endpoint
DATABASE_ROLE = "database"  # a database server's processes (compare.database_processes)
EMULATOR_ROLE = "emulator"  # the AWS emulator: it stands for DynamoDB and S3, shown on its own
FUNCTIONS_ROLE = "functions"  # a context's functions: the proxy's workers and the stream poller


@dataclass
class Endpoint:
    """One request name's figures over one window (locust's `StatsEntry`)."""

    name: str  # "GET /api/threads/{id}", or AGGREGATED
    requests: int
    failures: int
    requests_per_second: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None = None
    # locust's response times: milliseconds (rounded as locust rounds them) -> count; lets
    # endpoints be merged into one distribution (the isolation experiment's "other endpoints")
    histogram: dict[int, int] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass
class Resources:
    """What the system's processes (and the load generator's) spent over one window."""

    cpu_seconds: float  # every process of the architecture, workers included, summed
    cpu_seconds_by_role: dict[str, float]  # "proxy", "monolith", "users", ..., "events", "sync",
    # and DATABASE_ROLE where a database server runs outside the system's processes
    peak_memory_mib: float  # the largest sum of the processes' PSS seen in the window
    generator_cpu_seconds: float  # locust's own processes (master and workers)
    generator_busiest_core: float  # the busiest locust process's share of one core, 0..1


@dataclass
class Window:
    """One phase of the load: a number of users held for `seconds` after a settle time."""

    phase: str  # "idle" (no traffic), "search" (a step of it), "reference" or "hot search"
    users: int  # simulated users of the normal mix
    hot_users: int  # hot searchers added beside them (the isolation experiment)
    started_at: float
    seconds: float
    endpoints: list[Endpoint]  # every request name seen, AGGREGATED included
    resources: Resources
    users_by_kind: dict[str, int] = field(default_factory=dict)  # what locust had running

    def endpoint(self, name: str) -> Endpoint | None:
        return next((found for found in self.endpoints if found.name == name), None)

    @property
    def total(self) -> Endpoint:
        found = self.endpoint(AGGREGATED)
        if found is None:
            return Endpoint(AGGREGATED, 0, 0, 0.0, None, None, None)
        return found

    @property
    def cpu_seconds_per_1000(self) -> float | None:
        requests = self.total.requests
        return 1000 * self.resources.cpu_seconds / requests if requests else None


@dataclass
class Architecture:
    """One system measured: its processes, its worker budget and its windows."""

    key: str  # "direct", "stage-0", ... "stage-5"
    title: str  # "monolith direct", "stage 0: all monolith", ...
    stage: int | None  # None for the monolith alone, with no proxy
    workers: dict[str, int]  # server workers of each process that runs application code
    processes: dict[str, str]  # process name -> role, every process of the system
    windows: list[Window] = field(default_factory=list)
    seconds: float = 0.0  # wall time: start, every window, stop
    problems: list[str] = field(default_factory=list)  # what went wrong, if anything

    @property
    def search(self) -> list[Window]:
        """The limit search's steps, in the order they ran."""
        return [window for window in self.windows if window.phase == "search"]

    @property
    def idle(self) -> Window | None:
        """The background window: the system started, no traffic."""
        return next((window for window in self.windows if window.phase == "idle"), None)

    @property
    def reference(self) -> Window | None:
        """The reference load: the same fixed rate in every architecture."""
        return next((window for window in self.windows if window.phase == "reference"), None)

    @property
    def hot(self) -> Window | None:
        return next((window for window in self.windows if window.phase == "hot search"), None)


@dataclass
class Settings:
    """How the comparison was run: the same for every architecture."""

    profile: str
    start_users: int  # the limit search: its first step (users with no think time) ...
    max_users: int  # ... at most this many users ...
    search_seconds: float  # ... within this time
    settle_seconds: float
    window_seconds: float
    idle_seconds: float  # the background window (no traffic)
    reference_rate: float  # req/s of the reference load, the same for every architecture
    reference_users: int  # the paced users carrying it, and the isolation base
    p95_bound_ms: float  # the limit: the last search step whose p95 stays under this ...
    error_bound: float  # ... and whose error rate stays under this
    hot_users: int  # hot users of the isolation experiment (no think time) ...
    hot_endpoint: str  # ... the endpoint they load
    worker_budget: int  # server workers shared by the monolith and services, every architecture
    generator_processes: int  # locust processes (1: headless; more: master and workers)
    scale: float  # seed size
    mix: dict[str, Any]  # the scenario: user kinds, weights, think times
    hot_name: str = "hot users"  # what the scenario calls them ("searchers"); older reports: this
    hop_latency_ms: float = 0.0  # a delay on every hop between processes (0: none added)


@dataclass
class Comparison:
    """A whole run."""

    settings: Settings
    machine: dict[str, Any]  # cpus, memory, python, locust, database ...
    started_at: float
    seconds: float = 0.0
    architectures: list[Architecture] = field(default_factory=list)
    schema: str = SCHEMA

    def architecture(self, key: str) -> Architecture | None:
        return next((found for found in self.architectures if found.key == key), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Comparison:
        return from_json(json.loads(path.read_text(encoding="utf-8")))


def from_json(data: dict[str, Any]) -> Comparison:
    """The inverse of `Comparison.to_json`; refuses another schema with a clear message."""
    if data.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} report (schema {data.get('schema')!r})")
    architectures = [
        Architecture(
            **{
                **found,
                "windows": [
                    Window(
                        **{
                            **window,
                            "endpoints": [
                                endpoint_from_json(entry) for entry in window["endpoints"]
                            ],
                            "resources": Resources(**window["resources"]),
                        }
                    )
                    for window in found["windows"]
                ],
            }
        )
        for found in data["architectures"]
    ]
    return Comparison(
        settings=Settings(**data["settings"]),
        machine=data["machine"],
        started_at=data["started_at"],
        seconds=data["seconds"],
        architectures=architectures,
    )


def endpoint_from_json(entry: dict[str, Any]) -> Endpoint:
    """An endpoint read back from JSON, whose keys (the histogram's too) are strings."""
    histogram = {int(ms): count for ms, count in entry.get("histogram", {}).items()}
    return Endpoint(**{**entry, "histogram": histogram})
