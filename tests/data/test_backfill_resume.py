"""Specification: a backfill SIGKILLed at random points, resumed each time, ends the same.

The real backfill process is killed as soon as its checkpoint passes a random row count (so kills
land mid-copy, at random chunk boundaries and between them), then started again, until it
finishes. The service then holds exactly the monolith's rows, and the checkpoints counted each
row once: no chunk was committed twice.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

from sqlalchemy import func, select

from strangler.datapath import verify
from strangler.datapath.contexts import Direction
from strangler.datapath.link import Link
from strangler.datapath.tables import checkpoints
from tests.data import processes
from tests.data.workload import assert_same_rows

KILLS = 5


def _copied(link: Link) -> int:
    with link.service.connect() as connection:
        if not connection.dialect.has_table(connection, checkpoints.name):
            return 0
        return int(connection.scalar(select(func.sum(checkpoints.c.rows_copied))) or 0)


def test_a_backfill_killed_again_and_again_resumes_to_the_same_rows_each_copied_once(
    forum_link: Link, tmp_path: Path
) -> None:
    link, urls = forum_link, processes.urls(forum_link)
    total = 0
    with link.monolith.connect() as connection:
        for table in ("threads", "posts", "users"):
            total += int(connection.scalar(select(func.count()).select_from(
                link.context.monolith_schema.tables[table]
            )) or 0)  # fmt: skip
    chance = random.Random(20261201)
    kills, exits = 0, None
    while exits is None:
        process = processes.backfill(urls, "forum", tmp_path, chunk_rows=7)
        at_least = _copied(link) + chance.randint(1, 60)
        while process.is_running and _copied(link) < at_least:
            time.sleep(0.002)
        if process.is_running and kills < KILLS:
            process.signal(signal.SIGKILL)
            process.popen.wait(timeout=10)
            kills += 1
        else:
            exits = processes.finished(process)
    assert kills == KILLS, f"only {kills} kills landed mid-copy"
    assert _copied(link) == total  # each row counted once: no chunk committed twice
    assert assert_same_rows(link) == total
    assert verify.verify(link, Direction.FORWARD, chunk_rows=40).is_equal
