"""The search context of the contract: threads and posts are findable soon after creation.

Search may be fed by events, so a new thread or post is looked for repeatedly for a while
(the contract allows 2 seconds) rather than expected on the first try.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.contract.client import ContractClient, Member, eventually, walk

pytestmark = pytest.mark.search


def word() -> str:
    """A word nothing else in the database contains."""
    return f"zq{uuid.uuid4().hex[:12]}"


def hits(search_api: ContractClient, q: str, **params: Any) -> list[dict[str, Any]]:
    response = search_api.get("/api/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def found(search_api: ContractClient, q: str, expected: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]]:
        items = hits(search_api, q)
        assert len(items) == expected, items
        return items

    return eventually(check)


def test_a_new_thread_is_found_by_a_word_of_its_title(
    forum_api: ContractClient, search_api: ContractClient, member: Member
) -> None:
    needle = word()
    thread = forum_api.start_thread(member, title=f"About {needle} today", body="nothing more")
    [hit] = found(search_api, needle, 1)
    assert hit == {
        "kind": "thread",
        "id": thread["id"],
        "thread_id": thread["id"],
        "title": thread["title"],
        "snippet": hit["snippet"],
    }
    assert needle in hit["snippet"]


def test_a_new_post_is_found_with_its_thread(
    forum_api: ContractClient, search_api: ContractClient, member: Member
) -> None:
    needle = word()
    thread = forum_api.start_thread(member, title="Unrelated title", body="unrelated body")
    post = forum_api.add_post(member, thread["id"], body=f"Replying with {needle}.")
    [hit] = found(search_api, needle, 1)
    assert (hit["kind"], hit["id"], hit["thread_id"]) == ("post", post["id"], thread["id"])
    assert hit["title"] == "Unrelated title"
    assert needle in hit["snippet"]


def test_search_ignores_case(
    forum_api: ContractClient, search_api: ContractClient, member: Member
) -> None:
    needle = word()
    forum_api.start_thread(member, title=f"Shouting {needle.upper()}")
    assert len(found(search_api, needle.lower(), 1)) == 1


def test_a_title_match_ranks_before_a_match_in_a_post(
    forum_api: ContractClient, search_api: ContractClient, member: Member
) -> None:
    needle = word()
    elsewhere = forum_api.start_thread(member, title="Elsewhere", body="nothing")
    post = forum_api.add_post(member, elsewhere["id"], body=f"mentions {needle} in passing")
    titled = forum_api.start_thread(member, title=f"All about {needle}", body="see title")
    items = found(search_api, needle, 2)
    assert [(hit["kind"], hit["id"]) for hit in items] == [
        ("thread", titled["id"]),
        ("post", post["id"]),
    ]


def test_hits_page_through_every_match_once(
    forum_api: ContractClient, search_api: ContractClient, member: Member
) -> None:
    needle = word()
    threads = {forum_api.start_thread(member, title=f"{needle} {n}")["id"] for n in range(5)}
    found(search_api, needle, 5)
    paged = walk(search_api, "/api/search", limit=2, q=needle)
    assert sorted(hit["id"] for hit in paged) == sorted(threads)


def test_nothing_matches_an_unknown_word(search_api: ContractClient) -> None:
    response = search_api.get("/api/search", params={"q": word()})
    assert response.json() == {"items": [], "next_cursor": None}


def test_a_query_of_100_characters_is_accepted(search_api: ContractClient) -> None:
    assert search_api.get("/api/search", params={"q": "q" * 100}).status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "q" * 101}, "q"),
        ({"q": "x", "limit": "0"}, "limit"),
        ({"q": "x", "limit": "101"}, "limit"),
        ({"q": "x", "cursor": "not-a-cursor"}, "cursor"),
        ({"q": "x", "cursor": "LTE"}, "cursor"),
    ],
)
def test_a_bad_search_is_a_validation_error_naming_the_parameter(
    search_api: ContractClient, params: dict[str, str], field: str
) -> None:
    response = search_api.get("/api/search", params=params)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]
