"""The locust side of a load comparison: the simulated users and the load shape that drives them.

`strangler compare` runs it headless, alone or as a master with worker processes:

    STRANGLER_LOAD_PLAN=plan.json STRANGLER_LOAD_WINDOWS=windows.jsonl \\
        locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8000 [--processes 2]

The plan (`strangler.compare.workload.Plan`) says which kinds of users to simulate (weights and
task weights from `scenario.toml`), what the seed holds (ids, bearer tokens of seeded users), the
limit search and the phases after it. The search runs the mix with no think time, one step after
the other, each step's users chosen from the steps before (`workload.next_search_users`) until a
bound breaks; then the reference phase paces the same users to a fixed rate, and the last phase
adds hot searchers (no think time) beside it: the isolation experiment. Each step or phase holds
its users for a settle time, resets locust's statistics, measures for a window, and appends
locust's own figures for that window (every request name, and the aggregate) as one JSON line
to the windows file.

Without a plan, `locust -f loadtests/locustfile.py --host http://127.0.0.1:8000` runs the mix
with the scenario's think times under locust's own web UI, against the system `strangler up`
serves from this folder: the users' tokens are signed with that home's secret, and the seed's
size is `STRANGLER_LOAD_SCALE` (default 1.0, as `strangler up` seeds).

Every request is named by its route template, so ids never split an endpoint's row. A vote for
a poll the user already voted in gets the contract's 409, which counts as a success: it is the
right answer, and the generator cannot know every seeded ballot. Anything else that is not the
expected status is a failure. With worker processes, figures reach the master every second, so
a window's requests may be off by up to a second's worth at either end; its CPU figures are
measured over exactly the window (strangler.compare.sampler). This module must never judge the
figures.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from collections.abc import Callable
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
WORDS = "python garden tomato travel music cycling sourdough chord gravel recipe".split()
PLAN = Plan.load(Path(os.environ[PLAN_VARIABLE])) if PLAN_VARIABLE in os.environ else None
PACE = [0.0]  # tasks per second of each normal user in the current phase; 0: no think time


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
    """What every simulated user knows: the seed's ids and one seeded user's token."""

    abstract = True
    plan: Plan
    task_began = 0.0  # when its current task began (pacing), 0 before the first

    def on_start(self) -> None:
        # The n-th user of each locust process makes the same choices in every architecture.
        worker = getattr(self.environment.runner, "worker_index", 0)
        self.chance = random.Random(f"{self.plan.seed}-{worker}-{next(USER_NUMBERS)}")
        self.user_id = self.chance.randint(1, self.plan.data["users"])
        self.headers = {"Authorization": f"Bearer {self.plan.data['tokens'][str(self.user_id)]}"}

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

    # Reads
    def list_threads(self) -> None:
        self.expect("GET", "/api/threads?limit=20", "/api/threads", (200,))

    def get_thread(self) -> None:
        path = f"/api/threads/{self.some(self.plan.data['threads'])}"
        self.expect("GET", path, "/api/threads/{id}", (200,))

    def list_posts(self) -> None:
        path = f"/api/threads/{self.some(self.plan.data['threads'])}/posts?limit=20"
        self.expect("GET", path, "/api/threads/{id}/posts", (200,))

    def get_user(self) -> None:
        path = f"/api/users/{self.some(self.plan.data['users'])}"
        self.expect("GET", path, "/api/users/{id}", (200,))

    def list_users(self) -> None:
        self.expect("GET", "/api/users?limit=20", "/api/users", (200,))

    def me(self) -> None:
        self.expect("GET", "/api/me", "/api/me", (200,), headers=self.headers)

    def get_poll(self) -> dict[str, Any] | None:
        answer = self.expect(
            "GET", f"/api/polls/{self.some(self.plan.data['polls'])}", "/api/polls/{id}", (200,)
        )
        return answer.json() if answer.status_code == 200 else None

    def results(self) -> None:
        path = f"/api/polls/{self.some(self.plan.data['polls'])}/results"
        self.expect("GET", path, "/api/polls/{id}/results", (200,))

    def results_page(self) -> None:
        path = f"/results/{self.some(self.plan.data['polls'])}.html"
        self.expect("GET", path, "/results/{id}.html", (200,))

    def search(self) -> None:
        path = f"/api/search?q={self.chance.choice(WORDS)}&limit=10"
        self.expect("GET", path, "/api/search", (200,))

    # Writes
    def vote(self) -> None:
        poll = self.get_poll()
        if poll is None:
            return
        option = self.chance.choice(poll["options"])["id"]
        self.expect(
            "POST", f"/api/polls/{poll['id']}/votes", "/api/polls/{id}/votes", (201, 409),
            json={"option_id": option}, headers=self.headers,
        )  # fmt: skip

    def start_thread(self) -> None:
        body = {"title": f"Load thread {self.chance.getrandbits(32):08x}", "body": "measured"}
        self.expect("POST", "/api/threads", "/api/threads", (201,), json=body, headers=self.headers)

    def add_post(self) -> None:
        path = f"/api/threads/{self.some(self.plan.data['threads'])}/posts"
        body = {"body": f"a reply about {self.chance.choice(WORDS)}"}
        self.expect(
            "POST", path, "/api/threads/{id}/posts", (201,), json=body, headers=self.headers
        )

    def change_profile(self) -> None:
        body = {"display_name": f"Load {self.chance.getrandbits(24):06x}"}
        self.expect(
            "PATCH", f"/api/users/{self.user_id}", "/api/users/{id}", (200,),
            json=body, headers=self.headers,
        )  # fmt: skip

    def sign_up(self) -> None:
        name = f"load_{uuid.uuid4().hex[:20]}"  # unique in every run, whatever the seed
        body = {"username": name, "email": f"{name}@example.org",
                "password": "load-password", "display_name": f"Load {name[-4:]}"}  # fmt: skip
        created = self.expect("POST", "/api/users", "/api/users", (201,), json=body)
        if created.status_code != 201:
            return
        session = self.expect(
            "POST", "/api/sessions", "/api/sessions", (200,),
            json={"username": name, "password": "load-password"},
        )  # fmt: skip
        if session.status_code == 200:
            self.headers = {"Authorization": f"Bearer {session.json()['token']}"}
            self.user_id = int(session.json()["user_id"])


def paced(user: Visitor) -> float:
    """The wait before a normal user's next task: none, or what keeps it at PACE tasks/s."""
    if PACE[0] <= 0:
        return 0.0
    now = time.monotonic()
    began = user.task_began or now
    user.task_began = now + max(0.0, 1 / PACE[0] - (now - began))
    return user.task_began - now


