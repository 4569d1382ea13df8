"""The forum service: what it adds to the contract (which the parity suite proves).

Every thread and post records its event in the service's outbox in the same transaction.
Authors' names come from the local replica fed by users events: a writer the replica does not
know yet is shown provisionally, and a registration or rename reaches every post within the
staleness bound (2 seconds while the relay and consumer run), with no call to the users
service on any read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from extracted.forum.models import outbox
from plumbing.database import make_engine
from tests.services.conftest import RunningService, StartService
from tests.services.event_processes import eventually, running, start_consumer, start_relay
from tests.support.databases import fresh_database
from tests.support.servers import running_service

STALENESS_BOUND = 2.0


@pytest.fixture
def forum(session_service: StartService) -> RunningService:
    return session_service("forum")


def _headers(token_for: Callable[[int], str], user_id: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user_id)}"}


def _events(database_url: str, topic: str, aggregate_id: int) -> list[dict[str, Any]]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(outbox.c.payload)
                .where(outbox.c.topic == topic, outbox.c.aggregate_id == str(aggregate_id))
                .order_by(outbox.c.id)
            ).all()
    finally:
        engine.dispose()
    return [json.loads(row.payload) for row in rows]


def test_starting_a_thread_records_thread_created_with_the_thread(
    http: httpx.Client, forum: RunningService, token_for: Callable[[int], str]
) -> None:
    response = http.post(
        f"{forum.url}/api/threads",
        json={"title": "Seed swaps", "body": "Who has tomato seeds?"},
        headers=_headers(token_for, 41),
    )
    assert response.status_code == 201
    thread = response.json()
    [event] = _events(forum.database_url, "forum.thread_created", thread["id"])
    assert event == {
        "id": thread["id"],
        "title": "Seed swaps",
        "body": "Who has tomato seeds?",
        "author_id": 41,
        "created_at": thread["created_at"],
    }


def test_a_reply_records_post_created_and_counts_on_its_thread(
    http: httpx.Client, forum: RunningService, token_for: Callable[[int], str]
) -> None:
    headers = _headers(token_for, 42)
    thread = http.post(
        f"{forum.url}/api/threads", json={"title": "T", "body": "B"}, headers=headers
    ).json()
    post = http.post(
        f"{forum.url}/api/threads/{thread['id']}/posts", json={"body": "Me too"}, headers=headers
    ).json()
    [event] = _events(forum.database_url, "forum.post_created", post["id"])
    assert event == {
        "id": post["id"],
        "thread_id": thread["id"],
        "body": "Me too",
        "author_id": 42,
        "created_at": post["created_at"],
    }
    assert http.get(f"{forum.url}/api/threads/{thread['id']}").json()["post_count"] == 1


def test_a_rejected_write_records_no_event(
    http: httpx.Client, forum: RunningService, token_for: Callable[[int], str]
) -> None:
    missing = 987654321
    response = http.post(
        f"{forum.url}/api/threads/{missing}/posts",
        json={"body": "hello"},
        headers=_headers(token_for, 43),
    )
    assert response.status_code == 404
    assert _events(forum.database_url, "forum.post_created", missing) == []


def test_a_writer_unknown_to_the_replica_is_shown_by_id_until_their_event_arrives(
    http: httpx.Client, forum: RunningService, token_for: Callable[[int], str]
) -> None:
    writer = 900_000 + uuid.uuid4().int % 99_999
    response = http.post(
        f"{forum.url}/api/threads",
        json={"title": "First!", "body": "Hello"},
        headers=_headers(token_for, writer),
    )
    assert response.status_code == 201
    assert response.json()["author"] == {"id": writer, "display_name": f"user {writer}"}


def _author_names(http: httpx.Client, forum: str, thread_id: int) -> set[str]:
    thread = http.get(f"{forum}/api/threads/{thread_id}").json()
    posts = http.get(f"{forum}/api/threads/{thread_id}/posts").json()["items"]
    return {thread["author"]["display_name"]} | {p["author"]["display_name"] for p in posts}


def test_registration_and_renames_reach_every_post_through_events_within_the_bound(
    http: httpx.Client, backend: str, tmp_path: Path, token_for: Callable[[int], str]
) -> None:
    with (
        fresh_database(backend, tmp_path, "users") as users_db,
        fresh_database(backend, tmp_path, "forum") as forum_db,
        fresh_database(backend, tmp_path, "bus") as bus_url,
        running_service("users", users_db, tmp_path) as users,
        running_service("forum", forum_db, tmp_path) as forum,
        running(start_relay("users", users_db, bus_url, tmp_path)),
    ):
        signed_up = http.post(
            f"{users}/api/users",
            json={
                "username": "ann",
                "email": "ann@example.org",
                "password": "a long enough password",
                "display_name": "Ann",
            },
        ).json()
        ann = _headers(token_for, signed_up["id"])
        thread = http.post(
            f"{forum}/api/threads", json={"title": "Hi", "body": "there"}, headers=ann
        ).json()
        http.post(f"{forum}/api/threads/{thread['id']}/posts", json={"body": "x"}, headers=ann)
        # No consumer yet: the replica has never heard of Ann.
        assert _author_names(http, forum, thread["id"]) == {f"user {signed_up['id']}"}

        consumer = start_consumer("forum", "forum", forum_db, bus_url, tmp_path)
        with running(consumer):
            assert eventually(
                lambda: _author_names(http, forum, thread["id"]) == {"Ann"}, 30, consumer
            )
            renamed = http.patch(
                f"{users}/api/users/{signed_up['id']}", json={"display_name": "Annie"}, headers=ann
            )
            assert renamed.status_code == 200
            assert eventually(
                lambda: _author_names(http, forum, thread["id"]) == {"Annie"},
                STALENESS_BOUND,
                consumer,
            )
