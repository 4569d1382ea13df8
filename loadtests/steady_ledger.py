"""The steady load's ledger: every request's outcome and every acknowledged write, and the check
that each acknowledged write is still readable at the end.

A write whose answer never came (a timeout, a refused connection) may or may not have happened:
it is kept as *uncertain*, so a vote that might have counted widens what a result may show and a
rename that might have happened is an acceptable current name; it is never counted as lost.
This module must never send load; `verify` only reads.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from strangler.workspace.hooks import FreezeWindow


@dataclass(frozen=True)
class Outcome:
    """One request: what it was, when it was sent and answered, and how."""

    route: str
    method: str
    path: str
    sent: float
    received: float
    status: int | None
    detail: str | None  # why it is not the expected answer; None when it is

    @property
    def is_failure(self) -> bool:
        return self.detail is not None

    @property
    def is_write(self) -> bool:
        return self.method not in ("GET", "HEAD")

    @property
    def context(self) -> str:
        return self.route.partition(".")[0]


@dataclass(frozen=True)
class User:
    id: int
    token: str
    registered_at: float
    worker: int  # only this worker renames the user, so renames never race each other

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Ledger:
    """Shared by the load's worker threads; every method takes the lock."""

    outcomes: list[Outcome] = field(default_factory=list)
    writes: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    users: list[User] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)
    polls: dict[int, list[int]] = field(default_factory=dict)
    names: dict[int, list[str]] = field(default_factory=dict)  # acknowledged, then uncertain
    votes: dict[int, Counter[int]] = field(default_factory=dict)
    uncertain_votes: dict[int, Counter[int]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)  # the first of each is overwritten
    ballots: set[tuple[int, int]] = field(default_factory=set)
    written_at: dict[tuple[str, int], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def acknowledge(self, kind: str, identifier: int, expected: dict[str, Any]) -> None:
        with self.lock:
            if (kind, identifier) in self.writes:  # two sides handed out the same new id
                self.duplicates.append(f"{kind} {identifier} acknowledged twice")
            self.writes[(kind, identifier)] = expected
            self.written_at[(kind, identifier)] = time.time()
            if kind == "thread":
                self.threads.append(identifier)
            elif kind == "poll":
                self.polls[identifier] = list(expected["options"])
            elif kind == "user":
                self.names[identifier] = [expected["display_name"]]

    def add_user(self, user: User) -> None:
        with self.lock:
            self.users.append(user)

    def rename(self, user_id: int, display_name: str, is_acknowledged: bool = True) -> None:
        with self.lock:
            names = self.names.setdefault(user_id, [])
            if is_acknowledged:
                names.clear()
                self.writes[("rename", user_id)] = {"display_name": display_name}
            names.append(display_name)

    def any_user_of(self, chance: random.Random, worker: int) -> User | None:
        with self.lock:
            mine = [user for user in self.users if user.worker == worker]
        return chance.choice(mine) if mine else None

    def settled_users(self, registered_before: float) -> list[User]:
        with self.lock:
            return [user for user in self.users if user.registered_at <= registered_before]

    def any_settled_user(self, chance: random.Random, registered_before: float) -> User:
        return chance.choice(self.settled_users(registered_before))

    def any_thread(self, chance: random.Random, written_before: float | None = None) -> int | None:
        """A thread the load wrote (before `written_before`, when given)."""
        return self._any("thread", self.threads, chance, written_before)

    def any_poll(self, chance: random.Random, written_before: float | None = None) -> int | None:
        return self._any("poll", list(self.polls), chance, written_before)

    def _any(
        self, kind: str, known: list[int], chance: random.Random, written_before: float | None
    ) -> int | None:
        with self.lock:
            found = [
                identifier
                for identifier in known
                if written_before is None or self.written_at[(kind, identifier)] <= written_before
            ]
        return chance.choice(found) if found else None

    def open_ballot(
        self, chance: random.Random, registered_before: float
    ) -> tuple[User, int, int] | None:
        """A settled user and a poll they never tried to vote on, reserved for one attempt."""
        users = self.settled_users(registered_before)
        with self.lock:
            for _ in range(10):
                if not users or not self.polls:
                    return None
                user, poll = chance.choice(users), chance.choice(list(self.polls))
                if (user.id, poll) not in self.ballots:
                    self.ballots.add((user.id, poll))
                    return user, poll, chance.choice(self.polls[poll])
        return None

    def acknowledge_vote(self, user_id: int, poll_id: int, option_id: int) -> None:
        with self.lock:
            self.votes.setdefault(poll_id, Counter())[option_id] += 1
            self.writes[("vote", user_id * 1_000_000 + poll_id)] = {"poll_id": poll_id}

    def uncertain_vote(self, poll_id: int, option_id: int) -> None:
        with self.lock:
            self.uncertain_votes.setdefault(poll_id, Counter())[option_id] += 1

    def failures(self) -> list[Outcome]:
        with self.lock:
            return [outcome for outcome in self.outcomes if outcome.is_failure]

    def unexplained_failures(self, freezes: Iterable[FreezeWindow]) -> list[Outcome]:
        """Failures that no write freeze explains: a read, or a write outside its context's
        freeze windows."""
        windows = list(freezes)

        def is_frozen(outcome: Outcome) -> bool:
            return outcome.is_write and any(
                window.context == outcome.context
                and outcome.sent <= window.ended
                and outcome.received >= window.started
                for window in windows
            )

        return [outcome for outcome in self.failures() if not is_frozen(outcome)]


@dataclass
class Verification:
    """What the end-of-run read-back found."""

    acknowledged: int
    checked: int
    missing: list[str]

    @property
    def is_complete(self) -> bool:
        return not self.missing and self.checked == self.acknowledged


def verify(ledger: Ledger, base_url: str, patience: float = 10.0) -> Verification:
    """Read every acknowledged write back through `base_url`; retry for `patience` seconds,
    since results and cross-context copies may trail a write by the contract's 2 seconds."""
    deadline = time.monotonic() + patience
    with httpx.Client(base_url=base_url, timeout=10) as client:
        while True:
            missing = _missing(ledger, client)
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    acknowledged = len(ledger.writes) + len(ledger.duplicates)
    missing = [*ledger.duplicates, *missing]
    return Verification(acknowledged, acknowledged - len(missing), missing)


def _missing(ledger: Ledger, client: httpx.Client) -> list[str]:
    missing = []
    for (kind, identifier), expected in sorted(ledger.writes.items()):
        problem = _check(kind, identifier, expected, ledger, client)
        if problem:
            missing.append(f"{kind} {identifier}: {problem}")
    return missing


def _check(
    kind: str, identifier: int, expected: dict[str, Any], ledger: Ledger, client: httpx.Client
) -> str | None:
    if kind in ("user", "rename"):
        found = _get(client, f"/api/users/{identifier}")
        names = ledger.names.get(identifier, [])
        if found is None:
            return "not found"
        if kind == "user" and found["username"] != expected["username"]:
            return f"username is {found['username']!r}"
        return None if found["display_name"] in names else f"display name {found['display_name']!r}"
    if kind == "thread":
        found = _get(client, f"/api/threads/{identifier}")
        if found is None or found["title"] != expected["title"]:
            return "not found" if found is None else f"title is {found['title']!r}"
        return None if found["author"]["id"] == expected["author_id"] else "another author"
    if kind == "post":
        return (
            None
            if _has_post(client, expected["thread_id"], identifier, expected["body"])
            else "not in its thread"
        )
    if kind == "poll":
        found = _get(client, f"/api/polls/{identifier}")
        if found is None or found["question"] != expected["question"]:
            return "not found" if found is None else "another question"
        return None
    return _check_votes(expected["poll_id"], ledger, client)


def _check_votes(poll_id: int, ledger: Ledger, client: httpx.Client) -> str | None:
    results = _get(client, f"/api/polls/{poll_id}/results")
    if results is None:
        return "no results"
    counted = {option["id"]: option["votes"] for option in results["options"]}
    least, spare = (
        ledger.votes.get(poll_id, Counter()),
        ledger.uncertain_votes.get(poll_id, Counter()),
    )
    for option, count in counted.items():
        if not least[option] <= count <= least[option] + spare[option]:
            return f"results show {count} votes for option {option}, acknowledged {least[option]}"
    return None


def _get(client: httpx.Client, path: str) -> dict[str, Any] | None:
    try:
        answer = client.get(path)
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


def _has_post(client: httpx.Client, thread_id: int, post_id: int, body: str) -> bool:
    cursor = None
    while True:
        query = "?limit=100" + (f"&cursor={cursor}" if cursor else "")
        page = _get(client, f"/api/threads/{thread_id}/posts{query}")
        if page is None:
            return False
        if any(item["id"] == post_id and item["body"] == body for item in page["items"]):
            return True
        cursor = page.get("next_cursor")
        if not cursor:
            return False