def _task(name: str) -> Callable[[Visitor], None]:
    def task(user: Visitor) -> None:
        getattr(user, name)()

    task.__name__ = name
    return task


def user_class(kind: Kind, plan: Plan, is_paced: bool = True) -> type[Visitor]:
    """A locust user class for one kind of the scenario: paced by the shape's phases, or, with
    no shape (locust's web UI), waiting the kind's think time between tasks."""
    tasks = {_task(name): weight for name, weight in kind.tasks.items() if weight > 0}
    waiting = paced if is_paced else between(*kind.think_seconds)
    attributes = {"weight": kind.weight, "wait_time": waiting,
                  "tasks": tasks, "plan": plan, "__module__": __name__}  # fmt: skip
    return type(kind.name.title(), (Visitor,), attributes)


class HotSearcher(Visitor):
    """The isolation experiment's load: searches, with no think time."""

    abstract = True  # made concrete, with its fixed count, when a plan has a hot phase
    wait_time = constant(0)

    def hot_search(self) -> None:
        path = f"/api/search?q={self.chance.choice(WORDS)}&limit=20"
        self.expect("GET", path, "/api/search", (200,))

    tasks = [_task("hot_search")]  # noqa: RUF012  (locust reads it as a class attribute)


def hot_class(plan: Plan) -> type[Visitor]:
    """The hot searchers, as many as the plan's hot phase wants (locust's fixed count)."""
    count = max((phase.hot_users for phase in plan.phases), default=0)
    attributes = {"abstract": False, "plan": plan, "weight": 0, "fixed_count": count,
                  "__module__": __name__}  # fmt: skip
    return type("Hot", (HotSearcher,), attributes)


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


# Locust finds user classes among this module's names: each must be bound to one name only.
NORMAL: list[type[User]] = []
HOT: list[type[User]] = []
if PLAN is not None:
    NORMAL = [user_class(kind, PLAN) for kind in PLAN.kinds if kind.weight > 0]
    HOT = [hot_class(PLAN)]
    globals().update({found.__name__: found for found in NORMAL + HOT})
else:
    STANDALONE = standalone_plan()
    NORMAL = [
        user_class(kind, STANDALONE, is_paced=False) for kind in STANDALONE.kinds if kind.weight
    ]
    globals().update({found.__name__: found for found in NORMAL})


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
            # fixed-count class (the hot searchers) only while it adds users, so they are
            # added on top afterwards, and only then does the settle time start.
            self.began = self.began or now
            running = self.get_current_user_count()
            if running != phase.users and now - self.began < HOLD_SECONDS:
                return phase.users, float(max(phase.users, running, 1)), NORMAL
            self.arrived, self.began = True, now
            if phase.hot_users:
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
        classes = NORMAL + (HOT if phase.hot_users else [])
        count = phase.users + phase.hot_users
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
    """Make locust spawn the hot searchers (a fixed count) when the shape adds their class.

    Locust's dispatcher adds fixed-count users only when a dispatch cycle begins with its flag
    set, and a shape's change of user classes does not set it (locust 2.47): without this, the
    hot phase would run no hot searcher. The window's `users_by_kind` shows what ran.
    """
    dispatcher = getattr(runner, "_users_dispatcher", None)
    if dispatcher is not None:
        dispatcher._try_dispatch_fixed = True
