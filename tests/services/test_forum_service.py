"""The forum service: what it adds to the contract (which the parity suite proves).

Every thread and post records its event in the service's outbox in the same transaction.
Authors' names come from the local replica fed by users events. A writer the replica does not
know yet is read through from the real users service once, before anything is written: a user
who signed up a moment ago posts under their real name, a token for a user who does not exist
is refused as the monolith refuses it, and with the users service down the write is a 503 that
leaves nothing behind. Renames reach every post through events within the staleness bound (2
seconds while the relay and consumer run), with no call to the users service on any read.
Without `FORUM_USERS_URL`, an unknown writer is shown provisionally (the documented fallback).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from extracted.forum.models import Author, Thread, outbox
from strangler.plumbing.database import make_engine
from tests.services.conftest import RunningService, StartService
from tests.services.event_processes import eventually, running, start_consumer, start_relay
from tests.support.databases import fresh_database
from tests.support.servers import running_service

STALENESS_BOUND = 2.0
NOBODY = 987_654_321  # a user id no users service in these tests has


@dataclass(frozen=True)
class Split:
    """The users service and a forum that reads through to it (`FORUM_USERS_URL`)."""

    users: str
    forum: RunningService


@pytest.fixture
def forum(session_service: StartService) -> RunningService:
    """A forum without `FORUM_USERS_URL`: unknown writers get the provisional fallback."""
    return session_service("forum")


@contextmanager
def _forum_reading_through(backend: str, folder: Path, users_url: str) -> Iterator[RunningService]:
    with fresh_database(backend, folder, "forum") as forum_db:
        env = {"FORUM_USERS_URL": users_url}
        with running_service("forum", forum_db, folder, env) as forum_url:
            yield RunningService(forum_url, forum_db, folder)


@pytest.fixture(scope="module")
def split(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Split]:
    folder = tmp_path_factory.mktemp(f"forum-split-{backend}")
    with (
        fresh_database(backend, folder, "users") as users_db,
        running_service("users", users_db, folder) as users,
        _forum_reading_through(backend, folder, users) as forum,
    ):
        yield Split(users, forum)


def _sign_up(http: httpx.Client, users: str, display_name: str) -> int:
    username = f"u_{uuid.uuid4().hex[:12]}"
    response = http.post(
        f"{users}/api/users",
        json={
            "username": username,
            "email": f"{username}@example.org",
            "password": "a long enough password",
            "display_name": display_name,
        },
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _count(database_url: str, query: Any) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


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


def test_without_a_users_url_an_unknown_writer_is_shown_by_id_until_their_event_arrives(
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


def test_a_user_who_just_signed_up_posts_under_their_real_name_before_any_event(
    http: httpx.Client, split: Split, token_for: Callable[[int], str]
) -> None:
    # No relay and no consumer run here: only the read-through can know the name.
    ann = _sign_up(http, split.users, "Ann Fresh")
    headers = _headers(token_for, ann)
    started = http.post(
        f"{split.forum.url}/api/threads", json={"title": "Hi", "body": "new"}, headers=headers
    )
    assert started.status_code == 201
    assert started.json()["author"] == {"id": ann, "display_name": "Ann Fresh"}
    thread_id = started.json()["id"]
    replied = http.post(
        f"{split.forum.url}/api/threads/{thread_id}/posts", json={"body": "x"}, headers=headers
    )
    assert replied.status_code == 201
    assert replied.json()["author"] == {"id": ann, "display_name": "Ann Fresh"}
    assert _author_names(http, split.forum.url, thread_id) == {"Ann Fresh"}


@pytest.mark.parametrize("path", ["/api/threads", "/api/threads/{thread}/posts"])
def test_a_token_for_a_user_who_does_not_exist_is_refused_as_the_monolith_refuses_it(
    http: httpx.Client, split: Split, token_for: Callable[[int], str], path: str
) -> None:
    writer = _sign_up(http, split.users, "Host")
    thread = http.post(
        f"{split.forum.url}/api/threads",
        json={"title": "T", "body": "B"},
        headers=_headers(token_for, writer),
    ).json()
    url = split.forum.url + path.format(thread=thread["id"])
    refused = http.post(url, json={"title": "T", "body": "B"}, headers=_headers(token_for, NOBODY))
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json() == {
        "type": "urn:strangler:problem:unauthorized",
        "title": "Authentication required",
        "status": 401,
        "detail": "the token's user does not exist",
    }
    assert _count(split.forum.database_url, select(func.count()).where(Author.id == NOBODY)) == 0


def test_with_the_users_service_down_an_unknown_writer_gets_a_503_and_nothing_is_written(
    http: httpx.Client, backend: str, tmp_path: Path, token_for: Callable[[int], str]
) -> None:
    with (
        fresh_database(backend, tmp_path, "users") as users_db,
        ExitStack() as users_process,
    ):
        users = users_process.enter_context(running_service("users", users_db, tmp_path))
        with _forum_reading_through(backend, tmp_path, users) as forum:
            known = _sign_up(http, users, "Known")
            unknown = _sign_up(http, users, "Not Yet Seen")
            thread = http.post(
                f"{forum.url}/api/threads",
                json={"title": "Before", "body": "the outage"},
                headers=_headers(token_for, known),
            ).json()
            users_process.close()  # stops the users service process

            for path in ("/api/threads", f"/api/threads/{thread['id']}/posts"):
                refused = http.post(
                    forum.url + path,
                    json={"title": "T", "body": "B"},
                    headers=_headers(token_for, unknown),
                )
                assert refused.status_code == 503, refused.text
                assert refused.headers["content-type"] == "application/problem+json"
                problem = refused.json()
                assert (problem["type"], problem["status"]) == (
                    "urn:strangler:problem:unavailable",
                    503,
                )
                assert "users service" in problem["detail"]
            authors = select(func.count()).where(Author.id == unknown)
            assert _count(forum.database_url, authors) == 0
            assert _count(forum.database_url, select(func.count()).select_from(Thread)) == 1
            assert _count(forum.database_url, select(func.count()).select_from(outbox)) == 1

            # A writer the replica knows, and every read, need no users service.
            replied = http.post(
                f"{forum.url}/api/threads/{thread['id']}/posts",
                json={"body": "still here"},
                headers=_headers(token_for, known),
            )
            assert replied.status_code == 201
            assert _author_names(http, forum.url, thread["id"]) == {"Known"}


def test_a_rename_event_applied_after_the_read_through_wins_and_renames_stay_within_the_bound(
    http: httpx.Client, backend: str, tmp_path: Path, token_for: Callable[[int], str]
) -> None:
    with (
        fresh_database(backend, tmp_path, "users") as users_db,
        fresh_database(backend, tmp_path, "bus") as bus_url,
        running_service("users", users_db, tmp_path) as users,
        _forum_reading_through(backend, tmp_path, users) as forum,
    ):
        ann_id = _sign_up(http, users, "Ann")
        ann = _headers(token_for, ann_id)
        thread = http.post(
            f"{forum.url}/api/threads", json={"title": "Hi", "body": "there"}, headers=ann
        ).json()
        http.post(f"{forum.url}/api/threads/{thread['id']}/posts", json={"body": "x"}, headers=ann)
        assert _author_names(http, forum.url, thread["id"]) == {"Ann"}  # read through
        renamed = http.patch(
            f"{users}/api/users/{ann_id}", json={"display_name": "Annie"}, headers=ann
        )
        assert renamed.status_code == 200
        # Reads never ask the users service: no event yet, so the replica's name stands.
        assert _author_names(http, forum.url, thread["id"]) == {"Ann"}

        relay = start_relay("users", users_db, bus_url, tmp_path)
        consumer = start_consumer("forum", "forum", forum.database_url, bus_url, tmp_path)
        with running(relay), running(consumer):
            assert eventually(
                lambda: _author_names(http, forum.url, thread["id"]) == {"Annie"}, 30, consumer
            )
            again = http.patch(
                f"{users}/api/users/{ann_id}", json={"display_name": "Anne"}, headers=ann
            )
            assert again.status_code == 200
            assert eventually(
                lambda: _author_names(http, forum.url, thread["id"]) == {"Anne"},
                STALENESS_BOUND,
                consumer,
            )
