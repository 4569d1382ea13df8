"""Specification: a SQLite monolith and a PostgreSQL service (and back) move data exactly.

No statement spans the two databases; rows travel typed, and verify's checksums agree across
the two kinds of database whenever the rows do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from strangler.datapath import apply, backfill, capture, schemas, verify
from strangler.datapath.contexts import Direction, Owner
from strangler.datapath.link import Link
from tests.data.conftest import seeded
from tests.data.workload import Writers, assert_same_rows
from tests.support.databases import fresh_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def cross_link(tmp_path: Path) -> Iterator[Link]:
    with (
        fresh_database("sqlite", tmp_path, "monolith") as monolith,
        fresh_database("postgres", tmp_path, "forum") as service,
    ):
        schemas.upgrade("forum", service)
        with Link.open("forum", seeded(monolith), service) as link:
            yield link


def test_a_sqlite_monolith_backfills_and_syncs_into_a_postgres_service(cross_link: Link) -> None:
    link = cross_link
    writers = Writers(link.monolith, count=2).start()
    writers.wait_for(10)
    backfill.backfill(link, chunk_rows=60)
    writers.wait_for(30)
    writers.stop()
    apply.drain(link, link.context.directions(Owner.MONOLITH))
    assert assert_same_rows(link) > 500
    assert verify.verify(link, Direction.FORWARD, chunk_rows=64).is_equal


def test_the_reverse_feed_carries_postgres_writes_back_into_sqlite(cross_link: Link) -> None:
    link = cross_link
    backfill.backfill(link)
    capture.start(link, Direction.REVERSE)
    with link.service.begin() as connection:
        connection.execute(text("UPDATE posts SET body = 'from the service' WHERE id = 5"))
        connection.execute(
            text(
                "INSERT INTO posts (thread_id, body, author_id, created_at)"
                " SELECT 1, 'new on the service', 2, now() FROM generate_series(1, 3)"
            )
        )
        connection.execute(text("DELETE FROM posts WHERE id = 6"))
    apply.drain(link, [(link.context.main, Direction.REVERSE)])
    assert assert_same_rows(link, Direction.REVERSE) > 500
    assert verify.verify(link, Direction.REVERSE, chunk_rows=64).is_equal
