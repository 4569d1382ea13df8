"""A light, steady background load with a ledger of every acknowledged write.

The demo and the end-to-end test run it while the migration moves, to show (and prove) that
moving a context loses nothing and fails nothing outside its write freeze:

    load = SteadyLoad("http://127.0.0.1:8000", rate=15)
    load.start()
    ...                                   # migrate, stage by stage
    load.stop()
    report = verify(load.ledger, "http://127.0.0.1:8000")   # every acknowledged write readable?
    load.ledger.unexplained_failures(freezes)              # failures outside the freeze windows

Each worker thread sends one request at a time at its share of `rate`: reads of everything
(threads, posts, users, polls, results, pages, search) and writes in every context (sign-ups,
renames, threads, posts, polls, votes) by users the load signed up itself. A write is in the
ledger once acknowledged (its success status arrived), with what a later read must show. A
user acts in other contexts only `settle_seconds` after signing up, and the load reads its own
writes back only that late: the contract lets data cross contexts that late (a new user reaches
the monolith's copy through the reverse feed), and a canaried read may reach a service just
before the sync brings it a write the monolith took.
This module must never decide whether a failure is acceptable: the ledger only records.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtests.steady_ledger import Ledger, Outcome, User, Verification, verify
from strangler.workspace.hooks import FreezeWindow, LoadReport

__all__ = ["FreezeWindow", "Ledger", "SteadyLoad", "Verification", "verify"]

WORDS = "tomato sourdough python lisbon vinyl gravel compost risotto kyoto chord".split()
READS = 0.6


@dataclass
class SteadyLoad:
    """The load and its ledger; `start` and `stop` it around whatever it should watch."""

    base_url: str
    rate: float = 15.0
    workers: int = 3
    settle_seconds: float = 2.0
    seed: int = 7
    timeout: float = 10.0
    ledger: Ledger = field(default_factory=Ledger)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    known: dict[str, list[int]] = field(default_factory=dict)

    def start(self) -> None:
        """Learn a few existing ids to read, then start the workers."""
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as client:
            self.known = _existing_ids(client)
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)

    def report(self, freezes: Sequence[FreezeWindow]) -> LoadReport:
        """The workspace hook's report (`strangler.workspace.hooks`): read every acknowledged
        write back, and count the failures outside the freezes."""
        verification = verify(self.ledger, self.base_url)
        unexplained = self.ledger.unexplained_failures(freezes)
        return LoadReport(
            requests=len(self.ledger.outcomes),
            failures=len(self.ledger.failures()),
            unexplained_failures=len(unexplained),
            acknowledged=verification.acknowledged,
            read_back=verification.checked,
            missing=verification.missing,
            examples=[f"{o.method} {o.path}: {o.status} {o.detail}" for o in unexplained[:5]],
        )

    def _work(self, worker: int) -> None:
        pause = self.workers / self.rate
        chance = random.Random(self.seed * 1000 + worker)
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as client:
            session = _Session(client, self.ledger, chance, self.settle_seconds, worker, self.known)
            while not self._stopping.is_set():
                began = time.monotonic()
                session.one_request()
                self._stopping.wait(max(0.0, pause - (time.monotonic() - began)))


class _Session:
    """One worker's choices: what to do next, with which user, and what it learned."""

    def __init__(
        self,
        client: httpx.Client,
        ledger: Ledger,
        chance: random.Random,
        settle: float,
        worker: int,
        known: dict[str, list[int]],
    ) -> None:
        self.worker = worker
        self.known = known
        self.client = client
        self.ledger = ledger
        self.chance = chance
        self.settle = settle
        self.was_lost = False

    def one_request(self) -> None:
        if not self.ledger.users:
            self._sign_up()
        elif self.chance.random() < READS:
            self._read()
        else:
            self._write()

    def _some(self, kind: str, learned: int | None) -> int:
        """An id to read: one the load wrote, or one that existed when it started."""
        known = self.known.get(kind) or [1]
        return (
            learned
            if learned is not None and self.chance.random() < 0.5
            else self.chance.choice(known)
        )

    def _send(
        self, route: str, method: str, path: str, ok: int, **options: Any
    ) -> httpx.Response | None:
        """Send, record the outcome, and return the answer if it was the expected status.
        `self.was_lost` says whether the last request's answer never came."""
        sent = time.time()
        try:
            answer = self.client.request(method, path, **options)
        except httpx.HTTPError as error:
            self.was_lost = True
            failed = Outcome(route, method, path, sent, time.time(), None, repr(error)[:200])
            self.ledger.record(failed)
            return None
        self.was_lost = False
        detail = None if answer.status_code == ok else answer.text[:200]
        self.ledger.record(
            Outcome(route, method, path, sent, time.time(), answer.status_code, detail)
        )
        return answer if answer.status_code == ok else None

    def _read(self) -> None:
        # Read back only what was written `settle` ago: while a context's reads are canaried,
        # they may reach its service a moment before the sync brings the write there.
        settled = time.time() - self.settle
        thread = self._some("threads", self.ledger.any_thread(self.chance, settled))
        poll = self._some("polls", self.ledger.any_poll(self.chance, settled))
        user = self._some("users", None)
        choices = [
            ("forum.list_threads", "/api/threads?limit=5"),
            ("forum.get_thread", f"/api/threads/{thread}"),
            ("forum.list_posts", f"/api/threads/{thread}/posts?limit=5"),
            ("users.get_user", f"/api/users/{user}"),
            ("users.list_users", "/api/users?limit=5"),
            ("polls.get_poll", f"/api/polls/{poll}"),
            ("polls.results", f"/api/polls/{poll}/results"),
            ("polls.results_page", f"/results/{poll}.html"),
            ("search.search", f"/api/search?q={self.chance.choice(WORDS)}&limit=3"),
        ]
        route, path = self.chance.choice(choices)
        self._send(route, "GET", path, 200)

    def _write(self) -> None:
        settled = self.ledger.settled_users(time.time() - self.settle)
        actions = [self._sign_up, self._rename]
        if settled:
            actions += [self._start_thread, self._add_post, self._create_poll, self._vote]
        self.chance.choice(actions)()

    def _sign_up(self) -> None:
        name = f"steady_{self.chance.getrandbits(40):010x}"
        password = "steady-password"
        body = {"username": name, "email": f"{name}@example.org", "password": password,
                "display_name": f"Steady {name[-4:]}"}  # fmt: skip
        created = self._send("users.sign_up", "POST", "/api/users", 201, json=body)
        if created is None:
            return
        user_id = int(created.json()["id"])
        self.ledger.acknowledge(
            "user", user_id, {"username": name, "display_name": body["display_name"]}
        )
        session = self._send(
            "users.sign_in",
            "POST",
            "/api/sessions",
            200,
            json={"username": name, "password": password},
        )
        if session is not None:
            token = session.json()["token"]
            self.ledger.add_user(User(user_id, token, time.time(), self.worker))

    def _rename(self) -> None:
        user = self.ledger.any_user_of(self.chance, self.worker)
        if user is None:
            return self._sign_up()
        display_name = f"Renamed {self.chance.getrandbits(24):06x}"
        changed = self._send(
            "users.change_profile", "PATCH", f"/api/users/{user.id}", 200,
            json={"display_name": display_name}, headers=user.headers,
        )  # fmt: skip
        if changed is not None or self.was_lost:
            self.ledger.rename(user.id, display_name, is_acknowledged=changed is not None)
        return None

    def _start_thread(self) -> None:
        user = self.ledger.any_settled_user(self.chance, time.time() - self.settle)
        title = f"Steady thread {self.chance.getrandbits(32):08x}"
        body = {"title": title, "body": f"about {self.chance.choice(WORDS)}"}
        created = self._send(
            "forum.start_thread", "POST", "/api/threads", 201, json=body, headers=user.headers
        )
        if created is not None:
            thread_id = int(created.json()["id"])
            self.ledger.acknowledge("thread", thread_id, {"title": title, "author_id": user.id})

    def _add_post(self) -> None:
        user = self.ledger.any_settled_user(self.chance, time.time() - self.settle)
        thread = self.ledger.any_thread(self.chance)
        if thread is None:
            return self._start_thread()
        text = f"reply {self.chance.getrandbits(32):08x}"
        path = f"/api/threads/{thread}/posts"
        created = self._send(
            "forum.add_post", "POST", path, 201, json={"body": text}, headers=user.headers
        )
        if created is not None:
            self.ledger.acknowledge(
                "post", int(created.json()["id"]), {"thread_id": thread, "body": text}
            )
        return None

    def _create_poll(self) -> None:
        user = self.ledger.any_settled_user(self.chance, time.time() - self.settle)
        question = f"Steady poll {self.chance.getrandbits(32):08x}?"
        body = {"question": question, "options": ["yes", "no", "maybe"]}
        created = self._send(
            "polls.create_poll", "POST", "/api/polls", 201, json=body, headers=user.headers
        )
        if created is not None:
            poll = created.json()
            options = [option["id"] for option in poll["options"]]
            self.ledger.acknowledge(
                "poll", int(poll["id"]), {"question": question, "options": options}
            )

    def _vote(self) -> None:
        ballot = self.ledger.open_ballot(self.chance, time.time() - self.settle)
        if ballot is None:
            return self._create_poll()
        user, poll_id, option_id = ballot
        path = f"/api/polls/{poll_id}/votes"
        cast = self._send(
            "polls.vote", "POST", path, 201, json={"option_id": option_id}, headers=user.headers
        )
        if cast is not None:
            self.ledger.acknowledge_vote(user.id, poll_id, option_id)
        elif self.was_lost:
            self.ledger.uncertain_vote(poll_id, option_id)
        return None


def _existing_ids(client: httpx.Client) -> dict[str, list[int]]:
    """Ids of a few seeded threads, users and polls (polls have no list: the first ids that
    answer)."""
    known: dict[str, list[int]] = {}
    for kind, path in (("threads", "/api/threads?limit=20"), ("users", "/api/users?limit=20")):
        answer = client.get(path)
        known[kind] = [item["id"] for item in answer.json()["items"]] if answer.is_success else []
    known["polls"] = [
        poll for poll in range(1, 11) if client.get(f"/api/polls/{poll}").status_code == 200
    ]
    return known
