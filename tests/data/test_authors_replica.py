"""Specification: the forum's `authors` replica is right at and after forum cutover, whether
the users context is extracted or not.

The `forum-authors` feed copies the monolith's `users (id, display_name)` into the forum's
`authors`. With users extracted first, a rename on the users service reaches the monolith's
`users` through the users reverse feed, and from there the forum; after the forum's cutover
the forum service shows it on posts. A newcomer's sign-up and first thread, made on two services,
both reach the monolith's tables. After users rolls back, monolith renames still arrive.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from sqlalchemy import text

from strangler.datapath import cutover
from strangler.datapath.link import Link
from tests.data.system import System, running_system


def _rename(system: System, client: httpx.Client, user: int, name: str) -> None:
    answer = client.patch(
        f"{system.proxy_url}/api/users/{user}",
        json={"display_name": name},
        headers={"Authorization": f"Bearer {system.token(user)}"},
    )
    assert answer.status_code == 200, answer.text


def _newcomer_posts(system: System, client: httpx.Client) -> str:
    """A user who signs up on the users service and at once starts a thread on the forum's."""
    signed_up = client.post(
        f"{system.proxy_url}/api/users",
        json={"username": "newcomer", "email": "new@example.org", "password": "long enough",
              "display_name": "Newcomer"},
    )  # fmt: skip
    assert signed_up.status_code == 201, signed_up.text
    token = system.token(signed_up.json()["id"])
    thread = client.post(
        f"{system.proxy_url}/api/threads",
        json={"title": "Hello from a newcomer", "body": "first!"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert thread.status_code == 201, thread.text
    return "Hello from a newcomer"


def _monolith_thread_author(forum: Link, title: str) -> str | None:
    """The monolith's own join: a reverse-fed thread and its reverse-fed author."""
    with forum.monolith.connect() as connection:
        return connection.scalar(
            text(
                "SELECT users.display_name FROM threads JOIN users ON users.id = threads.author_id"
                " WHERE threads.title = :title"
            ),
            {"title": title},
        )


def _eventually(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_authors_follow_renames_at_and_after_forum_cutover_with_users_extracted_or_not(
    backend: str, tmp_path: Path
) -> None:
    with (
        running_system(backend, tmp_path, ("users", "forum")) as system,
        httpx.Client(timeout=10) as client,
    ):
        users, forum = system.links["users"], system.links["forum"]
        with forum.monolith.connect() as connection:
            author, thread = connection.execute(
                text("SELECT author_id, id FROM threads LIMIT 1")
            ).one()

        def replica_name() -> str:
            with forum.service.connect() as connection:
                found = connection.scalar(
                    text("SELECT display_name FROM authors WHERE id = :id"), {"id": author}
                )
            return str(found)

        def shown_name() -> str:
            page = client.get(f"{system.proxy_url}/api/threads/{thread}").json()
            return str(page["author"]["display_name"])

        cutover.cutover(users, system.admin, max_freeze_seconds=20)
        _rename(system, client, author, "Renamed On Users")  # the users service owns it now
        _eventually(lambda: replica_name() == "Renamed On Users", "users -> monolith -> authors")
        cutover.cutover(forum, system.admin, max_freeze_seconds=20)
        assert shown_name() == "Renamed On Users"  # the forum service answers, from its replica
        _rename(system, client, author, "Renamed After Forum")
        _eventually(lambda: shown_name() == "Renamed After Forum", "a rename after forum cutover")
        newcomer = _newcomer_posts(system, client)  # on two services, reverse-fed separately
        _eventually(lambda: _monolith_thread_author(forum, newcomer) is not None, "both feeds")
        cutover.rollback(users, system.admin, max_freeze_seconds=20)
        _rename(system, client, author, "Renamed On Monolith")  # users owned by the monolith
        _eventually(lambda: shown_name() == "Renamed On Monolith", "a monolith rename")
