"""The forum context of the contract: threads, posts, their authors and their lists."""

from __future__ import annotations

import pytest

from tests.contract.client import ContractClient, Member, eventually, walk

pytestmark = pytest.mark.forum


class TestThreads:
    def test_a_member_starts_a_thread(self, forum_api: ContractClient, member: Member) -> None:
        response = forum_api.post(
            "/api/threads", json={"title": "Hello", "body": "First!"}, headers=member.headers
        )
        assert response.status_code == 201
        thread = response.json()
        assert (thread["title"], thread["body"], thread["post_count"]) == ("Hello", "First!", 0)
        assert thread["author"] == {"id": member.id, "display_name": member.display_name}
        assert forum_api.get(f"/api/threads/{thread['id']}").json() == thread

    def test_title_and_body_at_their_longest_are_accepted(
        self, forum_api: ContractClient, member: Member
    ) -> None:
        thread = forum_api.start_thread(member, title="t" * 200, body="b" * 20000)
        assert (len(thread["title"]), len(thread["body"])) == (200, 20000)

    def test_starting_a_thread_without_a_token_is_unauthorized(
        self, forum_api: ContractClient
    ) -> None:
        before = forum_api.newest_thread_id()
        response = forum_api.post("/api/threads", json={"title": "Anon", "body": "x"})
        assert response.status_code == 401
        assert forum_api.newest_thread_id() == before

    @pytest.mark.parametrize(
        ("document", "field"),
        [
            ({"title": "", "body": "x"}, "title"),
            ({"title": " \n\t", "body": "x"}, "title"),
            ({"title": "t" * 201, "body": "x"}, "title"),
            ({"title": "t", "body": ""}, "body"),
            ({"title": "t", "body": "b" * 20001}, "body"),
            ({"body": "x"}, "title"),
            ({"title": "t"}, "body"),
        ],
    )
    def test_an_invalid_thread_is_a_validation_error_and_creates_nothing(
        self, forum_api: ContractClient, member: Member, document: dict[str, str], field: str
    ) -> None:
        before = forum_api.newest_thread_id()
        response = forum_api.post("/api/threads", json=document, headers=member.headers)
        assert response.status_code == 422
        assert [error["field"] for error in response.json()["errors"]] == [field]
        assert forum_api.newest_thread_id() == before

    def test_an_unknown_thread_is_not_found(self, forum_api: ContractClient) -> None:
        assert forum_api.get("/api/threads/999999999999").status_code == 404

    def test_threads_are_listed_newest_first(
        self, forum_api: ContractClient, member: Member
    ) -> None:
        older = forum_api.start_thread(member, title="older")
        newer = forum_api.start_thread(member, title="newer")
        items = forum_api.get("/api/threads", params={"limit": 2}).json()["items"]
        assert [thread["id"] for thread in items] == [newer["id"], older["id"]]

    def test_thread_pages_cover_every_thread_once_in_order(
        self, forum_api: ContractClient, member: Member
    ) -> None:
        for number in range(7):
            forum_api.start_thread(member, title=f"paged {number}")
        ids = [thread["id"] for thread in walk(forum_api, "/api/threads", limit=3)]
        assert ids == sorted(set(ids), reverse=True)
        assert ids == [thread["id"] for thread in walk(forum_api, "/api/threads", limit=100)]

    @pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "cursor=%25%25"])
    def test_a_bad_page_request_is_a_validation_error(
        self, forum_api: ContractClient, query: str
    ) -> None:
        response = forum_api.get(f"/api/threads?{query}")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == query.split("=")[0]


