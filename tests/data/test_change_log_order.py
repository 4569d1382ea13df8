"""Specification: the sync reads the change log in commit order, so no commit is skipped.

On PostgreSQL a transaction that took an early `seq` may commit after one with a later `seq`;
a reader that only remembered the last `seq` would never apply it. Both backends must apply it.
"""

from __future__ import annotations

from sqlalchemy import text

from strangler.datapath import apply, backfill, positions
from strangler.datapath.contexts import Direction, Owner
from strangler.datapath.link import Link
from tests.data.workload import assert_same_rows


def _title(link: Link, thread: int) -> str:
    with link.service.connect() as connection:
        return str(
            connection.scalar(text("SELECT title FROM threads WHERE id = :id"), {"id": thread})
        )


def test_a_change_that_commits_after_a_later_one_is_still_applied(
    forum_link: Link, backend: str
) -> None:
    link = forum_link
    backfill.backfill(link)
    feeds = link.context.directions(Owner.MONOLITH)
    slow = link.monolith.connect()
    early = slow.begin()
    if backend == "postgres":  # SQLite lets one writer at a time: there the order is commit order
        slow.execute(text("UPDATE threads SET title = 'took its seq first' WHERE id = 1"))
    with link.monolith.begin() as connection:
        connection.execute(text("UPDATE threads SET title = 'committed first' WHERE id = 2"))
    apply.drain(link, feeds)
    assert _title(link, 2) == "committed first"
    if backend != "postgres":
        slow.execute(text("UPDATE threads SET title = 'took its seq first' WHERE id = 1"))
    early.commit()
    slow.close()
    apply.drain(link, feeds)
    assert _title(link, 1) == "took its seq first"
    assert_same_rows(link)


def test_an_inactive_feed_applies_nothing_until_it_is_active_again(forum_link: Link) -> None:
    link = forum_link
    backfill.backfill(link)
    key = link.context.main.position_key(Direction.FORWARD)
    positions.change(link.service, key, is_active=False)
    with link.monolith.begin() as connection:
        connection.execute(text("UPDATE threads SET title = 'waits' WHERE id = 3"))
    assert not apply.apply_batch(link, link.context.main, Direction.FORWARD, 100).is_applying
    assert _title(link, 3) != "waits"
    positions.change(link.service, key, is_active=True)
    apply.drain(link, link.context.directions(Owner.MONOLITH))
    assert _title(link, 3) == "waits"


def test_a_window_larger_than_a_batch_is_applied_page_by_page_without_a_gap(
    forum_link: Link, backend: str
) -> None:
    link = forum_link
    backfill.backfill(link)
    feeds = link.context.directions(Owner.MONOLITH)
    slow = link.monolith.connect()
    late = slow.begin()
    if backend == "postgres":  # an early seq that commits while the window is being paged
        slow.execute(text("UPDATE threads SET title = 'late' WHERE id = 40"))
    for thread in range(1, 30):
        with link.monolith.begin() as connection:
            connection.execute(
                text("UPDATE threads SET title = :t WHERE id = :id"),
                {"t": f"paged {thread}", "id": thread},
            )
    first = apply.apply_batch(link, link.context.main, Direction.FORWARD, 4)
    assert first.entries == 4 and not first.is_closed  # a page, not the whole window
    if backend != "postgres":
        slow.execute(text("UPDATE threads SET title = 'late' WHERE id = 40"))
    late.commit()
    slow.close()
    apply.drain(link, feeds, limit=4)
    assert _title(link, 29) == "paged 29" and _title(link, 40) == "late"
    assert_same_rows(link)


def test_a_window_whose_last_page_is_full_is_closed_and_later_commits_are_applied(
    forum_link: Link,
) -> None:
    """A window of exactly one batch: the next read finds it empty, and must still close it
    (on PostgreSQL a window left open would hide every later commit for ever)."""
    link = forum_link
    backfill.backfill(link)
    main = link.context.main
    apply.drain(link, link.context.directions(Owner.MONOLITH))
    with link.monolith.begin() as connection:
        for thread in (4, 5):
            connection.execute(
                text("UPDATE threads SET title = 'a full page' WHERE id = :id"), {"id": thread}
            )
    assert apply.apply_batch(link, main, Direction.FORWARD, 2).entries == 2
    apply.apply_batch(link, main, Direction.FORWARD, 2)  # the window's end: nothing left in it
    with link.monolith.begin() as connection:
        connection.execute(text("UPDATE threads SET title = 'after the window' WHERE id = 6"))
    for _ in range(3):
        apply.apply_batch(link, main, Direction.FORWARD, 2)
    assert _title(link, 6) == "after the window"
    assert_same_rows(link)
