"""The locust side of `strangler compare`, for any workspace: the simulated users built from the
scenario's kinds, the load shape that drives them, and the figures it records.

A workspace's locustfile declares only its tasks (named functions taking the user) and, if it
wants, how a user signs in and which task is the hot spot, then hands them over:

    from strangler.compare.locust_support import Visitor, install

    def list_books(user: Visitor) -> None:
        user.expect("GET", "/api/books?limit=20", "/api/books", (200,))

    install(globals(), tasks=[list_books, ...], hot=list_books, sign_in=None)

`strangler compare` runs it headless, alone or as a master with worker processes:

    STRANGLER_LOAD_PLAN=plan.json STRANGLER_LOAD_WINDOWS=windows.jsonl \\
        locust -f LOCUSTFILE --headless --host http://127.0.0.1:8000 [--processes 2]

The plan (`strangler.compare.workload.Plan`) says which kinds of users to simulate (weights and
task weights from the scenario), what the seed holds (the workspace's `load.plan_data` hook),
the limit search and the phases after it. The search runs the mix with no think time, one step
after the other, each step's users chosen from the steps before (`workload.next_search_users`)
until a bound breaks; then the reference phase paces the same users to a fixed rate, and the
last phase adds hot users (no think time, the `hot` task) beside it: the isolation experiment.
Each step or phase holds its users for a settle time, resets locust's statistics, measures for a
window, and appends locust's own figures for that window (every request name, and the
aggregate) as one JSON line to the windows file.

Without a plan, `locust -f LOCUSTFILE --host URL` runs the mix with the scenario's think times
under locust's own web UI, against the system `strangler up` serves from the workspace's folder
(the plan's data from its `load.plan_data` hook, the seed's size `STRANGLER_LOAD_SCALE`,
default 1.0, as `strangler up` seeds).

With worker processes, figures reach the master every second, so a window's requests may be off
by up to a second's worth at either end; its CPU figures are measured over exactly the window
(strangler.compare.sampler). This module must never judge the figures.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import locust.runners
from locust import LoadTestShape, User, between, constant, events
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.stats import StatsEntry

from strangler.compare.results import AGGREGATED, Endpoint
from strangler.compare.workload import (
    PLAN_VARIABLE,
    WINDOWS_VARIABLE,
    Kind,
    Phase,
    Plan,
    StepFigures,
    next_search_users,
)

locust.runners.WORKER_REPORT_INTERVAL = 1.0  # workers' figures reach the master each second

USER_NUMBERS = itertools.count()
HOLD_SECONDS = 30.0  # at most, for locust to run the users a phase asks before its settle time
PLAN = Plan.load(Path(os.environ[PLAN_VARIABLE])) if PLAN_VARIABLE in os.environ else None
PACE = [0.0]  # tasks per second of each normal user in the current phase; 0: no think time

Task = Callable[["Visitor"], Any]


@events.init.add_listener
def _follow_the_pace(environment: Environment, **_: Any) -> None:
    """A worker (or a lone locust) takes each phase's pace from the shape on the master."""
    runner = environment.runner
    if runner is not None and not isinstance(runner, locust.runners.MasterRunner):
        runner.register_message("pace", lambda msg, **_: PACE.__setitem__(0, msg.data["pace"]))


def set_pace(runner: locust.runners.Runner, pace: float) -> None:
    PACE[0] = pace
    if isinstance(runner, locust.runners.MasterRunner):
        runner.send_message("pace", {"pace": pace})


class Visitor(FastHttpUser):
    """What every simulated user has: the plan, its own seeded chance, and how it asks."""

    abstract = True
    plan: Plan
    sign_in: Callable[[Visitor], None] | None = None  # the locustfile's (a staticmethod)
    task_began = 0.0  # when its current task began (pacing), 0 before the first
    user_id: Any = None  # who it acts as, if the locustfile's sign-in says
    headers: dict[str, str] = {}  # noqa: RUF012  (replaced per user by a sign-in)
    state: dict[str, Any] = {}  # noqa: RUF012  (what the locustfile's tasks keep, per user)

    def on_start(self) -> None:
        # The n-th user of each locust process makes the same choices in every architecture.
        worker = getattr(self.environment.runner, "worker_index", 0)
        self.chance = random.Random(f"{self.plan.seed}-{worker}-{next(USER_NUMBERS)}")
        self.headers, self.state = {}, {}
        if self.sign_in is not None:
            self.sign_in(self)

    def expect(self, method: str, path: str, name: str, ok: tuple[int, ...], **options: Any) -> Any:
        """Send a request named `name`; anything but an `ok` status is a failure."""
        with self.client.request(method, path, name=name, catch_response=True, **options) as answer:
            if answer.status_code in ok:
                answer.success()
            else:
                answer.failure(f"{answer.status_code}: {(answer.text or '')[:120]}")
            return answer

    def some(self, count: int) -> int:
        return self.chance.randint(1, count)


