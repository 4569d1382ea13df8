"""Parity: the forum and search services answer as the monolith does, over the same data.

Data is made through the monolith's public API, then its rows are copied unchanged into the
forum's database (threads, posts, and users' id and display name into the authors replica, as
the users events would) and the search index is built from the monolith's tables by the
rebuild command's code. The forum reads through to a real users service (`FORUM_USERS_URL`)
for a writer its replica does not know, so a token for a user who does not exist is refused
as the monolith refuses it. Both sides then get the same requests in the same order and must
agree on status, content type and body, ignoring only what the contract allows: the request id
and the `created_at` of a row made during the test.

One difference is the design's, not a defect, and is left out here: search ranks by relevance
with word-prefix matching rather than the monolith's substring scan, so for search only the
*set* of hits of unambiguous queries is compared (its errors are compared exactly).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, Table, insert, select, text
from sqlalchemy.orm import sessionmaker

from contract.pagination import encode_cursor
from extracted.forum.models import Base as ForumBase
from extracted.search.rebuild import rebuild
from strangler.datapath.schemas import upgrade
from strangler.plumbing.clock import utcnow
from strangler.plumbing.database import make_engine
from tests.services.parity import ISO, SIGNER, UNKNOWN, Exchange
from tests.support.databases import fresh_database
from tests.support.servers import running_monolith, running_service

THREADS = [
    (1, "Tomato soup for winter", "Roast the tomatoes first, then blend with basil."),
    (2, "Basil keeps dying", "My basil wilts every summer on the balcony."),
    (3, "Cycling to work", "Twenty kilometres each way, rain or shine."),
    (2, "Guitar strings", "Which strings for an old acoustic guitar?"),
    (3, "Unicode: café ✓", 'Crème brûlée and ümlauts <b>bold</b> & "quotes".'),
]
POSTS = [
    (1, 2, "I add smoked paprika to tomato soup."),
    (1, 3, "Basil on top, always."),
    (2, 1, "Water it in the morning, not at night."),
    (3, 1, "Get good mudguards for the rain."),
    (4, 3, "Nylon strings are gentler on old guitars."),
    (1, 1, "Winter is soup season."),
]


@dataclass(frozen=True)
class Sides:
    monolith: str
    forum: str
    search: str


def _make_data(client: httpx.Client, monolith: str) -> None:
    for name in ("ann", "bob", "cyd"):
        document = {
            "username": name,
            "email": f"{name}@example.org",
            "password": "a long enough password",
            "display_name": name.title(),
        }
        assert client.post(f"{monolith}/api/users", json=document).status_code == 201
    for author, title, body in THREADS:
        headers = {"Authorization": f"Bearer {SIGNER.issue(author)}"}
        response = client.post(
            f"{monolith}/api/threads", json={"title": title, "body": body}, headers=headers
        )
        assert response.status_code == 201
    for thread, author, body in POSTS:
        headers = {"Authorization": f"Bearer {SIGNER.issue(author)}"}
        response = client.post(
            f"{monolith}/api/threads/{thread}/posts", json={"body": body}, headers=headers
        )
        assert response.status_code == 201
    # A rename after posting: both sides must show the current name.
    headers = {"Authorization": f"Bearer {SIGNER.issue(2)}"}
    client.patch(f"{monolith}/api/users/2", json={"display_name": "Bobby"}, headers=headers)


def _copy_forum(monolith_url: str, forum_url: str) -> None:
    """Threads and posts unchanged, users' (id, display_name) into the authors replica."""
    source, target = make_engine(monolith_url), make_engine(forum_url)
    tables = ForumBase.metadata.tables
    with source.connect() as reading, target.begin() as writing:
        users = Table("users", MetaData(), autoload_with=reading)
        authors = [
            {"id": row.id, "display_name": row.display_name, "is_provisional": False}
            for row in reading.execute(select(users.c.id, users.c.display_name))
        ]
        writing.execute(insert(tables["authors"]), [{**a, "updated_at": utcnow()} for a in authors])
        for name in ("threads", "posts"):
            monolith_table = Table(name, MetaData(), autoload_with=reading)
            columns = [monolith_table.c[column.name] for column in tables[name].columns]
            rows = [dict(row._mapping) for row in reading.execute(select(*columns))]
            writing.execute(insert(tables[name]), rows)
            if target.dialect.name == "postgresql":  # explicit ids do not move the sequence
                sequence = f"pg_get_serial_sequence('{name}', 'id')"
                writing.execute(text(f"SELECT setval({sequence}, max(id)) FROM {name}"))
    source.dispose()
    target.dispose()


