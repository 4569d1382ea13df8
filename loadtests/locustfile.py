"""The locust side of a load comparison: the simulated users and the step load that drives them.

`strangler compare` runs it headless, alone or as a master with worker processes:

    STRANGLER_LOAD_PLAN=plan.json STRANGLER_LOAD_WINDOWS=windows.jsonl \\
        locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8000 [--processes 2]

The plan (`strangler.compare.workload.Plan`) says which kinds of users to simulate (weights, think
times, task weights, from `scenario.toml`), what the seed holds (ids, bearer tokens of seeded users)
and the phases: each phase holds a number of users for a settle time, resets locust's statistics,
measures for a window, and appends locust's own figures for that window (every request name,
and the aggregate) as one JSON line to the windows file. The last phase adds hot searchers (no
think time) beside the normal mix: the isolation experiment.

Every request is named by its route template, so ids never split an endpoint's row. A vote for
a poll the user already voted in gets the contract's 409, which counts as a success: it is the
right answer, and the generator cannot know every seeded ballot. Anything else that is not the
expected status is a failure. With worker processes, figures reach the master every second, so
a window's requests may be off by up to a second's worth at either end; its CPU figures are
measured over exactly the window (loadtests.sampler). This module must never judge the figures.
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
from locust import LoadTestShape, User, between, constant
from locust.contrib.fasthttp import FastHttpUser
from locust.stats import StatsEntry

from strangler.compare.results import AGGREGATED, Endpoint
from strangler.compare.workload import PLAN_VARIABLE, WINDOWS_VARIABLE, Kind, Phase, Plan

locust.runners.WORKER_REPORT_INTERVAL = 1.0  # workers' figures reach the master each second

USER_NUMBERS = itertools.count()
HOLD_SECONDS = 30.0  # at most, for the workers to run the users asked before the hot phase
WORDS = "python garden tomato travel music cycling sourdough chord gravel recipe".split()
PLAN = Plan.load(Path(os.environ[PLAN_VARIABLE])) if PLAN_VARIABLE in os.environ else None


class Visitor(FastHttpUser):
    """What every simulated user knows: the seed's ids and one seeded user's token."""

    abstract = True
    plan: Plan

    def on_start(self) -> None:
        # The n-th user of each locust process makes the same choices in every architecture.
        worker = getattr(self.environment.runner, "worker_index", 0)
        self.chance = random.Random(f"{self.plan.seed}-{worker}-{next(USER_NUMBERS)}")
        self.user_id = self.chance.randint(1, self.plan.data['users'])
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


def _task(name: str) -> Callable[[Visitor], None]:
    def task(user: Visitor) -> None:
        getattr(user, name)()

    task.__name__ = name
    return task


def user_class(kind: Kind, plan: Plan) -> type[Visitor]:
    """A locust user class for one kind of the scenario."""
    tasks = {_task(name): weight for name, weight in kind.tasks.items() if weight > 0}
    attributes = {"weight": kind.weight, "wait_time": between(*kind.think_seconds),
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


# Locust finds user classes among this module's names: each must be bound to one name only.
NORMAL: list[type[User]] = []
HOT: list[type[User]] = []
if PLAN is not None:
    NORMAL = [user_class(kind, PLAN) for kind in PLAN.kinds if kind.weight > 0]
    HOT = [hot_class(PLAN)]
    globals().update({found.__name__: found for found in NORMAL + HOT})


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
    """The plan's phases, one after the other: hold, reset the figures, measure, record."""

    def __init__(self) -> None:
        super().__init__()
        self.index = 0
        self.began: float | None = None  # this phase's start
        self.measuring: float | None = None  # its window's start
        self.hot_added = False  # the hot phase adds its users to the normal ones

    def tick(self) -> tuple[int, float, list[type[User]] | None] | None:
        if PLAN is None or self.runner is None or self.index >= len(PLAN.phases):
            return None
        now = time.time()
        phase = PLAN.phases[self.index]
        if phase.hot_users and not self.hot_added:
            # Locust adds a fixed-count class (the hot searchers) only while it adds users, and
            # its workers may still be stopping users when the next order comes. So: come to the
            # normal users first, wait until the workers really run that many, then add the hot
            # ones on top of them (and only then start the settle time).
            self.began = self.began or now
            running = self.get_current_user_count()
            if running != phase.users and now - self.began < HOLD_SECONDS:
                return phase.users, float(max(phase.users, running, 1)), NORMAL
            self.hot_added, self.began = True, now
            _dispatch_fixed_count_users(self.runner)
        self.began = self.began or now
        if self.measuring is None and now - self.began >= phase.settle_seconds:
            self.runner.stats.reset_all()
            self.measuring = now
        elif self.measuring is not None and now - self.measuring >= phase.window_seconds:
            self.record(phase, self.measuring, now)
            self.index, self.began, self.measuring = self.index + 1, now, None
            if self.index == len(PLAN.phases):
                return None
            phase = PLAN.phases[self.index]
            if phase.hot_users:
                return self.tick()  # comes to the normal users first
        classes = NORMAL + (HOT if phase.hot_users else [])
        count = phase.users + phase.hot_users
        return count, float(count), classes

    def record(self, phase: Phase, started: float, ended: float) -> None:
        assert self.runner is not None
        stats, seconds = self.runner.stats, ended - started
        endpoints = [endpoint(entry, seconds) for entry in stats.entries.values()]
        endpoints.append(endpoint(stats.total, seconds, AGGREGATED))
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
