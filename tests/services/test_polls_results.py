"""Event-driven polls results under faults: votes keep coming while the relay and then the results
consumer are SIGKILLed and restarted; no vote is lost or counted twice. And the results page's
contract through the proxy, once polls routes go to the service.

Real processes throughout: the polls service under uvicorn, `python -m extracted.events.relay
--source polls` and `python -m extracted.events.consumer polls`, on the embedded database bus of
each backend and on Redis Streams with SQLite (when STRANGLER_TEST_REDIS_URL is set). Once the
consumer has caught up, every poll's results (API and static page) must equal a direct count of
the votes table, which must hold exactly the votes the service accepted.
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, Select, func, select

from extracted.polls.models import Vote, consumed, outbox
from strangler.plumbing.database import make_engine
from strangler.plumbing.tokens import TokenSigner
from strangler.runtime.processes import ManagedProcess
from strangler.workspace import find_workspace
from strangler.workspace.stages import render_table
from strangler_proxy.table import table_document, validate_document
from tests.contract.client import eventually as settled
from tests.services.conftest import StartService
from tests.services.event_processes import (
    BUSES,
    eventually,
    fresh_bus,
    start_consumer,
    start_relay,
)
from tests.support.databases import fresh_database
from tests.support.servers import TEST_TOKEN_SECRET, running_proxy, running_service

POLLS = 3
STEP = 25  # votes accepted between one fault and the next
TUNING = {"batch_size": "10", "poll_seconds": "0.02"}
SIGNER = TokenSigner(TEST_TOKEN_SECRET)


@dataclass
class Voters:
    """A thread casting one vote after another (a new user each time) until told to stop."""

    url: str
    polls: list[dict[str, object]]
    accepted: int = 0
    refused: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=30.0) as client:
            user = 1000
            while not self.stopping.is_set():
                user += 1
                poll = self.polls[user % len(self.polls)]
                options = poll["options"]
                assert isinstance(options, list)
                response = client.post(
                    f"{self.url}/api/polls/{poll['id']}/votes",
                    json={"option_id": options[user % 3 % len(options)]["id"]},
                    headers={"Authorization": f"Bearer {SIGNER.issue(user)}"},
                )
                if response.status_code == 201:
                    self.accepted += 1
                else:
                    self.refused.append(response.text)

    def reach(self, goal: int) -> Callable[[], bool]:
        return lambda: self.accepted >= goal


@pytest.fixture(params=BUSES)
def bus_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[str]:
    if request.param == "redis" and backend == "postgres":
        # The time budget of CI: Redis does not care which database the polls service uses
        # (tests/services/test_events.py runs the Redis bus with PostgreSQL consumers).
        pytest.skip("the Redis bus runs this test with the SQLite polls database")
    with fresh_bus(request.param, backend, tmp_path) as url:
        yield url


def _count(engine: Engine, statement: Select[Any]) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(statement) or 0)


def _results(http: httpx.Client, url: str, poll_id: object) -> dict[int, int]:
    document = http.get(f"{url}/api/polls/{poll_id}/results").json()
    return {option["id"]: option["votes"] for option in document["options"]}


def _direct_count(engine: Engine, poll_id: object) -> dict[int, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Vote.option_id, func.count())
            .where(Vote.poll_id == poll_id)
            .group_by(Vote.option_id)
        ).all()
    return {row[0]: row[1] for row in rows}


def _page_counts(http: httpx.Client, url: str, poll: dict[str, object]) -> dict[int, int]:
    page = http.get(f"{url}/results/{poll['id']}.html").text
    options = poll["options"]
    assert isinstance(options, list)
    found = {o["id"]: re.search(rf"{o['text']}: <strong>(\d+)</strong>", page) for o in options}
    return {option_id: int(match.group(1)) for option_id, match in found.items() if match}


def _kill_and_restart(
    process: ManagedProcess, restart: Callable[[], ManagedProcess], voters: Voters
) -> ManagedProcess:
    """SIGKILL `process` while votes are under way; restart it once STEP more are accepted."""
    process.signal(signal.SIGKILL)
    process.popen.wait(5)
    process.stop()
    assert eventually(voters.reach(voters.accepted + STEP), 60)
    return restart()


def test_killed_relay_and_consumer_lose_no_vote_and_count_none_twice(
    backend: str, bus_url: str, tmp_path: Path
) -> None:
    with (
        fresh_database(backend, tmp_path, "polls") as database_url,
        running_service("polls", database_url, tmp_path) as url,
        httpx.Client() as http,
    ):
        polls = [
            http.post(
                f"{url}/api/polls",
                json={"question": f"Poll {n}?", "options": ["red", "green", "blue"]},
                headers={"Authorization": f"Bearer {SIGNER.issue(1)}"},
            ).json()
            for n in range(POLLS)
        ]
        engine = make_engine(database_url)
        try:
            _vote_through_faults(url, database_url, bus_url, tmp_path, polls, engine)
            for poll in polls:
                expected = {option["id"]: 0 for option in poll["options"]}
                expected |= _direct_count(engine, poll["id"])
                assert _results(http, url, poll["id"]) == expected
                assert _page_counts(http, url, poll) == expected
        finally:
            engine.dispose()


def _vote_through_faults(
    url: str,
    database_url: str,
    bus_url: str,
    folder: Path,
    polls: list[dict[str, object]],
    engine: Engine,
) -> None:
    def relay() -> ManagedProcess:
        return start_relay("polls", database_url, bus_url, folder, **TUNING)

    def consumer() -> ManagedProcess:
        return start_consumer("polls", "polls", database_url, bus_url, folder, **TUNING)

    def applied() -> int:
        return _count(engine, select(func.count()).select_from(consumed.consumed))

    voters = Voters(url, polls)
    thread = threading.Thread(target=voters.run, daemon=True)
    relays, consumers = [relay()], [consumer()]
    thread.start()
    try:
        assert eventually(lambda: applied() >= POLLS + STEP, 60, consumers[-1])
        relays.append(_kill_and_restart(relays[-1], relay, voters))
        goal = POLLS + voters.accepted
        assert eventually(lambda: applied() >= goal, 60, consumers[-1])
        consumers.append(_kill_and_restart(consumers[-1], consumer, voters))
        assert eventually(voters.reach(voters.accepted + STEP), 60)
        voters.stopping.set()
        thread.join(30)
        assert voters.refused == []
        events = POLLS + voters.accepted
        assert _count(engine, select(func.count()).select_from(Vote)) == voters.accepted
        assert _count(engine, select(func.count()).select_from(outbox)) == events
        assert eventually(lambda: applied() >= events, 60, consumers[-1])
        assert applied() == events, "every event applied exactly once"
        assert _count(engine, select(func.count()).select_from(consumed.failed)) == 0
    finally:
        voters.stopping.set()
        for process in (*relays, *consumers):
            process.stop()


def _polls_to_the_service(folder: Path) -> Path:
    """Stage 0's route table with every polls route in mode service."""
    document = table_document(find_workspace().migration().stage(0).table)
    for route in document["routes"]:
        if route["context"] == "polls":
            route.update(mode="service", data_owner="service")
    table = folder / "polls-extracted.toml"
    table.write_text(render_table(validate_document(document, ["polls"])))
    return table


