"""The id sequences on both sides of a serverless context: counter items and SQL sequences.

The functions allocate integer ids from one counter item per SQL table (`UpdateItem ADD last`,
its key from the mapping's `sequence_key`); the monolith from its own sequences (PostgreSQL's
serial sequences, SQLite's rowid). Rows copied with explicit ids move neither: after rows were
copied into items, `raise_item_counters` raises each counter to at least its table's largest
id in the monolith (a conditional `SET`, so a counter is never lowered and a second call
changes nothing); after items were copied back, `advance_monolith_sequences` moves the
monolith's sequences past the largest id. This module must never write a row or an item other
than a counter.
"""

from __future__ import annotations

import contextlib

from sqlalchemy import Integer, func, select

from strangler.datapath.rows import advance_sequences
from strangler.serverless.data.link import ItemsLink

COUNTER = "last"


def largest_ids(link: ItemsLink) -> dict[str, int]:
    """The largest id of each counted table in the monolith (0: the table is empty)."""
    found: dict[str, int] = {}
    with link.monolith.connect() as connection:
        for table_map in link.feed.tables:
            table = link.tables[table_map.monolith]
            if link.mapping.sequence_key(table.name) is None:
                continue
            if len(table_map.key) != 1 or not isinstance(table.c[table_map.key[0]].type, Integer):
                raise ValueError(f"{table.name}: a counted table needs one integer key column")
            found[table.name] = int(
                connection.scalar(select(func.max(table.c[table_map.key[0]]))) or 0
            )
    return found


def raise_item_counters(link: ItemsLink) -> dict[str, int]:
    """Raise each table's counter item to at least its largest id in the monolith; what each
    counter holds afterwards (a counter already higher is left as it is)."""
    counters: dict[str, int] = {}
    for table, largest in largest_ids(link).items():
        key = link.mapping.sequence_key(table)
        assert key is not None  # largest_ids lists counted tables only
        refused = link.dynamodb.exceptions.ConditionalCheckFailedException
        with contextlib.suppress(refused):  # already at or past it: never lowered
            link.dynamodb.update_item(
                TableName=link.table_name,
                Key=key,
                UpdateExpression="SET #last = :max",
                ConditionExpression="attribute_not_exists(#last) OR #last < :max",
                ExpressionAttributeNames={"#last": COUNTER},  # LAST is a reserved word
                ExpressionAttributeValues={":max": {"N": str(largest)}},
            )
        item = link.dynamodb.get_item(TableName=link.table_name, Key=key, ConsistentRead=True)
        counters[table] = int(item["Item"][COUNTER]["N"])
    return counters


def advance_monolith_sequences(link: ItemsLink) -> None:
    """Move the monolith's id sequences of the context's tables past their largest ids
    (PostgreSQL; SQLite's next rowid is past the largest by itself)."""
    with link.monolith.begin() as connection:
        for table_map in link.feed.tables:
            advance_sequences(connection, link.tables[table_map.monolith])
