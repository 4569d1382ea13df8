"""Specification: the forum's `authors` replica is right at and after forum cutover, whether
the users context is extracted or not.

The `forum-authors` feed copies the monolith's `users (id, display_name)` into the forum's
`authors`. With users extracted first, a rename on the users service reaches the monolith's
`users` through the users reverse feed, and from there the forum; after the forum's cutover
the forum service shows it on posts. After users rolls back, monolith renames still arrive.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from sqlalchemy import text

from migrations.data import cutover
from tests.data.system import System, running_system


def _rename(system: System, client: httpx.Client, user: int, name: str) -> None:
    answer = client.patch(
        f"{system.proxy_url}/api/users/{user}",
        json={"display_name": name},
        headers={"Authorization": f"Bearer {system.token(user)}"},
    )
    assert answer.status_code == 200, answer.text


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
        cutover.rollback(users, system.admin, max_freeze_seconds=20)
        _rename(system, client, author, "Renamed On Monolith")  # users owned by the monolith
        _eventually(lambda: shown_name() == "Renamed On Monolith", "a monolith rename")
