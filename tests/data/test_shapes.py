"""Specification: every promise of the data path holds for tables of every shape.

The `library` workspace (tests/data/shapes) moves a UUID-keyed table, a text-keyed one, an
integer-keyed one that references another table and itself, an association table with a
composite key and no surrogate, and a composite key of two integers, with a renamed column,
columns only one side has, timestamps with and without a time zone, text from all over
Unicode and binary values; its tables are listed children first and copied parents first.
Each promise is checked on SQLite and on PostgreSQL, both sides of one kind: a backfill killed
again and again under live writes (which land anywhere in the key space) ends equal; verify
names the differing keys of each shape and repair fixes only those; the sync keeps them
current and reports its lag; a cutover and a rollback under live writes lose nothing.
"""

from __future__ import annotations

import random
import signal
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import cast

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text

from strangler.datapath import apply, backfill, capture, cutover, status, verify
from strangler.datapath.contexts import Direction, Owner
from strangler.datapath.link import Link
from strangler.datapath.tables import checkpoints
from strangler.workspace import Workspace
from strangler_proxy.client import ProxyAdmin
from tests.data import processes
from tests.data.conftest import library_databases
from tests.data.fake_proxy import FakeProxy
from tests.data.shapes_load import ShapeWriters, seed
from tests.data.workload import assert_same_rows

TABLES = ("document_tags", "revisions", "documents", "tags", "accounts")


def _owner_keys(link: Link, owner: Owner) -> dict[str, set[tuple[object, ...]]]:
    """Every key of every table on the side that owns the data, by monolith table name."""
    direction = Direction.FORWARD if owner is Owner.MONOLITH else Direction.REVERSE
    found = {}
    for table in link.context.main.tables:
        source = link.context.source_table(table, direction)
        with link.source(direction).connect() as connection:
            query = select(*(source.c[name] for name in table.source_key(direction)))
            found[table.monolith] = {tuple(row) for row in connection.execute(query)}
    return found


def _assert_nothing_lost(link: Link, writers: ShapeWriters, owner: Owner) -> int:
    """Every insert the writers saw acknowledged (and never deleted) is in the owner's tables."""
    present = _owner_keys(link, owner)
    checked = 0
    for table in TABLES:
        expected = writers.ledger.expected(table)
        lost = expected - present[table]
        assert not lost, f"{table}: acknowledged writes lost: {sorted(map(str, lost))[:5]}"
        checked += len(expected)
    return checked


def test_the_copy_order_comes_from_the_foreign_keys_of_both_sides(library_link: Link) -> None:
    main = library_link.context.main
    order = [table.monolith for table in main.tables]
    assert order.index("accounts") < order.index("documents") < order.index("revisions")
    assert order.index("tags") < order.index("document_tags")
    assert order.index("documents") < order.index("document_tags")
    documents = main.table("documents", Direction.FORWARD)
    assert documents.deferred == ("parent_id",)  # it references itself: written afterwards
    assert documents.target_columns(Direction.FORWARD)[3] == "heading"
    assert main.table("document_tags", Direction.FORWARD).key == ("document_id", "tag_slug")


def test_every_shape_is_backfilled_and_verifies_equal_with_small_chunks(
    library_link: Link,
) -> None:
    link = library_link
    seed(link, operations=400)
    report = backfill.backfill(link, chunk_rows=7)
    assert report.rows_this_run > 100
    assert verify.verify(link, Direction.FORWARD, chunk_rows=5).is_equal
    assert assert_same_rows(link) == report.rows_this_run


def test_writes_anywhere_in_the_key_space_during_a_killed_backfill_all_arrive(
    library_link: Link, shapes: Workspace, tmp_path: Path
) -> None:
    link, urls = library_link, processes.urls(library_link)
    seed(link, operations=1500)
    writers = ShapeWriters(link, count=2).start()
    chance, kills, exits = random.Random(20261207), 0, None
    while exits is None:
        process = processes.backfill(urls, "library", tmp_path, chunk_rows=3, workspace=shapes)
        before = _copied(link)
        while process.is_running and _copied(link) <= before:  # until it copies again
            time.sleep(0.005)
        time.sleep(chance.uniform(0, 0.05))
        if process.is_running and kills < 4:
            process.signal(signal.SIGKILL)
            process.popen.wait(timeout=10)
            kills += 1
        else:
            exits = processes.finished(process)
    writers.wait_for(30)
    writers.stop()
    apply.drain(link, link.context.directions(Owner.MONOLITH))
    assert kills == 4, f"only {kills} kills landed mid-copy"
    assert verify.verify(link, Direction.FORWARD, chunk_rows=11).is_equal
    assert assert_same_rows(link) > 0
    assert _assert_nothing_lost(link, writers, Owner.MONOLITH) > 0


