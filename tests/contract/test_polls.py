"""The polls context of the contract: polls, one vote per member, results and the results page."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.contract.client import ContractClient, Member, eventually

pytestmark = pytest.mark.polls


class TestPolls:
    def test_a_member_creates_a_poll(self, polls_api: ContractClient, member: Member) -> None:
        response = polls_api.post(
            "/api/polls",
            json={"question": "Best editor?", "options": ["vim", "emacs", "nano"]},
            headers=member.headers,
        )
        assert response.status_code == 201
        poll = response.json()
        assert (poll["question"], poll["author_id"]) == ("Best editor?", member.id)
        assert [option["text"] for option in poll["options"]] == ["vim", "emacs", "nano"]
        assert len({option["id"] for option in poll["options"]}) == 3
        assert polls_api.get(f"/api/polls/{poll['id']}").json() == poll

    @pytest.mark.parametrize("count", [2, 10])
    def test_two_to_ten_options_are_accepted(
        self, polls_api: ContractClient, member: Member, count: int
    ) -> None:
        options = [f"option {n}" for n in range(count)]
        poll = polls_api.create_poll(member, options=options)
        assert [option["text"] for option in poll["options"]] == options

    @pytest.mark.parametrize(
        ("document", "field"),
        [
            ({"question": "One?", "options": ["only"]}, "options"),
            ({"question": "Eleven?", "options": [f"o{n}" for n in range(11)]}, "options"),
            ({"question": "Same?", "options": ["yes", "yes"]}, "options"),
            ({"question": "Empty?", "options": ["yes", ""]}, "options.1"),
            ({"question": "Long?", "options": ["yes", "n" * 101]}, "options.1"),
            ({"question": "", "options": ["a", "b"]}, "question"),
            ({"question": "q" * 301, "options": ["a", "b"]}, "question"),
            ({"question": "Numbers?", "options": [1, 2]}, "options.0"),
            ({"options": ["a", "b"]}, "question"),
        ],
    )
    def test_an_invalid_poll_is_a_validation_error_and_creates_nothing(
        self,
        polls_api: ContractClient,
        member: Member,
        document: dict[str, Any],
        field: str,
    ) -> None:
        probe = polls_api.create_poll(member)
        response = polls_api.post("/api/polls", json=document, headers=member.headers)
        assert response.status_code == 422
        assert field in [error["field"] for error in response.json()["errors"]]
        assert polls_api.get(f"/api/polls/{probe['id'] + 1}").status_code == 404

    def test_creating_a_poll_without_a_token_is_unauthorized(
        self, polls_api: ContractClient, member: Member
    ) -> None:
        probe = polls_api.create_poll(member)
        response = polls_api.post("/api/polls", json={"question": "q", "options": ["a", "b"]})
        assert response.status_code == 401
        assert polls_api.get(f"/api/polls/{probe['id'] + 1}").status_code == 404

    def test_an_unknown_poll_is_not_found(self, polls_api: ContractClient) -> None:
        assert polls_api.get("/api/polls/999999999999").status_code == 404


class TestVotes:
    def test_a_vote_is_accepted(
        self, polls_api: ContractClient, member: Member, other_member: Member
    ) -> None:
        poll = polls_api.create_poll(member)
        option_id = poll["options"][1]["id"]
        response = polls_api.post(
            f"/api/polls/{poll['id']}/votes",
            json={"option_id": option_id},
            headers=other_member.headers,
        )
        assert response.status_code == 201
        assert response.json() == {
            "poll_id": poll["id"],
            "option_id": option_id,
            "user_id": other_member.id,
        }

    def test_second_vote_is_a_conflict(self, polls_api: ContractClient, member: Member) -> None:
        poll = polls_api.create_poll(member)
        first, second = (option["id"] for option in poll["options"])
        assert vote(polls_api, member, poll["id"], first).status_code == 201
        response = vote(polls_api, member, poll["id"], second)
        assert response.status_code == 409
        assert response.json()["type"] == "urn:strangler:problem:conflict"

        def counted() -> dict[int, int]:
            tally = counts(polls_api, poll["id"])
            assert sum(tally.values()) == 1
            return tally

        assert eventually(counted) == {first: 1, second: 0}

    def test_an_option_of_another_poll_is_a_validation_error(
        self, polls_api: ContractClient, member: Member
    ) -> None:
        poll = polls_api.create_poll(member)
        other = polls_api.create_poll(member)
        response = vote(polls_api, member, poll["id"], other["options"][0]["id"])
        assert response.status_code == 422
        assert [error["field"] for error in response.json()["errors"]] == ["option_id"]
        assert sum(counts(polls_api, poll["id"]).values()) == 0
        assert sum(counts(polls_api, other["id"]).values()) == 0

    @pytest.mark.parametrize("option_id", [0, -1, "1", 1.5, None, True])
    def test_an_option_id_that_is_not_a_positive_integer_is_a_validation_error(
        self, polls_api: ContractClient, member: Member, option_id: object
    ) -> None:
        poll = polls_api.create_poll(member)
        response = polls_api.post(
            f"/api/polls/{poll['id']}/votes", json={"option_id": option_id}, headers=member.headers
        )
        assert response.status_code == 422
        assert sum(counts(polls_api, poll["id"]).values()) == 0

    def test_voting_in_an_unknown_poll_is_not_found(
        self, polls_api: ContractClient, member: Member
    ) -> None:
        assert vote(polls_api, member, 999999999999, 1).status_code == 404

    def test_voting_without_a_token_is_unauthorized(
        self, polls_api: ContractClient, member: Member
    ) -> None:
        poll = polls_api.create_poll(member)
        response = polls_api.post(
            f"/api/polls/{poll['id']}/votes", json={"option_id": poll["options"][0]["id"]}
        )
        assert response.status_code == 401
        assert sum(counts(polls_api, poll["id"]).values()) == 0


class TestResults:
    def test_results_count_every_vote(
        self, polls_api: ContractClient, users_api: ContractClient
    ) -> None:
        author = users_api.sign_up_and_sign_in()
        poll = polls_api.create_poll(author, options=["red", "green", "blue"])
        red, green, blue = (option["id"] for option in poll["options"])
        for choice in (red, green, green):
            assert (
                vote(polls_api, users_api.sign_up_and_sign_in(), poll["id"], choice).status_code
                == 201
            )

        def counted() -> dict[str, Any]:
            results = polls_api.get(f"/api/polls/{poll['id']}/results").json()
            assert results["total"] == 3
            return dict(results)

        results = eventually(counted)
        assert results["poll_id"] == poll["id"]
        assert results["options"] == [
            {"id": red, "text": "red", "votes": 1},
            {"id": green, "text": "green", "votes": 2},
            {"id": blue, "text": "blue", "votes": 0},
        ]

    def test_a_new_poll_has_no_votes(self, polls_api: ContractClient, member: Member) -> None:
        poll = polls_api.create_poll(member)
        results = polls_api.get(f"/api/polls/{poll['id']}/results").json()
        assert results["total"] == 0
        assert [option["votes"] for option in results["options"]] == [0, 0]

    def test_results_of_an_unknown_poll_are_not_found(self, polls_api: ContractClient) -> None:
        assert polls_api.get("/api/polls/999999999999/results").status_code == 404

    def test_the_results_page_shows_the_question_and_the_counts(
        self, polls_api: ContractClient, member: Member
    ) -> None:
        poll = polls_api.create_poll(member, question="Cats or dogs?", options=["Cats", "Dogs"])
        vote(polls_api, member, poll["id"], poll["options"][1]["id"])

        def page() -> str:
            response = polls_api.get(f"/results/{poll['id']}.html")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/html")
            assert "1 vote" in response.text
            return response.text

        text = visible_text(eventually(page))
        assert "Cats or dogs?" in text
        assert re.search(r"\bDogs\W+1\b", text) and re.search(r"\bCats\W+0\b", text), text

    def test_the_results_page_escapes_html_in_the_poll(
        self, polls_api: ContractClient, member: Member
    ) -> None:
        question = "<script>alert('x')</script> & <b>bold</b>?"
        poll = polls_api.create_poll(member, question=question, options=["<i>yes</i>", "no"])
        html = eventually(lambda: page_text(polls_api, poll["id"]))
        assert "<script>" not in html and "<i>yes</i>" not in html and "<b>bold</b>" not in html
        assert "&lt;script&gt;" in html and "&lt;i&gt;yes&lt;/i&gt;" in html

    def test_the_results_page_of_an_unknown_poll_is_not_found(
        self, polls_api: ContractClient
    ) -> None:
        response = polls_api.get("/results/999999999999.html")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


def vote(polls_api: ContractClient, member: Member, poll_id: int, option_id: int) -> Any:
    return polls_api.post(
        f"/api/polls/{poll_id}/votes", json={"option_id": option_id}, headers=member.headers
    )


def counts(polls_api: ContractClient, poll_id: int) -> dict[int, int]:
    results = polls_api.get(f"/api/polls/{poll_id}/results").json()
    return {option["id"]: option["votes"] for option in results["options"]}


def page_text(polls_api: ContractClient, poll_id: int) -> str:
    response = polls_api.get(f"/results/{poll_id}.html")
    assert response.status_code == 200
    return response.text


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._hidden += tag in ("style", "script", "head")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("style", "script", "head")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.pieces.append(data)


def visible_text(html: str) -> str:
    """What a reader of the page sees, whitespace collapsed."""
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.pieces).split())