def paced(user: Visitor) -> float:
    """The wait before a normal user's next task: none, or what keeps it at PACE tasks/s."""
    if PACE[0] <= 0:
        return 0.0
    now = time.monotonic()
    began = user.task_began or now
    user.task_began = now + max(0.0, 1 / PACE[0] - (now - began))
    return user.task_began - now


def _static(sign_in: Callable[[Visitor], None] | None) -> Any:
    return staticmethod(sign_in) if sign_in is not None else None


def user_class(
    kind: Kind,
    plan: Plan,
    tasks: dict[str, Task],
    module: str,
    sign_in: Callable[[Visitor], None] | None = None,
    is_paced: bool = True,
) -> type[Visitor]:
    """A locust user class for one kind of the scenario, its tasks looked up by name: paced by
    the shape's phases, or, with no shape (locust's web UI), waiting the kind's think time."""
    missing = sorted(set(kind.tasks) - set(tasks))
    if missing:
        raise ValueError(f"kinds.{kind.name}: the locustfile has no task {', '.join(missing)}")
    chosen = {tasks[name]: weight for name, weight in kind.tasks.items() if weight > 0}
    waiting = paced if is_paced else between(*kind.think_seconds)
    attributes = {"weight": kind.weight, "wait_time": waiting, "tasks": chosen, "plan": plan,
                  "sign_in": _static(sign_in), "__module__": module}  # fmt: skip
    return type(kind.name.title(), (Visitor,), attributes)


def hot_class(
    plan: Plan, hot: Task, module: str, sign_in: Callable[[Visitor], None] | None = None
) -> type[Visitor]:
    """The hot users of the isolation experiment: the `hot` task with no think time, as many
    as the plan's hot phase wants (locust's fixed count)."""
    count = max((phase.hot_users for phase in plan.phases), default=0)
    attributes = {"abstract": False, "plan": plan, "weight": 0, "fixed_count": count,
                  "wait_time": constant(0), "tasks": [hot], "sign_in": _static(sign_in),
                  "__module__": module}  # fmt: skip
    return type("Hot", (Visitor,), attributes)


def standalone_plan() -> Plan:
    """The plan of a run without `strangler compare`: the workspace's scenario and seed."""
    from strangler.compare.workload import load_scenario
    from strangler.runtime.home import Home

    home = Home.here()
    scenario = load_scenario()
    profile = next(iter(scenario.profiles.values()))
    hook = home.workspace.spec.load.plan_data
    scale = float(os.environ.get("STRANGLER_LOAD_SCALE", "1.0"))
    data = home.workspace.resolve(hook)(scale, home.token_secret()) if hook else {}
    return Plan.for_profile(profile, scenario, data=data)


NORMAL: list[type[User]] = []  # the kinds' user classes of this run
HOT: list[type[User]] = []


def install(
    namespace: MutableMapping[str, Any],
    tasks: Sequence[Task],
    hot: Task | None = None,
    sign_in: Callable[[Visitor], None] | None = None,
) -> None:
    """Put the user classes and the load shape into a locustfile's `namespace` (its
    `globals()`), where locust finds them: one class per kind of the plan (or, without a plan,
    of the workspace's scenario, with its think times), and the hot users if `hot` is given."""
    named = {task.__name__: task for task in tasks}
    module = str(namespace.get("__name__", __name__))
    plan, is_paced = (PLAN, True) if PLAN is not None else (standalone_plan(), False)
    NORMAL[:] = [user_class(kind, plan, named, module, sign_in, is_paced)
                 for kind in plan.kinds if kind.weight > 0]  # fmt: skip
    HOT[:] = [hot_class(plan, hot, module, sign_in)] if PLAN is not None and hot else []
    # Locust finds user classes among the locustfile's names: each bound to one name only.
    namespace.update({found.__name__: found for found in NORMAL + HOT})
    namespace["Steps"] = Steps


def endpoint(entry: StatsEntry, seconds: float, name: str | None = None) -> Endpoint:
    """Locust's figures for one request name over a window."""
    counted = entry.num_requests > 0

    def percentile(share: float) -> float | None:
        return float(entry.get_response_time_percentile(share)) if counted else None

    return Endpoint(
        name=name or f"{entry.method} {entry.name}",
        requests=entry.num_requests,
        failures=entry.num_failures,
        requests_per_second=entry.num_requests / seconds,
        p50_ms=percentile(0.5),
        p95_ms=percentile(0.95),
        p99_ms=percentile(0.99),
        max_ms=float(entry.max_response_time) if counted else None,
        histogram={int(ms): count for ms, count in entry.response_times.items()},
    )


