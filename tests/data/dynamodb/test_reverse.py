"""Specification: the reverse feed keeps the monolith's tables equal to the items, from the stream.

Items are written as the functions write them (`ITEMS.item_of_row`), on a moto server; the
feed starts after whatever the stream held before it, applies each batch and its checkpoint in
one SQL transaction, converges however often a record is applied, survives being SIGKILLed
while a writer keeps writing, and leaves its checkpoint where it was when the monolith refuses
a batch.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from extracted.polls.serverless.table import COLUMNS, ITEMS, RESULTS_SK, partition, sequence_key
from strangler.runtime.processes import ManagedProcess, start
from strangler.serverless.data import reverse
from strangler.serverless.data.link import Item, ItemsLink, Row
from tests.data.dynamodb.conftest import Emulator

Rows = dict[str, dict[int, Row]]
CREATED = datetime(2026, 1, 2, 3, 4, 5, 678901)
NEW_POLL = 1000  # ids above the seeded ones (6 polls, 30 options, 150 votes)


def put(link: ItemsLink, table: str, row: Row) -> None:
    link.dynamodb.put_item(TableName=link.table_name, Item=ITEMS.item_of_row(table, row))


def remove(link: ItemsLink, table: str, row: Row) -> None:
    key = link.key_of(ITEMS.item_of_row(table, row))
    link.dynamodb.delete_item(TableName=link.table_name, Key=key)


def monolith_rows(link: ItemsLink) -> Rows:
    found: Rows = {}
    with link.monolith.connect() as connection:
        for name, columns in COLUMNS.items():
            table = link.tables[name]
            query = select(*(table.c[column] for column in columns))
            found[name] = {row["id"]: dict(row) for row in connection.execute(query).mappings()}
    return found


def item_rows(link: ItemsLink) -> Rows:
    """Every row the items hold (a full Scan), by table and id."""
    found: Rows = {name: {} for name in COLUMNS}
    options: dict[str, Any] = {"TableName": link.table_name, "ConsistentRead": True}
    while True:
        page = link.dynamodb.scan(**options)
        for item in page["Items"]:
            held = ITEMS.row_of_item(item)
            if held is not None:
                found[held[0]][held[1]["id"]] = held[1]
        if "LastEvaluatedKey" not in page:
            return found
        options["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def copy_to_items(link: ItemsLink) -> None:
    """What the forward feed did before the cutover: every row of the monolith as an item."""
    items: list[Item] = [
        ITEMS.item_of_row(name, row) for name, rows in monolith_rows(link).items()
        for row in rows.values()
    ]  # fmt: skip
    for first in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[first : first + 25]]
        link.dynamodb.batch_write_item(RequestItems={link.table_name: requests})


def new_poll(link: ItemsLink, poll_id: int, voters: range) -> None:
    """A poll as the functions create one: options, the poll, then votes."""
    for position in range(2):
        option = {"id": poll_id * 10 + position, "poll_id": poll_id, "position": position,
                  "text": f"option {position}"}  # fmt: skip
        put(link, "poll_options", option)
    poll = {"id": poll_id, "question": f"poll {poll_id}?", "author_id": 1, "created_at": CREATED}
    put(link, "polls", poll)
    for user in voters:
        put(link, "votes", vote(poll_id, user))


def vote(poll_id: int, user: int, position: int = 0) -> Row:
    return {"id": poll_id * 100 + user, "poll_id": poll_id, "option_id": poll_id * 10 + position,
            "user_id": user, "created_at": CREATED}  # fmt: skip


def rows_holding_none(link: ItemsLink) -> None:
    """Items the functions write that hold no SQL row: a poll's counts and a counter."""
    results = {"PK": {"S": partition(1)}, "SK": {"S": RESULTS_SK}, "poll_id": {"N": "1"},
               "total": {"N": "25"}, "version": {"N": "3"}}  # fmt: skip
    link.dynamodb.put_item(TableName=link.table_name, Item=results)
    link.dynamodb.update_item(
        TableName=link.table_name,
        Key=sequence_key("votes"),
        UpdateExpression="ADD #last :one",
        ExpressionAttributeNames={"#last": "last"},
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


def changes_of_the_functions(link: ItemsLink) -> None:
    new_poll(link, NEW_POLL, range(1, 6))
    rows_holding_none(link)
    seeded = item_rows(link)
    poll = dict(seeded["polls"][1], question="Renamed by the functions?")
    put(link, "polls", poll)
    remove(link, "votes", next(iter(seeded["votes"].values())))
    remove(link, "votes", vote(NEW_POLL, 5))
    option = dict(seeded["poll_options"][1])  # delete its votes first, as SQL must too
    for row in seeded["votes"].values():
        if row["option_id"] == option["id"]:
            remove(link, "votes", row)
    remove(link, "poll_options", option)


def shard_end(link: ItemsLink) -> str:
    """The last sequence number the stream holds now (moto keeps one shard)."""
    arn = reverse.stream_arn(link)
    [shard] = reverse.shards(link, arn)
    records, _ = reverse._read(link, arn, shard["ShardId"], None, 100_000)
    return str(records[-1]["dynamodb"]["SequenceNumber"])


# Logic: shards in lineage order -------------------------------------------------------------


def test_parents_come_before_their_children() -> None:
    listed = [
        {"ShardId": "grandchild", "ParentShardId": "child"},
        {"ShardId": "child", "ParentShardId": "root"},
        {"ShardId": "other", "ParentShardId": "trimmed-long-ago"},
        {"ShardId": "root"},
    ]
    ordered = [shard["ShardId"] for shard in reverse.lineage(listed)]
    assert ordered == ["root", "child", "grandchild", "other"]


def test_a_child_shard_waits_until_its_parent_is_finished() -> None:
    listed = reverse.lineage([{"ShardId": "child", "ParentShardId": "root"}, {"ShardId": "root"}])
    reading = reverse.ShardPosition("root", "7", is_finished=False, is_active=True)
    assert reverse.next_shard(listed, {"root": reading}, set()) == "root"
    assert reverse.next_shard(listed, {"root": reading}, {"root"}) is None
    finished = reverse.ShardPosition("root", "9", is_finished=True, is_active=True)
    assert reverse.next_shard(listed, {"root": finished}, set()) == "child"


# End to end: moto and the monolith of each backend -------------------------------------------


def test_the_feed_starts_after_what_the_stream_already_holds(items_link: ItemsLink) -> None:
    copy_to_items(items_link)
    put(items_link, "polls", dict(item_rows(items_link)["polls"][2], question="Before start?"))
    end = shard_end(items_link)

    started = reverse.start(items_link)

    assert list(started.values()) == [end]
    assert reverse.drain(items_link) == 0
    assert monolith_rows(items_link)["polls"][2]["question"] != "Before start?"


def test_an_empty_stream_is_read_from_its_beginning(items_link: ItemsLink) -> None:
    assert list(reverse.start(items_link).values()) == [None]
    new_poll(items_link, NEW_POLL, range(1, 3))

    assert reverse.drain(items_link) == 5
    assert monolith_rows(items_link)["votes"][vote(NEW_POLL, 2)["id"]] == vote(NEW_POLL, 2)


def test_after_a_drain_the_monolith_holds_exactly_the_items(items_link: ItemsLink) -> None:
    copy_to_items(items_link)
    reverse.start(items_link)
    changes_of_the_functions(items_link)

    applied = reverse.drain(items_link, limit=7)  # many small batches

    assert applied > 0
    assert monolith_rows(items_link) == item_rows(items_link)
    assert reverse.lag(items_link) == reverse.Lag(0, 0.0)
    assert 1 not in monolith_rows(items_link)["poll_options"]


def test_records_applied_again_change_nothing(items_link: ItemsLink) -> None:
    copy_to_items(items_link)
    started = reverse.start(items_link)
    changes_of_the_functions(items_link)
    reverse.drain(items_link)
    once = monolith_rows(items_link)

    with items_link.monolith.begin() as connection:  # back to the start: every record again
        [(shard, sequence)] = started.items()
        connection.execute(
            update(reverse.stream_positions)
            .where(reverse.stream_positions.c.shard_id == shard)
            .values(sequence_number=sequence)
        )
    assert reverse.lag(items_link).records > 0
    assert reverse.drain(items_link) > 0

    assert monolith_rows(items_link) == once == item_rows(items_link)


def test_a_refused_batch_leaves_its_checkpoint_and_is_retried(items_link: ItemsLink) -> None:
    copy_to_items(items_link)
    started = reverse.start(items_link)
    poll = item_rows(items_link)["polls"][1]
    voted = {
        row["user_id"] for row in item_rows(items_link)["votes"].values() if row["poll_id"] == 1
    }
    user = min(set(range(1, 31)) - voted)
    stray = {"id": 9000, "poll_id": poll["id"], "option_id": 99_999, "user_id": user,
             "created_at": CREATED}  # fmt: skip
    put(items_link, "votes", stray)  # no such option: the monolith refuses it

    with pytest.raises(IntegrityError):
        reverse.apply_batch(items_link, 10)
    saved = reverse.saved_positions(items_link.monolith, items_link.feed.name)
    assert {shard: position.sequence_number for shard, position in saved.items()} == started
    assert 9000 not in monolith_rows(items_link)["votes"]

    option = next(o for o in item_rows(items_link)["poll_options"].values() if o["poll_id"] == 1)
    put(items_link, "votes", dict(stray, option_id=option["id"]))  # the function's fix
    assert reverse.drain(items_link) == 2
    assert monolith_rows(items_link)["votes"][9000]["option_id"] == option["id"]


def test_a_stopped_feed_applies_nothing_until_resumed(items_link: ItemsLink) -> None:
    assert not reverse.is_active(items_link)
    reverse.start(items_link)
    reverse.stop(items_link)
    new_poll(items_link, NEW_POLL, range(1, 2))

    assert not reverse.is_active(items_link)
    assert reverse.apply_batch(items_link) == reverse.Batch(False)
    assert NEW_POLL not in monolith_rows(items_link)["polls"]

    reverse.set_active(items_link, True)  # where it stopped: the change made meanwhile too
    assert reverse.drain(items_link) == 4
    assert NEW_POLL in monolith_rows(items_link)["polls"]


# End to end: the reverse process, SIGKILLed while the functions keep writing ------------------


def reverse_process(link: ItemsLink, emulator: Emulator, log: Path) -> ManagedProcess:
    environment = {
        **emulator.environment,
        "MONOLITH_DATABASE_URL": link.monolith.url.render_as_string(hide_password=False),
        "POLLS_TABLE": link.table_name,
        "REVERSE_BATCH_RECORDS": "25",
        "REVERSE_IDLE_SECONDS": "0.05",
    }
    argv = [sys.executable, "-m", "strangler.serverless.data.reverse", "polls"]
    return start("reverse-feed", argv, environment, log_path=log, cwd=Path.cwd())


def batches_logged(log: Path) -> int:
    return log.read_text(errors="replace").count("batch applied") if log.exists() else 0


def has_more_batches(log: Path, seen: int) -> bool:
    return batches_logged(log) > seen


def wait_for(check: Callable[[], bool], process: ManagedProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{process.name} made no progress:\n{process.log_tail()}")
        time.sleep(0.25)


def keep_writing(link: ItemsLink, stopping: threading.Event) -> int:
    """New polls with their votes, a renamed question and a withdrawn vote each, at a pace,
    until told to stop; the polls made."""
    poll_id = NEW_POLL
    while not stopping.wait(0.3):
        new_poll(link, poll_id, range(1, 11))
        put(link, "polls", {"id": poll_id, "question": "Renamed?", "author_id": 1,
                            "created_at": CREATED})  # fmt: skip
        remove(link, "votes", vote(poll_id, 3))
        poll_id += 1
    return poll_id - NEW_POLL


def test_a_killed_reverse_process_restarts_and_loses_nothing(
    items_link: ItemsLink, moto_server: Emulator, tmp_path: Path
) -> None:
    copy_to_items(items_link)
    reverse.start(items_link)
    log = tmp_path / "reverse.log"
    stopping = threading.Event()
    made: list[int] = []
    writer = threading.Thread(target=lambda: made.append(keep_writing(items_link, stopping)))
    writer.start()
    try:
        for _ in range(3):
            process = reverse_process(items_link, moto_server, log)
            seen = batches_logged(log)
            wait_for(functools.partial(has_more_batches, log, seen), process, 30)
            process.popen.kill()  # SIGKILL, whatever it is doing
            process.popen.wait()
    finally:
        stopping.set()
        writer.join()
    process = reverse_process(items_link, moto_server, log)
    try:
        wait_for(lambda: reverse.lag(items_link).records == 0, process, 60)
    finally:
        process.stop()
    assert monolith_rows(items_link) == item_rows(items_link)
    assert made[0] >= 2
    polls = monolith_rows(items_link)["polls"]
    assert all(polls[NEW_POLL + n]["question"] == "Renamed?" for n in range(made[0]))
    assert reverse.lag(items_link).records == 0
