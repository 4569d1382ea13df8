"""Specification: ids stay fresh on both sides of a serverless context's data path.

After rows are copied into items, each counter item is raised to its table's largest id (never
lowered, and a second call writes nothing); after items are copied back, the monolith's own
sequences are moved past the copied ids, so its next insert takes a fresh id.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from extracted.polls.serverless.table import sequence_key
from strangler.serverless.data import reverse
from strangler.serverless.data.link import ItemsLink
from strangler.serverless.data.sequences import (
    advance_monolith_sequences,
    largest_ids,
    raise_item_counters,
)
from tests.data.dynamodb.test_reverse import CREATED, put, shard_end


def counter(link: ItemsLink, table: str) -> int | None:
    item = link.dynamodb.get_item(
        TableName=link.table_name, Key=sequence_key(table), ConsistentRead=True
    ).get("Item")
    return None if item is None else int(item["last"]["N"])


def test_counters_are_raised_to_the_largest_ids(items_link: ItemsLink) -> None:
    largest = largest_ids(items_link)
    assert set(largest) == {"polls", "poll_options", "votes"}
    assert all(value > 0 for value in largest.values())

    assert raise_item_counters(items_link) == largest
    assert {table: counter(items_link, table) for table in largest} == largest


def test_a_second_call_changes_nothing(items_link: ItemsLink) -> None:
    first = raise_item_counters(items_link)
    end = shard_end(items_link)

    assert raise_item_counters(items_link) == first
    assert shard_end(items_link) == end  # every condition refused: nothing written


def test_a_counter_already_past_the_largest_id_is_never_lowered(items_link: ItemsLink) -> None:
    items_link.dynamodb.update_item(
        TableName=items_link.table_name,
        Key=sequence_key("votes"),
        UpdateExpression="ADD #last :many",
        ExpressionAttributeNames={"#last": "last"},
        ExpressionAttributeValues={":many": {"N": "10000"}},
    )

    raised = raise_item_counters(items_link)

    assert raised["votes"] == counter(items_link, "votes") == 10_000
    assert raised["polls"] == largest_ids(items_link)["polls"]


def test_a_new_sql_insert_takes_an_id_past_the_copied_ones(items_link: ItemsLink) -> None:
    reverse.start(items_link)
    copied = {"id": 5000, "question": "Made by a function?", "author_id": 1, "created_at": CREATED}
    put(items_link, "polls", copied)
    assert reverse.drain(items_link) == 1
    polls = items_link.tables["polls"]

    advance_monolith_sequences(items_link)
    advance_monolith_sequences(items_link)  # idempotent: never backwards, never skipping on

    with items_link.monolith.begin() as connection:
        made = connection.execute(
            insert(polls)
            .values(question="Made in SQL?", author_id=1, created_at=CREATED)
            .returning(polls.c.id)
        ).scalar_one()
        assert made == connection.scalar(select(func.max(polls.c.id))) == 5001


def test_without_advancing_postgresql_would_reuse_a_copied_id(items_link: ItemsLink) -> None:
    """Why the call matters: an id copied back leaves PostgreSQL's sequence behind (SQLite's
    next rowid is past the largest by itself)."""
    with items_link.monolith.connect() as connection:
        if connection.dialect.name != "postgresql":
            return
        last, is_called = connection.execute(
            text("SELECT last_value, is_called FROM polls_id_seq")
        ).one()
    following = last + 1 if is_called else last
    reverse.start(items_link)
    copied = {"id": following, "question": "Next?", "author_id": 1, "created_at": CREATED}
    put(items_link, "polls", copied)
    reverse.drain(items_link)
    polls = items_link.tables["polls"]
    made_in_sql = insert(polls).values(question="SQL?", author_id=1, created_at=CREATED)

    with pytest.raises(IntegrityError), items_link.monolith.begin() as connection:
        connection.execute(made_in_sql)
    advance_monolith_sequences(items_link)
    with items_link.monolith.begin() as connection:
        assert connection.execute(made_in_sql.returning(polls.c.id)).scalar_one() > following