@pytest.fixture(scope="module")
def sides(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sides]:
    folder = tmp_path_factory.mktemp(f"forum-parity-{backend}")
    with (
        fresh_database(backend, folder, "monolith") as monolith_db,
        fresh_database(backend, folder, "forum") as forum_db,
        fresh_database(backend, folder, "search") as search_db,
        fresh_database(backend, folder, "users") as users_db,
        running_monolith(monolith_db, folder) as monolith,
        httpx.Client(timeout=30.0) as client,
    ):
        _make_data(client, monolith)
        upgrade("forum", forum_db)
        upgrade("search", search_db)
        _copy_forum(monolith_db, forum_db)
        source, target = make_engine(monolith_db), make_engine(search_db)
        rebuild(source, sessionmaker(target))
        source.dispose()
        target.dispose()
        # The replica knows every author of the data; the users service (empty) answers only
        # for writers it does not know, as it would for a user who does not exist.
        with (
            running_service("users", users_db, folder) as users,
            running_service("forum", forum_db, folder, {"FORUM_USERS_URL": users}) as forum,
            running_service("search", search_db, folder) as search,
        ):
            yield Sides(monolith, forum, search)


def _comparable(response: httpx.Response) -> dict[str, Any]:
    content_type = response.headers.get("content-type", "")
    seen: dict[str, Any] = {"status": response.status_code, "content_type": content_type}
    body = response.json()
    if isinstance(body, dict) and response.status_code == 201 and "created_at" in body:
        assert ISO.fullmatch(body.pop("created_at")), body
    seen["body"] = body
    return seen


def _answers(exchange: Exchange, monolith: str, service: str) -> tuple[Any, Any]:
    with httpx.Client(timeout=30.0) as client:
        expected = exchange.send(client, monolith)
        answered = exchange.send(client, service)
    assert "x-request-id" in answered.headers
    return _comparable(expected), _comparable(answered)


def _forum_exchanges() -> list[Exchange]:
    thread = {"title": "New", "body": "Thread"}
    return [
        Exchange("a thread", "GET", "/api/threads/1"),
        Exchange("a thread by a renamed author", "GET", "/api/threads/2"),
        Exchange("a thread needing escapes", "GET", "/api/threads/5"),
        Exchange("an unknown thread", "GET", f"/api/threads/{UNKNOWN}"),
        Exchange("thread zero", "GET", "/api/threads/0"),
        Exchange("a word for an id", "GET", "/api/threads/abc"),
        Exchange("an id too large", "GET", "/api/threads/99999999999999999999"),
        Exchange("a trailing slash", "GET", "/api/threads/1/"),
        Exchange("the first page", "GET", "/api/threads"),
        Exchange("a short page", "GET", "/api/threads?limit=2"),
        Exchange("the next page", "GET", f"/api/threads?limit=2&cursor={encode_cursor(4)}"),
        Exchange("the last page", "GET", f"/api/threads?limit=2&cursor={encode_cursor(2)}"),
        Exchange("a repeated limit", "GET", "/api/threads?limit=1&limit=50"),
        Exchange("limit zero", "GET", "/api/threads?limit=0"),
        Exchange("limit not a number", "GET", "/api/threads?limit=ten"),
        Exchange("a garbage cursor", "GET", "/api/threads?cursor=!!!"),
        Exchange("a cursor of a string", "GET", f"/api/threads?cursor={encode_cursor('x')}"),
        Exchange("posts", "GET", "/api/threads/1/posts"),
        Exchange("a page of posts", "GET", "/api/threads/1/posts?limit=2"),
        Exchange(
            "the next posts", "GET", f"/api/threads/1/posts?limit=2&cursor={encode_cursor(2)}"
        ),
        Exchange("no posts", "GET", "/api/threads/5/posts"),
        Exchange("posts of an unknown thread", "GET", f"/api/threads/{UNKNOWN}/posts"),
        Exchange("a bad cursor on posts", "GET", "/api/threads/1/posts?cursor=%25%25"),
        Exchange("a thread without a token", "POST", "/api/threads", thread),
        Exchange(
            "a garbage token",
            "POST",
            "/api/threads",
            thread,
            headers={"Authorization": "Bearer nope"},
        ),
        Exchange("no token before a bad body", "POST", "/api/threads", content=b"{"),
        Exchange("a blank title", "POST", "/api/threads", {**thread, "title": " "}, as_user=1),
        Exchange(
            "a title too long", "POST", "/api/threads", {**thread, "title": "x" * 201}, as_user=1
        ),
        Exchange("a number for a body", "POST", "/api/threads", {**thread, "body": 5}, as_user=1),
        Exchange("no fields", "POST", "/api/threads", {}, as_user=1),
        Exchange("a list body", "POST", "/api/threads", [], as_user=1),
        Exchange("not JSON", "POST", "/api/threads", content=b"title=x", as_user=1),
        Exchange("not UTF-8", "POST", "/api/threads", content=b'{"title": "\xff"}', as_user=1),
        Exchange("over 1 MiB", "POST", "/api/threads", content=b" " * (1024 * 1024 + 1), as_user=1),
        Exchange("a reply without a token", "POST", "/api/threads/1/posts", {"body": "x"}),
        Exchange("a blank reply", "POST", "/api/threads/1/posts", {"body": " "}, as_user=1),
        Exchange(
            "a reply to an unknown thread",
            "POST",
            f"/api/threads/{UNKNOWN}/posts",
            {"body": "x"},
            as_user=1,
        ),
        Exchange(
            "a bad body before not found",
            "POST",
            f"/api/threads/{UNKNOWN}/posts",
            {"body": ""},
            as_user=1,
        ),
        Exchange(
            "a thread by a user who does not exist",
            "POST",
            "/api/threads",
            thread,
            as_user=UNKNOWN,
        ),
        Exchange(
            "a reply by a user who does not exist",
            "POST",
            "/api/threads/1/posts",
            {"body": "x"},
            as_user=UNKNOWN,
        ),
        Exchange(
            "a user who does not exist before not found",
            "POST",
            f"/api/threads/{UNKNOWN}/posts",
            {"body": "x"},
            as_user=UNKNOWN,
        ),
        Exchange("deleting a thread", "DELETE", "/api/threads/1"),
        Exchange("putting threads", "PUT", "/api/threads", {}),
        Exchange("OPTIONS", "OPTIONS", "/api/threads"),
        Exchange("an unknown path", "GET", "/api/forum"),
        # Writes that make new rows go last: their created_at differs from then on.
        Exchange("starting a thread", "POST", "/api/threads", thread, as_user=3),
        Exchange("replying", "POST", "/api/threads/2/posts", {"body": "Me ✓"}, as_user=2),
        Exchange("the thread after the reply", "GET", "/api/threads/2"),
    ]


