"""The search service: a real full-text index, fed by forum events, able to build itself.

Every word of a query must start a word of the thread (title or body) or the post (body);
title matches rank first; anything a user types is text, never query syntax. A new post is
findable within 2 seconds of its creation through the real relay, bus and consumer.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from extracted.events.bus import open_bus
from extracted.events.metrics import EventMetrics
from extracted.events.relay import Relay
from extracted.events.runner import ConsumerRunner
from extracted.forum import service as forum_service
from extracted.search import events as search_events
from extracted.search import service
from migrations.runner import upgrade
from plumbing.clock import utcnow
from plumbing.contract import NewPost, NewThread
from plumbing.database import make_engine
from plumbing.tokens import TokenSigner
from tests.services.conftest import RunningService, StartService
from tests.services.event_processes import (
    REPOSITORY,
    eventually,
    running,
    start_consumer,
    start_relay,
)
from tests.support.databases import fresh_database
from tests.support.servers import TEST_TOKEN_SECRET, running_service

FINDABLE_WITHIN = 2.0


@pytest.fixture
def search(session_service: StartService) -> RunningService:
    return session_service("search")


class Index:
    """Adds documents to a search service's database through its own domain code."""

    def __init__(self, database_url: str) -> None:
        self.engine = make_engine(database_url)
        self.next_id = 1_000_000 + uuid.uuid4().int % 1_000_000_000

    def thread(self, title: str, body: str, created_at: datetime | None = None) -> int:
        self.next_id += 1
        with Session(self.engine) as db:
            service.index_thread(db, self.next_id, title, body, created_at or utcnow())
            db.commit()
        return self.next_id

    def post(self, thread_id: int, body: str) -> int:
        self.next_id += 1
        with Session(self.engine) as db:
            service.index_post(db, self.next_id, thread_id, body, utcnow())
            db.commit()
        return self.next_id


@pytest.fixture
def index(search: RunningService) -> Iterator[Index]:
    adder = Index(search.database_url)
    yield adder
    adder.engine.dispose()


def _word() -> str:
    return f"w{uuid.uuid4().hex[:10]}"


def _hits(http: httpx.Client, base: str, query: str, **params: Any) -> list[tuple[str, int]]:
    response = http.get(f"{base}/api/search", params={"q": query, **params})
    assert response.status_code == 200, response.text
    return [(hit["kind"], hit["id"]) for hit in response.json()["items"]]


def _finds(
    http: httpx.Client, base: str, query: str, expected: list[tuple[str, int]]
) -> Callable[[], bool]:
    return lambda: _hits(http, base, query) == expected


def test_a_thread_is_found_by_a_word_of_its_title_or_of_its_body(
    http: httpx.Client, search: RunningService, index: Index
) -> None:
    in_title, in_body = _word(), _word()
    thread = index.thread(f"About {in_title} today", f"Some {in_body}, really")
    response = http.get(f"{search.url}/api/search", params={"q": in_title.upper()})
    assert response.json() == {
        "items": [
            {
                "kind": "thread",
                "id": thread,
                "thread_id": thread,
                "title": f"About {in_title} today",
                "snippet": f"About {in_title} today",
            }
        ],
        "next_cursor": None,
    }
    assert _hits(http, search.url, in_body) == [("thread", thread)]


def test_a_post_is_found_by_its_body_shown_with_its_threads_title(
    http: httpx.Client, search: RunningService, index: Index
) -> None:
    title_word, body_word = _word(), _word()
    thread = index.thread(f"Title {title_word}", "nothing here")
    post = index.post(thread, f"I say {body_word}")
    [hit] = http.get(f"{search.url}/api/search", params={"q": body_word}).json()["items"]
    assert hit == {
        "kind": "post",
        "id": post,
        "thread_id": thread,
        "title": f"Title {title_word}",
        "snippet": f"I say {body_word}",
    }
    assert _hits(http, search.url, title_word) == [("thread", thread)]


