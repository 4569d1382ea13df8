"""The polls service: what it adds to the contract (which the contract and parity suites prove).

Votes trust the signed token (the service has no users table); `polls.poll_created` and
`polls.vote_cast` are recorded in the outbox in the transaction of their change, and only then;
results and the static page follow from those events (the service runs with its relay and
results consumer), within the contract's 2 seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from extracted.polls.models import Poll, PollOption, Vote, outbox
from strangler.plumbing.clock import to_iso
from strangler.plumbing.database import make_engine
from tests.contract.client import eventually
from tests.services.conftest import RunningService, StartService

Headers = Callable[[int], dict[str, str]]
# Tries 0.1 s apart for results to follow a vote: the contract's 2 s, room for a loaded machine.
SETTLING = 300


@pytest.fixture
def polls(session_service: StartService) -> RunningService:
    return session_service("polls")


@pytest.fixture
def acting_as(token_for: Callable[[int], str]) -> Headers:
    """`acting_as(user_id)`: the Authorization header of a token for that user."""
    return lambda user_id: {"Authorization": f"Bearer {token_for(user_id)}"}


def _events(database_url: str, poll_id: int) -> list[tuple[str, dict[str, Any]]]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(outbox.c.topic, outbox.c.payload)
                .where(outbox.c.aggregate_id == str(poll_id))
                .order_by(outbox.c.id)
            ).all()
    finally:
        engine.dispose()
    return [(row.topic, json.loads(row.payload)) for row in rows]


def _create_poll(http: httpx.Client, polls: RunningService, headers: dict[str, str]) -> Any:
    document = {"question": "Tea or coffee?", "options": ["Tea", "Coffee", "Water"]}
    response = http.post(f"{polls.url}/api/polls", json=document, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_creating_a_poll_records_poll_created(
    http: httpx.Client, polls: RunningService, acting_as: Headers
) -> None:
    poll = _create_poll(http, polls, acting_as(7))
    [(topic, payload)] = _events(polls.database_url, poll["id"])
    assert topic == "polls.poll_created"
    assert payload == {
        **poll,
        "options": [
            {"id": option["id"], "position": position, "text": option["text"]}
            for position, option in enumerate(poll["options"])
        ],
    }


def test_a_vote_records_vote_cast_and_is_counted(
    http: httpx.Client, polls: RunningService, acting_as: Headers
) -> None:
    poll = _create_poll(http, polls, acting_as(7))
    coffee = poll["options"][1]["id"]
    response = http.post(
        f"{polls.url}/api/polls/{poll['id']}/votes",
        json={"option_id": coffee},
        headers=acting_as(8),
    )
    assert response.status_code == 201
    (_, _), (topic, cast) = _events(polls.database_url, poll["id"])
    assert topic == "polls.vote_cast"
    assert {key: cast[key] for key in ("poll_id", "option_id", "user_id")} == response.json()

    def counted() -> list[int]:
        results = http.get(f"{polls.url}/api/polls/{poll['id']}/results").json()
        assert results["total"] == 1
        return [option["votes"] for option in results["options"]]

    assert eventually(counted, SETTLING) == [0, 1, 0]


def test_a_second_vote_is_a_conflict_and_records_nothing(
    http: httpx.Client, polls: RunningService, acting_as: Headers
) -> None:
    poll = _create_poll(http, polls, acting_as(7))
    url = f"{polls.url}/api/polls/{poll['id']}/votes"
    first, second = (poll["options"][0]["id"], poll["options"][2]["id"])
    assert http.post(url, json={"option_id": first}, headers=acting_as(9)).status_code == 201
    response = http.post(url, json={"option_id": second}, headers=acting_as(9))
    assert response.status_code == 409
    assert [topic for topic, _ in _events(polls.database_url, poll["id"])] == [
        "polls.poll_created",
        "polls.vote_cast",
    ]


def test_the_voter_is_whoever_the_signed_token_names(
    http: httpx.Client, polls: RunningService, acting_as: Headers
) -> None:
    # No users table here: a valid signature is the proof of identity (see docs/services.md).
    poll = _create_poll(http, polls, acting_as(123456))
    assert poll["author_id"] == 123456
    response = http.post(
        f"{polls.url}/api/polls/{poll['id']}/votes",
        json={"option_id": poll["options"][0]["id"]},
        headers=acting_as(654321),
    )
    assert response.json()["user_id"] == 654321


def test_an_option_of_another_poll_is_invalid(
    http: httpx.Client, polls: RunningService, acting_as: Headers
) -> None:
    one, other = _create_poll(http, polls, acting_as(7)), _create_poll(http, polls, acting_as(7))
    response = http.post(
        f"{polls.url}/api/polls/{one['id']}/votes",
        json={"option_id": other["options"][0]["id"]},
        headers=acting_as(7),
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "option_id", "message": f"is not an option of poll {one['id']}"}
    ]
    assert len(_events(polls.database_url, one["id"])) == 1


def test_the_results_page_shows_the_counts_as_html(
    http: httpx.Client, polls: RunningService, acting_as: Headers
) -> None:
    poll = _create_poll(http, polls, acting_as(7))
    http.post(
        f"{polls.url}/api/polls/{poll['id']}/votes",
        json={"option_id": poll["options"][0]["id"]},
        headers=acting_as(7),
    )

    def page() -> httpx.Response:
        response = http.get(f"{polls.url}/results/{poll['id']}.html")
        assert f"1 vote · poll {poll['id']}" in response.text
        return response

    shown = eventually(page, SETTLING)
    assert shown.status_code == 200
    assert shown.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>Tea or coffee?</h1>" in shown.text
    assert "Tea: <strong>1</strong>" in shown.text
    assert shown.content == (polls.folder / "polls-results" / f"{poll['id']}.html").read_bytes()


def test_a_page_not_written_yet_is_rendered_from_the_projection(
    http: httpx.Client, polls: RunningService
) -> None:
    # Written behind the service's back, as a backfill would: no event, so no page file and no
    # projection row until a rebuild; the page is rendered on the spot, with zero votes.
    engine = make_engine(polls.database_url)
    try:
        with Session(engine) as session, session.begin():
            poll = Poll(question="Copied?", author_id=7)
            poll.options = [PollOption(position=0, text="Yes"), PollOption(position=1, text="No")]
            session.add(poll)
            session.flush()
            session.add(Vote(poll_id=poll.id, option_id=poll.options[0].id, user_id=8))
            poll_id, created_at = poll.id, to_iso(poll.created_at)
    finally:
        engine.dispose()
    page = http.get(f"{polls.url}/results/{poll_id}.html")
    assert page.status_code == 200
    assert "Yes: <strong>0</strong>" in page.text and "0 votes" in page.text
    assert f"<time>{created_at}</time>" in page.text
    assert not (polls.folder / "polls-results" / f"{poll_id}.html").exists()


def test_the_results_page_escapes_what_users_wrote(
    http: httpx.Client, polls: RunningService, acting_as: Headers
) -> None:
    document = {"question": "<script>alert(1)</script>", "options": ["<b>", "&"]}
    poll = http.post(f"{polls.url}/api/polls", json=document, headers=acting_as(7)).json()
    page = http.get(f"{polls.url}/results/{poll['id']}.html").text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_results_page_of_an_unknown_poll_is_a_problem(
    http: httpx.Client, polls: RunningService
) -> None:
    response = http.get(f"{polls.url}/results/987654321.html")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
