"""Specification: verify finds a corrupted replica's rows by key range; repair fixes only those.

A changed column, a missing row and an extra row on the service side are each reported in the
chunk (key range) that holds them, with their keys; repair re-copies only those ranges, and the
sync keeps working around it.
"""

from __future__ import annotations

from sqlalchemy import text

from strangler.datapath import apply, backfill, verify
from strangler.datapath.contexts import Direction, Owner
from strangler.datapath.link import Link
from tests.data.workload import assert_same_rows

CHUNK = 50


def _corrupt(link: Link) -> None:
    with link.service.begin() as connection:
        connection.execute(text("UPDATE posts SET body = 'tampered' WHERE id = 123"))
        connection.execute(text("DELETE FROM posts WHERE id = 301"))
        connection.execute(
            text(
                "INSERT INTO posts (id, thread_id, body, author_id, created_at)"
                " VALUES (100000, 1, 'stray', 1, '2025-06-01 12:00:00')"
            )
        )
        connection.execute(text("UPDATE threads SET post_count = post_count + 1 WHERE id = 9"))


def test_verify_names_the_ranges_and_keys_of_corrupted_rows_and_repair_fixes_only_those(
    forum_link: Link,
) -> None:
    link = forum_link
    backfill.backfill(link, chunk_rows=100)
    assert verify.verify(link, Direction.FORWARD, CHUNK).is_equal
    _corrupt(link)
    report = verify.verify(link, Direction.FORWARD, CHUNK)
    found = {
        (difference.table, key) for difference in report.differences for (key,) in difference.keys
    }
    assert found == {("posts", 123), ("posts", 301), ("posts", 100000), ("threads", 9)}
    for difference in report.differences:
        for key in difference.keys:
            assert difference.after is None or difference.after < key
            assert difference.upto is None or key <= difference.upto
    assert len(report.differences) == 4  # four chunks, each named by its key range
    repaired = verify.repair(link, report)
    assert repaired.ranges == 4 and repaired.rows_deleted == 1
    assert repaired.rows_copied <= 4 * CHUNK  # only those ranges, not the tables
    assert verify.verify(link, Direction.FORWARD, CHUNK).is_equal
    assert_same_rows(link)


def test_the_sync_and_repair_together_leave_the_replica_current(forum_link: Link) -> None:
    link = forum_link
    backfill.backfill(link, chunk_rows=100)
    _corrupt(link)
    with link.monolith.begin() as connection:
        connection.execute(text("UPDATE posts SET body = 'newer' WHERE id = 123"))
    report = verify.verify(link, Direction.FORWARD, CHUNK)
    verify.repair(link, report)
    apply.drain(link, link.context.directions(Owner.MONOLITH))
    assert_same_rows(link)
