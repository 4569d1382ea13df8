"""Specification of change capture: one log entry per changed row, per feed, same on both
backends; triggers come and go per feed; a capture left behind for a replaced target restarts.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, text

from strangler.datapath import capture, positions
from strangler.datapath.contexts import Direction
from strangler.datapath.link import Link
from strangler.datapath.tables import change_log


def _entries(link: Link) -> list[tuple[str, str, str, str]]:
    with link.monolith.connect() as connection:
        found = connection.execute(
            select(change_log.c.feed, change_log.c.table_name, change_log.c.row_key,
                   change_log.c.operation).order_by(change_log.c.seq)
        )  # fmt: skip
        return [tuple(row) for row in found]  # type: ignore[misc]


def test_every_write_of_a_captured_table_is_logged_once_per_feed_that_copies_it(
    forum_link: Link,
) -> None:
    link = forum_link
    assert capture.start(link) == ["forum", "forum-authors"]
    assert capture.start(link) == []  # already capturing: nothing to do
    with link.monolith.begin() as connection:
        connection.execute(text("UPDATE threads SET title = 'x' WHERE id IN (1, 2)"))
        connection.execute(text("DELETE FROM posts WHERE id = 3"))
        connection.execute(text("UPDATE users SET bio = 'not an author field' WHERE id = 4"))
        connection.execute(text("UPDATE users SET display_name = 'Five' WHERE id = 5"))
    assert _entries(link) == [
        ("forum", "threads", "[1]", "U"),  # keys as JSON arrays, whatever their columns
        ("forum", "threads", "[2]", "U"),
        ("forum", "posts", "[3]", "D"),
        ("forum-authors", "users", "[5]", "U"),
    ]
    capture.stop(link)
    with link.monolith.begin() as connection:
        connection.execute(text("UPDATE threads SET title = 'y' WHERE id = 1"))
    assert _entries(link) == []


def test_a_capture_left_behind_for_a_replaced_service_database_starts_afresh(
    forum_link: Link, databases: Callable[[str], str]
) -> None:
    capture.start(forum_link)
    with forum_link.monolith.begin() as connection:
        connection.execute(text("UPDATE threads SET title = 'old news' WHERE id = 1"))
    with Link.open(
        "forum", forum_link.monolith.url.render_as_string(False), databases("forum")
    ) as link:
        assert capture.start(link) == ["forum", "forum-authors"]
        assert positions.current(link.service, "forum:forward") is not None
        assert capture.is_installed(link.monolith, link.context.main, Direction.FORWARD)
    assert _entries(forum_link) == []  # the old target's pending entries meant nothing now