def _copied(link: Link) -> int:
    with link.service.connect() as connection:
        if not connection.dialect.has_table(connection, checkpoints.name):
            return 0
        return int(connection.scalar(select(func.sum(checkpoints.c.rows_copied))) or 0)


def test_verify_names_the_differing_keys_of_every_shape_and_repair_fixes_only_them(
    library_link: Link,
) -> None:
    link = library_link
    seed(link, operations=300)
    backfill.backfill(link)
    with link.service.begin() as connection:
        account = connection.scalar(text("SELECT id FROM accounts ORDER BY id LIMIT 1"))
        tag = connection.scalar(text("SELECT slug FROM tags ORDER BY slug LIMIT 1"))
        pair = connection.execute(text("SELECT document_id, tag_slug FROM document_tags")).first()
        revision = connection.execute(text("SELECT document_id, number FROM revisions")).first()
        document = connection.scalar(text("SELECT max(id) FROM documents"))
        connection.execute(text("UPDATE accounts SET display_name = 'x' WHERE id = :k"),
                           {"k": account})  # fmt: skip
        connection.execute(text("UPDATE tags SET label = 'l\u00e9' WHERE slug = :k"), {"k": tag})
        connection.execute(
            text("DELETE FROM document_tags WHERE document_id = :d AND tag_slug = :t"),
            {"d": pair[0], "t": pair[1]},
        )
        connection.execute(
            text("UPDATE revisions SET made_at = :at WHERE document_id = :d AND number = :n"),
            {"at": "2001-02-03 04:05:06", "d": revision[0], "n": revision[1]},
        )
        connection.execute(text("UPDATE documents SET heading = 'renamed' WHERE id = :k"),
                           {"k": document})  # fmt: skip
    report = verify.verify(link, Direction.FORWARD, chunk_rows=20)
    found = {(d.table, key) for d in report.differences for key in d.keys}
    as_uuid = account if not isinstance(account, str) else uuid.UUID(account)
    assert found == {
        ("accounts", (as_uuid,)),
        ("tags", (tag,)),
        ("document_tags", (pair[0], pair[1])),
        ("revisions", (revision[0], revision[1])),
        ("documents", (document,)),
    }
    repaired = verify.repair(link, report)
    assert repaired.ranges == 5 and repaired.rows_deleted == 0
    assert verify.verify(link, Direction.FORWARD, chunk_rows=20).is_equal
    assert_same_rows(link)


def test_the_sync_keeps_every_shape_current_and_exports_its_lag(
    library_link: Link, shapes: Workspace, tmp_path: Path
) -> None:
    link = library_link
    seed(link, operations=200)
    backfill.backfill(link)
    process, port = processes.sync(processes.urls(link), "library", tmp_path, shapes)
    try:
        writers = ShapeWriters(link, count=3).start()
        writers.wait_for(150)
        writers.stop()
        processes.caught_up(link)
        exported = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        process.stop()
    lags = {
        sample.labels["feed"]: sample.value
        for family in text_string_to_metric_families(exported)
        if family.name == "data_sync_lag_entries"
        for sample in family.samples
    }
    applied = sum(
        sample.value
        for family in text_string_to_metric_families(exported)
        if family.name == "data_sync_applied_entries"
        for sample in family.samples
        if sample.name.endswith("_total")
    )
    assert "library" in lags and applied >= 150
    assert verify.verify(link, Direction.FORWARD).is_equal
    assert_same_rows(link)
    _assert_nothing_lost(link, writers, Owner.MONOLITH)


