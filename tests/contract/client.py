"""What a contract test drives: an httpx client bound to one base URL, and the people using it.

Every response a `ContractClient` receives is checked against `docs/openapi.yaml` before the test
sees it (see `conformance`). The helpers create preconditions only through the public contract,
so the same test works whichever process serves which context.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from tests.contract.conformance import conformance

PASSWORD = "correct horse battery staple"
Result = TypeVar("Result")


def unique_username(prefix: str = "u") -> str:
    """A username no other test (on a shared server) will pick: 3..32 of [a-z0-9_]."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class Member:
    """A signed-up, signed-in user: what a test needs to act as somebody."""

    id: int
    username: str
    email: str
    password: str
    display_name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header that acts as this member."""
        return {"Authorization": f"Bearer {self.token}"}


class ContractClient(httpx.Client):
    """An httpx client on one implementation's base URL that checks every response's conformance.

    Pass `conforms=False` for the rare request whose response is checked by hand instead.
    """

    def __init__(self, base_url: str, *, conforms: bool = True) -> None:
        hooks = {"response": [conformance().check]} if conforms else {}
        super().__init__(base_url=base_url, timeout=30.0, event_hooks=hooks)

    # Users (call these on the client of the users context).

    def sign_up(self, display_name: str | None = None, **fields: Any) -> dict[str, Any]:
        """Create a fresh user through the contract; returns the sign-up request's body."""
        username = fields.pop("username", None) or unique_username()
        document = {
            "username": username,
            "email": fields.pop("email", None) or f"{username}@example.org",
            "password": fields.pop("password", PASSWORD),
            "display_name": display_name or f"Member {username[-6:]}",
            **fields,
        }
        response = self.post("/api/users", json=document)
        assert response.status_code == 201, response.text
        return {**document, "id": response.json()["id"]}

    def sign_in(self, username: str, password: str = PASSWORD) -> str:
        response = self.post("/api/sessions", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def sign_up_and_sign_in(self, display_name: str | None = None) -> Member:
        """A new member with a valid token: the precondition of every write test."""
        user = self.sign_up(display_name)
        token = self.sign_in(user["username"], user["password"])
        return Member(
            user["id"],
            user["username"],
            user["email"],
            user["password"],
            user["display_name"],
            token,
        )

    # Forum and polls (call these on the client of that context).

    def start_thread(
        self, member: Member, title: str = "A thread", body: str = "Its body"
    ) -> dict[str, Any]:
        response = self.post(
            "/api/threads", json={"title": title, "body": body}, headers=member.headers
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def add_post(self, member: Member, thread_id: int, body: str = "A reply") -> dict[str, Any]:
        response = self.post(
            f"/api/threads/{thread_id}/posts", json={"body": body}, headers=member.headers
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def create_poll(
        self, member: Member, question: str = "Tea or coffee?", options: list[str] | None = None
    ) -> dict[str, Any]:
        document = {"question": question, "options": options or ["Tea", "Coffee"]}
        response = self.post("/api/polls", json=document, headers=member.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def newest_thread_id(self) -> int | None:
        """The id of the newest thread, to prove a rejected write created none."""
        items = self.get("/api/threads", params={"limit": 1}).json()["items"]
        return int(items[0]["id"]) if items else None


def walk(client: ContractClient, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, following `next_cursor` page by page until it is null."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert len(page["items"]) == limit, "only the last page may be short"


def eventually(check: Callable[[], Result], attempts: int = 60, pause: float = 0.1) -> Result:
    """Retry `check` until it stops raising AssertionError, for contract promises that may lag
    (search within 2 s of creation, results within 2 s of a vote); re-raise the last failure."""
    for _ in range(attempts - 1):
        try:
            return check()
        except AssertionError:
            time.sleep(pause)
    return check()