def test_the_results_page_keeps_its_contract_through_the_proxy(
    monolith_url: str, session_service: StartService, tmp_path: Path
) -> None:
    polls = session_service("polls")  # with its relay and results consumer
    with (
        running_proxy(
            {"monolith": monolith_url, "polls": polls.url},
            tmp_path,
            _polls_to_the_service(tmp_path),
        ) as proxy,
        httpx.Client(base_url=proxy, timeout=30) as http,
    ):
        headers = {"Authorization": f"Bearer {SIGNER.issue(5)}"}
        document = {"question": "Through the proxy?", "options": ["yes", "no"]}
        poll = http.post("/api/polls", json=document, headers=headers).json()
        assert http.get(f"/results/{poll['id']}.html").status_code == 200  # before any event
        vote = {"option_id": poll["options"][0]["id"]}
        assert http.post(f"/api/polls/{poll['id']}/votes", json=vote, headers=headers).is_success

        def page() -> httpx.Response:
            response = http.get(f"/results/{poll['id']}.html")
            assert "yes: <strong>1</strong>" in response.text
            return response

        shown = settled(page, attempts=300)  # 0.1 s apart: generous for a loaded machine
        assert (shown.status_code, shown.headers["content-type"]) == (
            200,
            "text/html; charset=utf-8",
        )
        assert shown.content == (polls.folder / "polls-results" / f"{poll['id']}.html").read_bytes()
        unknown = http.get(f"/results/{poll['id'] + 1000}.html")
        assert (unknown.status_code, unknown.headers["content-type"]) == (
            404,
            "application/problem+json",
        )