class TestPosts:
    def test_a_member_replies_to_a_thread(
        self, forum_api: ContractClient, member: Member, other_member: Member
    ) -> None:
        thread = forum_api.start_thread(member)
        response = forum_api.post(
            f"/api/threads/{thread['id']}/posts",
            json={"body": "Agreed."},
            headers=other_member.headers,
        )
        assert response.status_code == 201
        post = response.json()
        assert (post["thread_id"], post["body"]) == (thread["id"], "Agreed.")
        assert post["author"] == {"id": other_member.id, "display_name": other_member.display_name}

    def test_each_post_counts_on_its_thread(
        self, forum_api: ContractClient, member: Member
    ) -> None:
        thread = forum_api.start_thread(member)
        for _ in range(3):
            forum_api.add_post(member, thread["id"])
        assert forum_api.get(f"/api/threads/{thread['id']}").json()["post_count"] == 3

    def test_posts_are_listed_oldest_first_across_pages(
        self, forum_api: ContractClient, member: Member
    ) -> None:
        thread = forum_api.start_thread(member)
        created = [forum_api.add_post(member, thread["id"], f"reply {n}")["id"] for n in range(5)]
        path = f"/api/threads/{thread['id']}/posts"
        assert [post["id"] for post in walk(forum_api, path, limit=2)] == created
        assert [post["id"] for post in walk(forum_api, path, limit=5)] == created

    def test_a_thread_without_posts_lists_none(
        self, forum_api: ContractClient, member: Member
    ) -> None:
        thread = forum_api.start_thread(member)
        page = forum_api.get(f"/api/threads/{thread['id']}/posts").json()
        assert page == {"items": [], "next_cursor": None}

    def test_the_author_shown_is_the_authors_current_display_name(
        self,
        forum_api: ContractClient,
        users_api: ContractClient,
        member: Member,
    ) -> None:
        thread = forum_api.start_thread(member)
        forum_api.add_post(member, thread["id"])
        renamed = users_api.patch(
            f"/api/users/{member.id}", json={"display_name": "Renamed"}, headers=member.headers
        )
        assert renamed.status_code == 200

        def shows_the_new_name() -> None:
            # An extracted forum learns names from user events: allowed to trail by 2 seconds.
            shown_thread = forum_api.get(f"/api/threads/{thread['id']}").json()
            shown_posts = forum_api.get(f"/api/threads/{thread['id']}/posts").json()["items"]
            assert shown_thread["author"]["display_name"] == "Renamed"
            assert [post["author"]["display_name"] for post in shown_posts] == ["Renamed"]

        eventually(shows_the_new_name)

    def test_replying_without_a_token_is_unauthorized(
        self, forum_api: ContractClient, member: Member
    ) -> None:
        thread = forum_api.start_thread(member)
        response = forum_api.post(f"/api/threads/{thread['id']}/posts", json={"body": "anon"})
        assert response.status_code == 401
        assert_no_posts(forum_api, thread["id"])

    @pytest.mark.parametrize("document", [{"body": ""}, {"body": "b" * 20001}, {}, {"body": 42}])
    def test_an_invalid_post_is_a_validation_error_and_creates_nothing(
        self, forum_api: ContractClient, member: Member, document: dict[str, object]
    ) -> None:
        thread = forum_api.start_thread(member)
        response = forum_api.post(
            f"/api/threads/{thread['id']}/posts", json=document, headers=member.headers
        )
        assert response.status_code == 422
        assert [error["field"] for error in response.json()["errors"]] == ["body"]
        assert_no_posts(forum_api, thread["id"])

    def test_replying_to_an_unknown_thread_is_not_found(
        self, forum_api: ContractClient, member: Member
    ) -> None:
        response = forum_api.post(
            "/api/threads/999999999999/posts", json={"body": "hello?"}, headers=member.headers
        )
        assert response.status_code == 404

    def test_the_body_is_checked_before_the_thread(
        self, forum_api: ContractClient, member: Member
    ) -> None:
        response = forum_api.post(
            "/api/threads/999999999999/posts", json={"body": ""}, headers=member.headers
        )
        assert response.status_code == 422

    def test_the_posts_of_an_unknown_thread_are_not_found(self, forum_api: ContractClient) -> None:
        assert forum_api.get("/api/threads/999999999999/posts").status_code == 404

    def test_a_bad_cursor_on_posts_is_a_validation_error(
        self, forum_api: ContractClient, member: Member
    ) -> None:
        thread = forum_api.start_thread(member)
        response = forum_api.get(
            f"/api/threads/{thread['id']}/posts", params={"cursor": "garbage!"}
        )
        assert response.status_code == 422


def assert_no_posts(forum_api: ContractClient, thread_id: int) -> None:
    assert forum_api.get(f"/api/threads/{thread_id}").json()["post_count"] == 0
    assert forum_api.get(f"/api/threads/{thread_id}/posts").json()["items"] == []