def test_a_cutover_and_a_rollback_under_writes_lose_nothing_of_any_shape(
    library_link: Link,
) -> None:
    link = library_link
    proxy = FakeProxy("library")
    admin = cast(ProxyAdmin, proxy)
    try:
        seed(link, operations=200)
        backfill.backfill(link)
        writers = ShapeWriters(link, gate=proxy, count=3).start()
        writers.wait_for(60)
        to_service = cutover.cutover(link, admin, max_freeze_seconds=20)
        writers.wait_for(100)  # now on the service's tables, in its column names
        back = cutover.rollback(link, admin, max_freeze_seconds=20)
        writers.wait_for(60)
        writers.stop()
        apply.drain(link, link.context.directions(Owner.MONOLITH))
    finally:
        proxy.close()
    assert to_service.owner is Owner.SERVICE and back.owner is Owner.MONOLITH
    assert to_service.leaked_entries == 0 and back.leaked_entries == 0
    assert status.describe(link).state.owner is Owner.MONOLITH
    assert writers.done["document"] and writers.done["tag_document"] and writers.done["revise"]
    assert verify.verify(link, Direction.FORWARD).is_equal
    assert_same_rows(link)
    assert _assert_nothing_lost(link, writers, Owner.MONOLITH) > 0


@pytest.mark.postgres
@pytest.mark.parametrize(("monolith_backend", "service_backend"),
                         [("sqlite", "postgres"), ("postgres", "sqlite")])  # fmt: skip
def test_every_shape_moves_between_sqlite_and_postgresql_and_back_under_writes(
    monolith_backend: str, service_backend: str, shapes: Workspace, tmp_path: Path
) -> None:
    """UUIDs (hex text on SQLite), timestamps (with a zone on PostgreSQL only), booleans,
    binary and text keys under an ICU collation all cross, and verify agrees across kinds."""
    proxy = FakeProxy("library")
    with ExitStack() as stack:
        monolith, service = library_databases(
            stack, monolith_backend, tmp_path, shapes, service_backend
        )
        link = stack.enter_context(Link.open("library", monolith, service, workspace=shapes))
        stack.callback(proxy.close)
        seed(link, operations=200)
        writers = ShapeWriters(link, gate=proxy, count=2).start()
        backfill.backfill(link, chunk_rows=13)
        writers.wait_for(40)
        cutover.cutover(link, cast(ProxyAdmin, proxy), max_freeze_seconds=20)
        writers.wait_for(60)
        cutover.rollback(link, cast(ProxyAdmin, proxy), max_freeze_seconds=20)
        writers.wait_for(30)
        writers.stop()
        apply.drain(link, link.context.directions(Owner.MONOLITH))
        assert verify.verify(link, Direction.FORWARD, chunk_rows=17).is_equal
        assert_same_rows(link)
        assert _assert_nothing_lost(link, writers, Owner.MONOLITH) > 0


def test_large_rows_travel_in_chunks_bounded_by_bytes(library_link: Link) -> None:
    link = library_link
    big = "\u00e9\U0001f600" * 400_000  # about 2.4 MB of UTF-8 per row
    with link.monolith.begin() as connection:
        for number in range(6):
            connection.execute(
                text(
                    "INSERT INTO documents (title, body, attachment, edited_at, is_public)"
                    " VALUES (:title, :body, :attachment, '2026-01-02 03:04:05', true)"
                ),
                {
                    "title": f"big {number}",
                    "body": big + str(number),
                    "attachment": bytes(range(256)) * 4096,
                },
            )
    capture.start(link)
    report = backfill.backfill(link, chunk_rows=5000, max_chunk_bytes=3_000_000)
    with link.service.connect() as connection:
        chunks = connection.scalar(select(func.count()).select_from(checkpoints))
    assert report.rows_this_run == 6 and chunks
    checked = verify.verify(link, Direction.FORWARD, chunk_rows=5000, max_chunk_bytes=3_000_000)
    assert checked.is_equal and checked.chunks >= 3  # two rows at most per chunk
    with link.service.begin() as connection:
        connection.execute(text("UPDATE documents SET body = body || 'x' WHERE heading = 'big 4'"))
    differing = verify.verify(link, Direction.FORWARD, max_chunk_bytes=3_000_000)
    assert [len(difference.keys) for difference in differing.differences] == [1]
    verify.repair(link, differing)
    assert verify.verify(link, Direction.FORWARD).is_equal
    assert_same_rows(link)