def test_a_title_match_ranks_before_a_body_match(
    http: httpx.Client, search: RunningService, index: Index
) -> None:
    word = _word()
    # Body matches as strong as bm25 allows, a title match as weak as it allows.
    in_body = index.thread("Plain title", f"{word} " * 20)
    in_title = index.thread(f"{word} " + "padding " * 20, "and nothing else")
    post = index.post(in_body, f"{word} " * 20)
    hits = _hits(http, search.url, word)
    assert hits[0] == ("thread", in_title)
    assert set(hits) == {("thread", in_title), ("thread", in_body), ("post", post)}


def test_every_word_must_match_and_a_word_may_be_a_prefix(
    http: httpx.Client, search: RunningService, index: Index
) -> None:
    first, second = _word(), _word()
    both = index.thread(f"{first} and {second}", "body")
    index.thread(f"only {first}", "body")
    assert _hits(http, search.url, f"{first} {second}") == [("thread", both)]
    assert _hits(http, search.url, f"{second[:6]} {first}") == [("thread", both)]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"unbalanced',
        "*",
        "a*b",
        "NEAR(a b)",
        "AND OR NOT",
        "title:word",
        "(a",
        "-minus",
        "^caret",
        "'",
        "a & b | !c",
        "a <-> b",
        "%_\\",
        "{curly} [square]",
        "…ünïcødé ✓",
        "   x   ",
    ],
)
def test_query_syntax_is_only_text(http: httpx.Client, search: RunningService, query: str) -> None:
    response = http.get(f"{search.url}/api/search", params={"q": query})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"items", "next_cursor"}


def test_full_text_operators_in_a_query_are_matched_as_words(
    http: httpx.Client, search: RunningService, index: Index
) -> None:
    word = _word()
    thread = index.thread(f"{word} NOT near", "body")
    assert _hits(http, search.url, f'"{word}" NOT') == [("thread", thread)]


