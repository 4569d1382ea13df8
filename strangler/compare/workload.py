"""The workload of a load comparison, read from `loadtests/scenario.toml`: the kinds of simulated
users, their weights and think times, and the profiles (the limit search, windows, bounds,
budgets).

The comparison turns a profile into a `Plan` (the limit search, the phases after it and what
the seeded data holds) and hands it to locust through a JSON file; `loadtests.locustfile` reads
it back. The search itself is decided here (`next_search_users`), step by step, from the figures
of the steps before: a closed loop of users with no think time, stepped up until the p95 bound
or the error bound breaks, within a time budget. This module must never send a request or start
a process.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PLAN_VARIABLE = "STRANGLER_LOAD_PLAN"  # where the locustfile finds its plan
WINDOWS_VARIABLE = "STRANGLER_LOAD_WINDOWS"  # where it writes each window's figures (JSON lines)


class ScenarioError(ValueError):
    """The scenario file says something that cannot run; the message says where."""


@dataclass(frozen=True)
class Kind:
    """One kind of simulated user."""

    name: str
    weight: int
    think_seconds: tuple[float, float]
    tasks: dict[str, int]


@dataclass(frozen=True)
class Profile:
    """How long and how hard a comparison pushes each architecture."""

    name: str
    start_users: int  # the limit search's first step (users with no think time)
    max_users: int  # it never goes past this many users
    search_seconds: float  # nor past this time (settle and window of every step)
    settle_seconds: float
    window_seconds: float
    idle_seconds: float  # background CPU: the started system with no traffic, measured this long
    reference_rate: float  # req/s: the fixed load every architecture is compared at
    reference_users: int  # users sharing it (paced), and the isolation experiment's base
    hot_users: int
    p95_bound_ms: float
    error_bound: float
    worker_budget: int
    generator_processes: int
    scale: float


@dataclass(frozen=True)
class Scenario:
    kinds: list[Kind]
    hot_endpoint: str
    profiles: dict[str, Profile]
    # task -> the endpoints it sends requests to, as the report names them (`[tasks]`)
    task_endpoints: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # what the report calls the isolation experiment's hot users (`[hot] name`): "searchers"
    hot_name: str = "hot users"

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            known = ", ".join(sorted(self.profiles))
            raise ScenarioError(f"no profile {name!r} in the scenario (known: {known})")
        return self.profiles[name]

    def endpoints(self) -> set[str]:
        """Every endpoint the mix sends requests to."""
        return {
            endpoint
            for kind in self.kinds
            if kind.weight > 0
            for task, weight in kind.tasks.items()
            if weight > 0
            for endpoint in self.task_endpoints[task]
        }

    def mix(self) -> dict[str, Any]:
        """The kinds as the report states them."""
        return {kind.name: asdict(kind) for kind in self.kinds} | {"hot": self.hot_endpoint}


def load_scenario(path: Path | None = None) -> Scenario:
    """Read and check a scenario file (default: STRANGLER_SCENARIO, else the workspace's)."""
    path = path or Path(os.environ.get("STRANGLER_SCENARIO") or _workspace_scenario())
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ScenarioError(f"{path}: {error}") from error
    try:
        declared = _declared_tasks(data["tasks"])
        kinds = [_kind(name, entry, declared) for name, entry in data["kinds"].items()]
        profiles = {name: _profile(name, entry) for name, entry in data["profiles"].items()}
        hot = str(data["hot"]["endpoint"])
        hot_name = _hot_name(data["hot"].get("name", "hot users"))
    except KeyError as error:
        raise ScenarioError(f"{path}: missing {error}") from error
    except (TypeError, ValueError) as error:
        raise ScenarioError(f"{path}: {error}") from error
    if not kinds or sum(kind.weight for kind in kinds) <= 0:
        raise ScenarioError(f"{path}: the kinds' weights must add up to more than 0")
    return Scenario(kinds, hot, profiles, declared, hot_name)


def _hot_name(name: Any) -> str:
    """The hot users' name as sentences use it ("4 searchers with no think time")."""
    if not isinstance(name, str) or not name.strip() or len(name) > 40:
        raise ValueError('hot.name: want a short plural noun for the hot users, like "searchers"')
    return name.strip()


def _declared_tasks(entry: Any) -> dict[str, tuple[str, ...]]:
    """The scenario's tasks and the endpoints each sends requests to."""
    if not isinstance(entry, dict) or not entry:
        raise ValueError('tasks: want a table of task = ["METHOD /path", ...]')
    declared = {}
    for task, endpoints in entry.items():
        if (
            not isinstance(endpoints, list)
            or not endpoints
            or not all(
                isinstance(found, str) and re.fullmatch(r"[A-Z]+ /\S*", found)
                for found in endpoints
            )
        ):
            raise ValueError(f'tasks.{task}: want a list of endpoints like "GET /api/books/{{id}}"')
        declared[str(task)] = tuple(endpoints)
    return declared


def _kind(name: str, entry: dict[str, Any], declared: dict[str, tuple[str, ...]]) -> Kind:
    low, high = (float(value) for value in entry["think_seconds"])
    if not 0 <= low <= high:
        raise ValueError(f"kinds.{name}.think_seconds: want [low, high] with 0 <= low <= high")
    tasks = {str(task): int(weight) for task, weight in entry["tasks"].items()}
    unknown = set(tasks) - set(declared)
    if unknown:
        raise ValueError(f"kinds.{name}.tasks: {', '.join(sorted(unknown))} not in [tasks]")
    return Kind(name, int(entry["weight"]), (low, high), tasks)


def _profile(name: str, entry: dict[str, Any]) -> Profile:
    profile = Profile(
        name=name,
        start_users=int(entry["start_users"]),
        max_users=int(entry["max_users"]),
        search_seconds=float(entry["search_seconds"]),
        settle_seconds=float(entry["settle_seconds"]),
        window_seconds=float(entry["window_seconds"]),
        idle_seconds=float(entry["idle_seconds"]),
        reference_rate=float(entry["reference_rate"]),
        reference_users=int(entry["reference_users"]),
        hot_users=int(entry["hot_users"]),
        p95_bound_ms=float(entry["p95_bound_ms"]),
        error_bound=float(entry["error_bound"]),
        worker_budget=int(entry["worker_budget"]),
        generator_processes=int(entry["generator_processes"]),
        scale=float(entry["scale"]),
    )
    if not 1 <= profile.start_users <= profile.max_users:
        raise ValueError(f"profiles.{name}: want 1 <= start_users <= max_users")
    if profile.search_seconds < profile.settle_seconds + profile.window_seconds:
        raise ValueError(f"profiles.{name}.search_seconds: shorter than one step")
    if profile.reference_rate <= 0 or profile.reference_users < 1:
        raise ValueError(f"profiles.{name}: reference_rate and reference_users must be positive")
    if profile.window_seconds <= 0 or profile.worker_budget < 1 or profile.idle_seconds < 0:
        raise ValueError(f"profiles.{name}: window_seconds and worker_budget must be positive")
    return profile


@dataclass(frozen=True)
class Phase:
    """One phase the locustfile runs: users (and hot users) held, then measured."""

    phase: str  # "search", "reference" or "hot search"
    users: int
    hot_users: int
    settle_seconds: float
    window_seconds: float
    pace: float = 0.0  # tasks per second of each normal user (0: no think time at all)


@dataclass(frozen=True)
class Search:
    """The limit search: steps of `users` with no think time, more each step, until a step
    breaks the p95 bound or the error bound (its last good step is the limit), `max_users`
    is reached or the next step would not fit in `seconds` (then the limit is not reached)."""

    start_users: int
    max_users: int
    seconds: float
    settle_seconds: float
    window_seconds: float
    p95_bound_ms: float
    error_bound: float

    @property
    def step_seconds(self) -> float:
        return self.settle_seconds + self.window_seconds


@dataclass(frozen=True)
class StepFigures:
    """What one search step measured: all the search needs to choose the next."""

    users: int
    requests: int
    p95_ms: float | None
    error_rate: float


# The next step aims its p95 at this share of the bound: at saturation a closed loop's latency
# grows in proportion to its users (Little's law), so users x bound / p95 is where it breaks.
SEARCH_AIM = 0.8
SEARCH_GROWTH = (1.5, 4.0)  # each step has at least 1.5 and at most 4 times the users before


def breaks(step: StepFigures, p95_bound_ms: float, error_bound: float) -> bool:
    """Whether a step broke the bounds (a step that got no answer at all broke them)."""
    return (
        step.requests == 0
        or step.p95_ms is None
        or step.p95_ms > p95_bound_ms
        or step.error_rate > error_bound
    )


def next_search_users(search: Search, done: list[StepFigures]) -> int | None:
    """The users of the search's next step, or None when the search is over."""
    if not done:
        return search.start_users
    last = done[-1]
    if breaks(last, search.p95_bound_ms, search.error_bound) or last.users >= search.max_users:
        return None
    if (len(done) + 1) * search.step_seconds > search.seconds + 1e-9:
        return None
    assert last.p95_ms is not None
    low, high = SEARCH_GROWTH
    growth = min(max(SEARCH_AIM * search.p95_bound_ms / max(last.p95_ms, 1.0), low), high)
    return min(search.max_users, max(last.users + 1, math.ceil(last.users * growth)))


def requests_per_task(scenario: Scenario) -> float:
    """Requests one task sends on average over the mix (a vote reads the poll first)."""
    weighted = total = 0.0
    for kind in scenario.kinds:
        tasks = {task: weight for task, weight in kind.tasks.items() if weight > 0}
        if kind.weight <= 0 or not tasks:
            continue
        sent = scenario.task_endpoints
        per_task = sum(w * len(sent[t]) for t, w in tasks.items()) / sum(tasks.values())
        weighted += kind.weight * per_task
        total += kind.weight
    return weighted / total if total else 1.0


@dataclass
class Plan:
    """Everything one locust run needs: the search, the phases after it, the kinds, and what
    the seed holds."""

    search: Search
    phases: list[Phase]
    kinds: list[Kind]
    # What the seeded data holds, as the workspace's `load.plan_data` hook says (the forum:
    # how many users, threads and polls, and each seeded user's bearer token).
    data: dict[str, Any] = field(default_factory=dict)
    seed: int = 1

    @classmethod
    def for_profile(cls, profile: Profile, scenario: Scenario, **data: Any) -> Plan:
        search = Search(
            profile.start_users, profile.max_users, profile.search_seconds,
            profile.settle_seconds, profile.window_seconds,
            profile.p95_bound_ms, profile.error_bound,
        )  # fmt: skip
        pace = profile.reference_rate / requests_per_task(scenario) / profile.reference_users
        timing = (profile.settle_seconds, profile.window_seconds)
        phases = [Phase("reference", profile.reference_users, 0, *timing, pace)]
        if profile.hot_users:
            phases.append(
                Phase("hot search", profile.reference_users, profile.hot_users, *timing, pace)
            )
        return cls(search, phases, scenario.kinds, **data)

    @property
    def seconds(self) -> float:
        """The longest the run may take: the whole search budget, then every phase."""
        after = sum(phase.settle_seconds + phase.window_seconds for phase in self.phases)
        return self.search.seconds + after

    @property
    def most_windows(self) -> int:
        """The most windows the run may write: every search step that fits, every phase."""
        return int(self.search.seconds // self.search.step_seconds) + len(self.phases)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Plan:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            search=Search(**data["search"]),
            phases=[Phase(**phase) for phase in data["phases"]],
            kinds=[
                Kind(kind["name"], kind["weight"], tuple(kind["think_seconds"]), kind["tasks"])
                for kind in data["kinds"]
            ],
            data=data["data"],
            seed=data["seed"],
        )


def _workspace_scenario() -> Path:
    from strangler.workspace import find_workspace

    workspace = find_workspace()
    if workspace.spec.load.scenario is None:
        raise ScenarioError([f"{workspace.file}: [load] names no scenario file"])
    return workspace.root / workspace.spec.load.scenario