class Steps(LoadTestShape):
    """The plan's search, then its phases: hold, reset the figures, measure, record."""

    abstract = PLAN is None  # without a plan, locust's own UI drives the users

    def __init__(self) -> None:
        super().__init__()
        self.searched: list[StepFigures] = []  # the search's steps so far
        self.searching = True
        self.after = list(PLAN.phases) if PLAN else []  # the phases after the search
        self.phase: Phase | None = None  # the phase under way
        self.began: float | None = None  # this phase's start
        self.measuring: float | None = None  # its window's start
        self.arrived = False  # locust runs the phase's normal users (its settle time began)

    def next_phase(self) -> Phase | None:
        """The search's next step while it lasts, then each phase of the plan."""
        assert PLAN is not None and self.runner is not None
        if self.searching:
            users = next_search_users(PLAN.search, self.searched)
            if users is not None:
                search = PLAN.search
                step = Phase("search", users, 0, search.settle_seconds, search.window_seconds)
                set_pace(self.runner, step.pace)
                return step
            self.searching = False
        found = self.after.pop(0) if self.after else None
        if found is not None:
            set_pace(self.runner, found.pace)
        return found

    def tick(self) -> tuple[int, float, list[type[User]] | None] | None:
        if PLAN is None or self.runner is None:
            return None
        if self.phase is None:
            self.phase = self.next_phase()
            if self.phase is None:
                return None
        now = time.time()
        phase = self.phase
        if not self.arrived:
            # Come to the phase's normal users first and wait until locust really runs that
            # many (users stopping after a step down finish their task first; workers report
            # each second), so no window counts the users of the step before. Locust adds a
            # fixed-count class (the hot users) only while it adds users, so they are added
            # on top afterwards, and only then does the settle time start.
            self.began = self.began or now
            running = self.get_current_user_count()
            if running != phase.users and now - self.began < HOLD_SECONDS:
                return phase.users, float(max(phase.users, running, 1)), NORMAL
            self.arrived, self.began = True, now
            if phase.hot_users and HOT:
                _dispatch_fixed_count_users(self.runner)
        self.began = self.began or now
        if self.measuring is None and now - self.began >= phase.settle_seconds:
            self.runner.stats.reset_all()
            self.measuring = now
        elif self.measuring is not None and now - self.measuring >= phase.window_seconds:
            self.record(phase, self.measuring, now)
            self.began, self.measuring, self.arrived = None, None, False
            following = self.next_phase()
            if following is None:
                return None
            self.phase = phase = following
            return self.tick()  # comes to the normal users first
        hot = phase.hot_users if HOT else 0
        classes = NORMAL + (HOT if hot else [])
        count = phase.users + hot
        return count, float(count), classes

    def record(self, phase: Phase, started: float, ended: float) -> None:
        assert self.runner is not None
        stats, seconds = self.runner.stats, ended - started
        endpoints = [endpoint(entry, seconds) for entry in stats.entries.values()]
        total = endpoint(stats.total, seconds, AGGREGATED)
        endpoints.append(total)
        if phase.phase == "search":
            self.searched.append(
                StepFigures(phase.users, total.requests, total.p95_ms, total.error_rate)
            )
        # A master runs no user itself: its workers report theirs.
        running = dict(getattr(self.runner, "reported_user_classes_count", None)
                       or self.runner.user_classes_count)  # fmt: skip
        line = {**asdict(phase), "started_at": started, "seconds": seconds,
                "users_by_kind": {kind.lower(): count for kind, count in running.items() if count},
                "endpoints": [asdict(found) for found in endpoints]}  # fmt: skip
        with open(os.environ[WINDOWS_VARIABLE], "a", encoding="utf-8") as windows:
            windows.write(json.dumps(line) + "\n")


def _dispatch_fixed_count_users(runner: locust.runners.Runner) -> None:
    """Make locust spawn the hot users (a fixed count) when the shape adds their class.

    Locust's dispatcher adds fixed-count users only when a dispatch cycle begins with its flag
    set, and a shape's change of user classes does not set it (locust 2.47): without this, the
    hot phase would run no hot user. The window's `users_by_kind` shows what ran.
    """
    dispatcher = getattr(runner, "_users_dispatcher", None)
    if dispatcher is not None:
        dispatcher._try_dispatch_fixed = True