def _search_errors() -> list[Exchange]:
    return [
        Exchange("no query", "GET", "/api/search"),
        Exchange("an empty query", "GET", "/api/search?q="),
        Exchange("a blank query", "GET", "/api/search?q=%20%20"),
        Exchange("a query too long", "GET", "/api/search?q=" + "x" * 101),
        Exchange("a NUL in the query", "GET", "/api/search?q=a%00b"),
        Exchange("a bad limit", "GET", "/api/search?q=soup&limit=0"),
        Exchange("a bad query before a bad limit", "GET", "/api/search?q=&limit=0"),
        Exchange("a garbage cursor", "GET", "/api/search?q=soup&cursor=!!!"),
        Exchange("a cursor too far", "GET", f"/api/search?q=soup&cursor={encode_cursor(10_001)}"),
        Exchange("a negative cursor", "GET", f"/api/search?q=soup&cursor={encode_cursor(-1)}"),
        Exchange("a cursor of a string", "GET", f"/api/search?q=soup&cursor={encode_cursor('1')}"),
        Exchange("posting a search", "POST", "/api/search", {"q": "soup"}),
        Exchange("OPTIONS on search", "OPTIONS", "/api/search"),
    ]


UNAMBIGUOUS_QUERIES = ["soup", "basil", "Strings", "rain", "café", "winter", "tomato soup", "zzzz"]


@pytest.mark.parametrize("exchange", _forum_exchanges(), ids=lambda exchange: exchange.name)
def test_the_forum_service_answers_as_the_monolith(sides: Sides, exchange: Exchange) -> None:
    expected, answered = _answers(exchange, sides.monolith, sides.forum)
    assert answered == expected, exchange.name


@pytest.mark.parametrize("exchange", _search_errors(), ids=lambda exchange: exchange.name)
def test_the_search_service_rejects_what_the_monolith_rejects(
    sides: Sides, exchange: Exchange
) -> None:
    expected, answered = _answers(exchange, sides.monolith, sides.search)
    assert answered == expected, exchange.name


@pytest.mark.parametrize("query", UNAMBIGUOUS_QUERIES)
def test_the_search_service_finds_what_the_monolith_finds(sides: Sides, query: str) -> None:
    exchange = Exchange(query, "GET", f"/api/search?limit=100&q={query}")
    expected, answered = _answers(exchange, sides.monolith, sides.search)
    assert (answered["status"], answered["content_type"]) == (200, expected["content_type"])

    def hits(seen: dict[str, Any]) -> list[dict[str, Any]]:
        items = seen["body"]["items"]
        if " " in query:  # a phrase to the monolith, every word to the index: same rows here
            items = [{k: hit[k] for k in ("kind", "id", "thread_id", "title")} for hit in items]
        return sorted(items, key=lambda hit: (hit["kind"], hit["id"]))

    assert hits(answered) == hits(expected)
    assert query == "zzzz" or hits(expected), "an unambiguous query should find something"
    assert answered["body"]["next_cursor"] is None
