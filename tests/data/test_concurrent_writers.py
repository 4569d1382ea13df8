"""Specification: writers never stop, yet nothing is lost, duplicated or stale.

Concurrent inserts, updates and deletes on the monolith run through a backfill (the real CLI
process) and through the sync (the real process, SIGKILLed and restarted); once the
writers stop and the sync catches up, both sides hold exactly the same rows and verify agrees.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from strangler.datapath import verify
from strangler.datapath.contexts import Direction
from strangler.datapath.link import Link
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
    killed, _ = processes.sync(urls, "forum", tmp_path)
    killed.wait_healthy()
    writers.wait_for(30)
    killed.signal(signal.SIGKILL)
    killed.popen.wait(timeout=10)
    writers.wait_for(10)
    sync, port = processes.sync(urls, "forum", tmp_path)
    sync.wait_healthy()
    writers.wait_for(30)
    writers.stop()
    processes.caught_up(link)
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    sync.stop()
    assert 'data_sync_applied_entries_total{direction="forward",feed="forum"}' in metrics
    assert 'data_sync_entry_delay_seconds_count{direction="forward",feed="forum"}' in metrics
    assert writers.done["delete"] and writers.done["edit"] and writers.done["rename"]
    assert assert_same_rows(link) > 500
    assert verify.verify(link, Direction.FORWARD, chunk_rows=50).is_equal
