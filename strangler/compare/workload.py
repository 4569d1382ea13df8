"""The workload of a load comparison, read from `loadtests/scenario.toml`: the kinds of simulated
users, their weights and think times, and the profiles (steps, windows, bounds, budgets).

The comparison turns a profile into a `Plan` (the phases to run and what the seeded data holds)
and hands it to locust through a JSON file; `loadtests.locustfile` reads it back. This module
must never send a request or start a process.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PLAN_VARIABLE = "STRANGLER_LOAD_PLAN"  # where the locustfile finds its plan
WINDOWS_VARIABLE = "STRANGLER_LOAD_WINDOWS"  # where it writes each window's figures (JSON lines)
TASKS = {
    "reader": {"list_threads", "get_thread", "list_posts", "get_user", "list_users"},
    "voter": {"get_poll", "vote", "results", "results_page"},
    "poster": {"start_thread", "add_post", "change_profile", "get_thread", "me"},
    "searcher": {"search", "get_thread"},
    "newcomer": {"sign_up", "me"},
}
# The endpoints each task sends requests to, as the report names them.
ENDPOINTS = {
    "list_threads": ("GET /api/threads",),
    "get_thread": ("GET /api/threads/{id}",),
    "list_posts": ("GET /api/threads/{id}/posts",),
    "get_user": ("GET /api/users/{id}",),
    "list_users": ("GET /api/users",),
    "me": ("GET /api/me",),
    "get_poll": ("GET /api/polls/{id}",),
    "vote": ("GET /api/polls/{id}", "POST /api/polls/{id}/votes"),
    "results": ("GET /api/polls/{id}/results",),
    "results_page": ("GET /results/{id}.html",),
    "search": ("GET /api/search",),
    "start_thread": ("POST /api/threads",),
    "add_post": ("POST /api/threads/{id}/posts",),
    "change_profile": ("PATCH /api/users/{id}",),
    "sign_up": ("POST /api/users", "POST /api/sessions"),
}


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
    steps: list[int]
    settle_seconds: float
    window_seconds: float
    reference_users: int
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
            for endpoint in ENDPOINTS[task]
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
        kinds = [_kind(name, entry) for name, entry in data["kinds"].items()]
        profiles = {name: _profile(name, entry) for name, entry in data["profiles"].items()}
        hot = str(data["hot"]["endpoint"])
    except KeyError as error:
        raise ScenarioError(f"{path}: missing {error}") from error
    except (TypeError, ValueError) as error:
        raise ScenarioError(f"{path}: {error}") from error
    if not kinds or sum(kind.weight for kind in kinds) <= 0:
        raise ScenarioError(f"{path}: the kinds' weights must add up to more than 0")
    return Scenario(kinds, hot, profiles)


def _kind(name: str, entry: dict[str, Any]) -> Kind:
    if name not in TASKS:
        raise ValueError(f"kinds.{name}: unknown kind (known: {', '.join(sorted(TASKS))})")
    low, high = (float(value) for value in entry["think_seconds"])
    if not 0 <= low <= high:
        raise ValueError(f"kinds.{name}.think_seconds: want [low, high] with 0 <= low <= high")
    tasks = {str(task): int(weight) for task, weight in entry["tasks"].items()}
    unknown = set(tasks) - TASKS[name]
    if unknown:
        raise ValueError(f"kinds.{name}.tasks: a {name} cannot {', '.join(sorted(unknown))}")
    return Kind(name, int(entry["weight"]), (low, high), tasks)


def _profile(name: str, entry: dict[str, Any]) -> Profile:
    profile = Profile(
        name=name,
        steps=[int(users) for users in entry["steps"]],
        settle_seconds=float(entry["settle_seconds"]),
        window_seconds=float(entry["window_seconds"]),
        reference_users=int(entry["reference_users"]),
        hot_users=int(entry["hot_users"]),
        p95_bound_ms=float(entry["p95_bound_ms"]),
        error_bound=float(entry["error_bound"]),
        worker_budget=int(entry["worker_budget"]),
        generator_processes=int(entry["generator_processes"]),
        scale=float(entry["scale"]),
    )
    if profile.reference_users not in profile.steps:
        raise ValueError(f"profiles.{name}: reference_users must be one of the steps")
    if profile.steps != sorted(set(profile.steps)) or profile.steps[0] < 1:
        raise ValueError(f"profiles.{name}.steps: want rising numbers of users, at least 1")
    if profile.window_seconds <= 0 or profile.worker_budget < 1:
        raise ValueError(f"profiles.{name}: window_seconds and worker_budget must be positive")
    return profile


@dataclass(frozen=True)
class Phase:
    """One phase the locustfile runs: users (and hot searchers) held, then measured."""

    phase: str  # "step" or "hot search"
    users: int
    hot_users: int
    settle_seconds: float
    window_seconds: float


@dataclass
class Plan:
    """Everything one locust run needs: the phases, the kinds, and what the seed holds."""

    phases: list[Phase]
    kinds: list[Kind]
    # What the seeded data holds, as the workspace's `load.plan_data` hook says (the forum:
    # how many users, threads and polls, and each seeded user's bearer token).
    data: dict[str, Any] = field(default_factory=dict)
    seed: int = 1

    @classmethod
    def for_profile(cls, profile: Profile, scenario: Scenario, **data: Any) -> Plan:
        phases = [
            Phase("step", users, 0, profile.settle_seconds, profile.window_seconds)
            for users in profile.steps
        ]
        if profile.hot_users:
            phases.append(
                Phase(
                    "hot search",
                    profile.reference_users,
                    profile.hot_users,
                    profile.settle_seconds,
                    profile.window_seconds,
                )
            )
        return cls(phases, scenario.kinds, **data)

    @property
    def seconds(self) -> float:
        return sum(phase.settle_seconds + phase.window_seconds for phase in self.phases)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Plan:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
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
