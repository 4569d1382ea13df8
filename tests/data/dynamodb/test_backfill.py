"""Specification: the backfill copies every row of the monolith into items, once, resumably.

A backfill copies each table up to its bound in chunks, each one transaction with its
checkpoint; verify then finds the items equal to the rows. The real backfill process, SIGKILLed
again and again at random points, resumes each time after its last committed chunk and ends
with every row copied once: the checkpoints count each row once and no chunk was committed
twice.
"""

from __future__ import annotations

import random
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from strangler.runtime.launch import workspace_environment
from strangler.runtime.processes import ManagedProcess, start
from strangler.serverless.data import backfill, forward, verify
from strangler.serverless.data.link import ItemsLink
from strangler.workspace import find_workspace
from tests.data.dynamodb.conftest import Emulator

KILLS = 3
CHUNK = re.compile(r"^chunk (\w+) #(\d+) ")


def _rows(link: ItemsLink) -> dict[str, int]:
    with link.monolith.connect() as connection:
        return {
            name: int(connection.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in link.tables.items()
        }


def _copied(link: ItemsLink) -> int:
    return sum(found.rows_copied for found in backfill.checkpoints_of(link))


def test_a_backfill_copies_every_row_and_verify_finds_the_items_equal(
    items_link: ItemsLink,
) -> None:
    link = items_link
    forward.start(link)
    rows = _rows(link)
    assert backfill.backfill(link, chunk_rows=40) == sum(rows.values())
    assert backfill.is_complete(link)
    assert backfill.backfill(link) == 0  # complete: a second run copies nothing
    report = verify.verify(link, range_rows=25)
    assert report.is_equal, [difference.describe() for difference in report.differences]
    assert {name: (count.rows, count.items) for name, count in report.counts.items()} == {
        name: (count, count) for name, count in rows.items()
    }
    assert report.ranges >= sum(count // 25 + 1 for count in rows.values())
    assert forward.apply_batch(link).is_applying  # the forward apply starts now


def test_a_backfill_refuses_to_begin_before_the_feed_is_started(items_link: ItemsLink) -> None:
    with pytest.raises(forward.NotStarted):
        backfill.backfill(items_link)
    with pytest.raises(ValueError, match="one transaction"):
        backfill.backfill(items_link, chunk_rows=100)


def _process(moto_server: Emulator, link: ItemsLink, folder: Path, run: int) -> ManagedProcess:
    environment = {
        **moto_server.environment,
        **workspace_environment(find_workspace()),
        "MONOLITH_DATABASE_URL": link.monolith.url.render_as_string(hide_password=False),
        "POLLS_TABLE": link.table_name,
    }
    argv = [sys.executable, "-m", "strangler.serverless.data.backfill", "polls",
            "--chunk-rows", "8"]  # fmt: skip
    return start("backfill", argv, environment, log_path=folder / f"backfill-{run}.log",
                 cwd=folder)  # fmt: skip


def test_a_backfill_process_killed_again_and_again_resumes_and_commits_each_chunk_once(
    items_link: ItemsLink, moto_server: Emulator, tmp_path: Path
) -> None:
    link = items_link
    forward.start(link)
    total = sum(_rows(link).values())
    chance = random.Random(20261206)
    kills, runs, exit_code = 0, 0, None
    while exit_code is None:
        process = _process(moto_server, link, tmp_path, runs)
        runs += 1
        at_least = _copied(link) + chance.randint(1, 50)
        while process.is_running and _copied(link) < at_least:
            time.sleep(0.01)
        if process.is_running and kills < KILLS:
            process.signal(signal.SIGKILL)
            process.popen.wait(timeout=10)
            kills += 1
        else:
            exit_code = process.popen.wait(timeout=60)
        process.stop()
    assert exit_code == 0, process.log_tail()
    assert kills == KILLS, f"only {kills} kills landed mid-copy"
    printed = [
        CHUNK.match(line).groups()  # type: ignore[union-attr]
        for run in range(runs)
        for line in (tmp_path / f"backfill-{run}.log").read_text().splitlines()
        if CHUNK.match(line)
    ]
    assert len(printed) == len(set(printed))  # no chunk number was committed twice
    checkpoints = backfill.checkpoints_of(link)
    assert _copied(link) == total  # each row counted once
    # Every chunk committed is numbered once; a run killed between its commit and its line
    # printed nothing for that chunk.
    assert len(printed) <= sum(found.chunks for found in checkpoints)
    assert all(found.is_complete for found in checkpoints) and backfill.is_complete(link)
    report = verify.verify(link, range_rows=50)
    assert report.is_equal, [difference.describe() for difference in report.differences]


def test_a_fresh_backfill_removes_the_items_an_earlier_extraction_left(
    items_link: ItemsLink,
) -> None:
    link = items_link
    forward.start(link)
    backfill.backfill(link)
    left_over = {"id": 9999, "poll_id": 1, "position": 77, "text": "from a rolled-back move"}
    link.dynamodb.put_item(
        TableName=link.table_name, Item=link.mapping.item_of_row("poll_options", left_over)
    )
    forward.stop(link)  # a rollback of the extraction forgets the backfill
    forward.start(link)
    backfill.backfill(link)
    assert verify.verify(link).is_equal
