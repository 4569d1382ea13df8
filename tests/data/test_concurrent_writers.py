"""Specification: writers never stop, yet nothing is lost, duplicated or stale.

Concurrent inserts, updates and deletes on the monolith run through a backfill (the real CLI
process) and through the sync (the real process, SIGKILLed twice and restarted); once the
writers stop and the sync catches up, both sides hold exactly the same rows and verify agrees.
"""

from __future__ import annotations

import signal
from pathlib import Path

from migrations.data import verify
from migrations.data.contexts import Direction
from migrations.data.link import Link
from tests.data import processes
from tests.data.workload import Writers, assert_same_rows


def test_writers_during_backfill_and_sync_lose_duplicate_and_stale_nothing(
    forum_link: Link, tmp_path: Path
) -> None:
    link, urls = forum_link, processes.urls(forum_link)
    writers = Writers(link.monolith).start()
    writers.wait_for(20)
    before = sum(writers.done.values())
    backfill = processes.cli(urls, "forum", tmp_path, "backfill", "forum", "--chunk-rows", "40")
    processes.finished(backfill)
    assert sum(writers.done.values()) > before, "the writers did not write during the backfill"
    for round_ in range(3):
        sync, _ = processes.sync(urls, "forum", tmp_path)
        sync.wait_healthy()
        writers.wait_for(40)
        if round_ < 2:
            sync.signal(signal.SIGKILL)
            sync.popen.wait(timeout=10)
    writers.stop()
    processes.caught_up(link)
    sync.stop()
    assert writers.done["delete"] and writers.done["edit"] and writers.done["rename"]
    assert assert_same_rows(link) > 500
    assert verify.verify(link, Direction.FORWARD, chunk_rows=50).is_equal