def test_pages_cover_every_hit_once_in_rank_order(
    http: httpx.Client, search: RunningService, index: Index
) -> None:
    word = _word()
    made = {("thread", index.thread(f"{word} {n}", "body")) for n in range(7)}
    seen: list[tuple[str, int]] = []
    cursor = None
    while True:
        params = {"q": word, "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = http.get(f"{search.url}/api/search", params=params).json()
        seen += [(hit["kind"], hit["id"]) for hit in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(made) and set(seen) == made


def test_the_index_builds_itself_from_a_forum_database(
    http: httpx.Client, backend: str, tmp_path: Path
) -> None:
    word = _word()
    signer = TokenSigner(TEST_TOKEN_SECRET)
    headers = {"Authorization": f"Bearer {signer.issue(5)}"}
    with (
        fresh_database(backend, tmp_path, "forum") as forum_db,
        fresh_database(backend, tmp_path, "search") as search_db,
    ):
        with running_service("forum", forum_db, tmp_path) as forum:
            thread = http.post(
                f"{forum}/api/threads", json={"title": f"{word} old", "body": "b"}, headers=headers
            ).json()
            post = http.post(
                f"{forum}/api/threads/{thread['id']}/posts", json={"body": word}, headers=headers
            ).json()
        upgrade("search", search_db)
        subprocess.run(
            [sys.executable, "-m", "extracted.search.rebuild", "--from", forum_db],
            env={
                "PATH": "/usr/bin:/bin",
                "SEARCH_DATABASE_URL": search_db,
                "STRANGLER_TOKEN_SECRET": TEST_TOKEN_SECRET,
            },
            cwd=REPOSITORY,
            check=True,
            capture_output=True,
        )
        with running_service("search", search_db, tmp_path) as search:
            assert set(_hits(http, search, word)) == {
                ("thread", thread["id"]),
                ("post", post["id"]),
            }


def test_a_new_post_is_findable_within_two_seconds_through_the_event_path(
    http: httpx.Client, backend: str, tmp_path: Path
) -> None:
    signer = TokenSigner(TEST_TOKEN_SECRET)
    headers = {"Authorization": f"Bearer {signer.issue(6)}"}
    with (
        fresh_database(backend, tmp_path, "forum") as forum_db,
        fresh_database(backend, tmp_path, "search") as search_db,
        fresh_database(backend, tmp_path, "bus") as bus_url,
        running_service("forum", forum_db, tmp_path) as forum,
        running_service("search", search_db, tmp_path) as search,
        running(start_relay("forum", forum_db, bus_url, tmp_path)),
        running(start_consumer("search", "search", search_db, bus_url, tmp_path)) as consumer,
    ):
        thread = http.post(
            f"{forum}/api/threads", json={"title": "Warm-up", "body": "b"}, headers=headers
        ).json()
        assert eventually(lambda: bool(_hits(http, search, "warm")), 30, consumer)
        for _ in range(3):
            word = _word()
            response = http.post(
                f"{forum}/api/threads/{thread['id']}/posts",
                json={"body": f"new {word}"},
                headers=headers,
            )
            assert response.status_code == 201
            assert eventually(
                _finds(http, search, word, [("post", response.json()["id"])]),
                FINDABLE_WITHIN,
                consumer,
            )


def test_replaying_the_indexer_rebuilds_a_lost_index_from_the_bus(
    backend: str, tmp_path: Path
) -> None:
    word = _word()
    with (
        fresh_database(backend, tmp_path, "forum") as forum_db,
        fresh_database(backend, tmp_path, "search") as search_db,
        fresh_database(backend, tmp_path, "bus") as bus_url,
    ):
        upgrade("forum", forum_db)
        upgrade("search", search_db)
        forum_engine, search_engine = make_engine(forum_db), make_engine(search_db)
        bus = open_bus(bus_url)
        metrics = EventMetrics()
        try:
            with Session(forum_engine, expire_on_commit=False) as db:
                thread = forum_service.start_thread(db, 7, NewThread(title=word, body="b"))
                post = forum_service.add_post(db, 7, thread.id, NewPost(body=f"re {word}"))
            Relay("forum", forum_engine, bus, 100, metrics).run_once()
            runner = ConsumerRunner(search_events.consumer, search_engine, bus, metrics)
            assert runner.run_once() == (2, False)
            with Session(search_engine) as db:
                service.clear(db)  # the index is lost
                db.commit()
                assert service.search(db, word, 0, 10) == []
            runner.replay()
            assert runner.run_once() == (2, False)
            with Session(search_engine) as db:
                found = {(hit.kind, hit.id) for hit in service.search(db, word, 0, 10)}
            assert found == {("thread", thread.id), ("post", post.id)}
        finally:
            bus.close()
            forum_engine.dispose()
            search_engine.dispose()


def test_a_rebuild_under_live_writes_indexes_a_thread_written_after_the_thread_pass(
    backend: str, tmp_path: Path
) -> None:
    from sqlalchemy import event
    from sqlalchemy.orm import sessionmaker

    from extracted.forum.models import Post, Thread
    from extracted.search.models import Document
    from extracted.search.rebuild import rebuild

    with (
        fresh_database(backend, tmp_path, "forum") as forum_db,
        fresh_database(backend, tmp_path, "search") as search_db,
    ):
        upgrade("forum", forum_db)
        upgrade("search", search_db)
        forum, search = make_engine(forum_db), make_engine(search_db)
        written = utcnow()
        with Session(forum) as db, db.begin():
            db.add(Thread(id=1, title="early", body="b", author_id=1, created_at=written))
            db.flush()
            db.add(Post(id=1, thread_id=1, body="first", author_id=1, created_at=written))

        def write_a_thread_between_the_passes(
            _conn: Any, _cursor: Any, statement: str, *_: Any
        ) -> None:
            if "FROM posts" in statement and not late_thread_written:
                late_thread_written.append(True)
                with Session(forum) as db, db.begin():
                    db.add(Thread(id=2, title="late", body="b", author_id=1, created_at=written))
                    db.flush()
                    db.add(Post(id=2, thread_id=2, body="reply", author_id=1, created_at=written))

        late_thread_written: list[bool] = []
        event.listen(forum, "before_cursor_execute", write_a_thread_between_the_passes)
        try:
            indexed = rebuild(forum, sessionmaker(search))
        finally:
            event.remove(forum, "before_cursor_execute", write_a_thread_between_the_passes)
            forum.dispose()
        with Session(search) as db:
            rows = db.execute(select(Document.kind, Document.source_id))
            documents = {tuple(row) for row in rows}
        search.dispose()
        assert late_thread_written
        assert documents == {("thread", 1), ("post", 1), ("thread", 2), ("post", 2)}
        assert indexed == 4
