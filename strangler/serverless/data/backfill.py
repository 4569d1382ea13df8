"""Backfill of a serverless context: the monolith's existing rows as items, resumably.

Run after the forward feed's `start`, so every write from then on is in the change log. A first
run records every table's bound (its largest key now) in one transaction of checkpoint items
(`backfill#<feed>#<table>` in the bookkeeping table); rows made later come through the log,
wherever their keys fall. Each table, parents first, is copied in key-ordered chunks up to its
bound; a chunk is ONE `TransactWriteItems` of its items' Puts and the Put of its table's
checkpoint (last key copied, rows copied, chunks committed, done) conditioned on the
checkpoint's `chunks` as read. A killed backfill resumes after the last committed chunk, and a
chunk is never committed twice: a second run racing the first is refused and follows it. When
every table is done the feed's backfill is marked complete (`backfill#<feed>`): the forward
apply starts then and brings the copied rows current. Each id counter item is raised to the
monolith's largest id (`sequences`), so the functions never hand out an id the monolith
used. A first run begins by deleting every item that holds a row of the feed (left by an
extraction rolled back earlier): the copy starts from nothing, so no item of a row the monolith
no longer has survives it. This module must never apply the change log.

    MONOLITH_DATABASE_URL=... POLLS_TABLE=... AWS_ENDPOINT_URL=... \
        python -m strangler.serverless.data.backfill polls

runs one as a bare process, printing one line per committed chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from strangler.datapath import rows
from strangler.datapath.contexts import TableMap
from strangler.datapath.keys import KeyColumns
from strangler.serverless.data import sequences
from strangler.serverless.data.link import (
    BOOKKEEPING_KEY,
    TRANSACTION_ITEMS,
    Item,
    ItemsLink,
    transact,
)

PREFIX = "backfill#"
DEFAULT_CHUNK_ROWS = TRANSACTION_ITEMS


@dataclass(frozen=True)
class Checkpoint:
    """How far one table's copy has gone. Keys are encoded (`keys.KeyColumns.encode`)."""

    table: str
    high_key: str | None  # the bound; None: the table was empty when the backfill began
    last_key: str | None = None  # the last key copied; None: nothing yet
    rows_copied: int = 0
    chunks: int = 0  # chunks committed: the version each chunk's write is conditioned on
    is_complete: bool = False


Progress = Callable[[Checkpoint], None]  # called after each committed chunk


WRITE_BATCH = 25  # BatchWriteItem's limit


def _name(link: ItemsLink, table: str | None = None) -> str:
    return f"{PREFIX}{link.feed.name}" + ("" if table is None else f"#{table}")


def _key_columns(link: ItemsLink, table: TableMap) -> KeyColumns:
    return KeyColumns(link.tables[table.monolith], table.key)


def _text(value: str | None) -> dict[str, Any]:
    return {"NULL": True} if value is None else {"S": value}


def _item(link: ItemsLink, checkpoint: Checkpoint) -> Item:
    return {
        BOOKKEEPING_KEY: {"S": _name(link, checkpoint.table)},
        "high_key": _text(checkpoint.high_key),
        "last_key": _text(checkpoint.last_key),
        "rows_copied": {"N": str(checkpoint.rows_copied)},
        "chunks": {"N": str(checkpoint.chunks)},
        "is_complete": {"BOOL": checkpoint.is_complete},
    }


def _from_item(table: str, item: Item) -> Checkpoint:
    def text(name: str) -> str | None:
        return None if "S" not in item[name] else str(item[name]["S"])

    return Checkpoint(
        table,
        text("high_key"),
        text("last_key"),
        int(item["rows_copied"]["N"]),
        int(item["chunks"]["N"]),
        bool(item["is_complete"]["BOOL"]),
    )


def checkpoint(link: ItemsLink, table: str) -> Checkpoint | None:
    found = link.dynamodb.get_item(
        TableName=link.bookkeeping,
        Key={BOOKKEEPING_KEY: {"S": _name(link, table)}},
        ConsistentRead=True,
    ).get("Item")
    return None if found is None else _from_item(table, found)


def checkpoints_of(link: ItemsLink) -> list[Checkpoint]:
    """Every table's checkpoint, parents first (tables not begun are left out)."""
    found = (checkpoint(link, table.monolith) for table in link.feed.tables)
    return [one for one in found if one is not None]


def is_complete(link: ItemsLink) -> bool:
    """Whether the feed's backfill is marked complete."""
    found = link.dynamodb.get_item(
        TableName=link.bookkeeping,
        Key={BOOKKEEPING_KEY: {"S": _name(link)}},
        ConsistentRead=True,
    ).get("Item")
    return found is not None and bool(found["is_complete"]["BOOL"])


def forget(link: ItemsLink) -> None:
    """Drop the feed's checkpoints and its completion: the next backfill starts afresh."""
    for name in (_name(link), *(_name(link, table.monolith) for table in link.feed.tables)):
        link.dynamodb.delete_item(TableName=link.bookkeeping, Key={BOOKKEEPING_KEY: {"S": name}})


def _bound(link: ItemsLink) -> None:
    """On a first run, record every table's bound at once (children first, as the SQL
    backfill reads them: a bound taken after capture began covers every row the log will not
    bring)."""
    if checkpoint(link, link.feed.tables[0].monolith) is not None:
        return
    _clear(link)
    bounds: dict[str, str | None] = {}
    with link.monolith.connect() as reader:
        for table in reversed(link.feed.tables):
            keys = _key_columns(link, table)
            largest = rows.largest_key(reader, keys)
            bounds[table.monolith] = None if largest is None else keys.encode(largest)
    actions = [
        {
            "Put": {
                "TableName": link.bookkeeping,
                "Item": _item(link, Checkpoint(table.monolith, bounds[table.monolith])),
                "ConditionExpression": "attribute_not_exists(#name)",
                "ExpressionAttributeNames": {"#name": BOOKKEEPING_KEY},
            }
        }
        for table in link.feed.tables
    ]
    transact(link, actions)  # refused: another run recorded them first


def _clear(link: ItemsLink) -> int:
    """Delete every item holding a row of the feed (left by an earlier extraction that was
    rolled back, or by a backfill the capture restarted under): a first run copies every row
    afresh, and nothing applies to the items before the backfill completes. Resumable: a run
    killed here clears again. The items deleted."""
    from strangler.serverless.data import forward  # forward imports this module

    keys = [link.key_of(item) for item in forward.scan_items(link, link.tables)]
    for start in range(0, len(keys), WRITE_BATCH):
        pending: dict[str, Any] = {
            link.table_name: [
                {"DeleteRequest": {"Key": key}} for key in keys[start : start + WRITE_BATCH]
            ]
        }
        while pending:
            pending = link.dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems")
    return len(keys)


def _chunk_put(link: ItemsLink, seen: Checkpoint, following: Checkpoint) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": link.bookkeeping,
            "Item": _item(link, following),
            "ConditionExpression": "chunks = :seen",
            "ExpressionAttributeValues": {":seen": {"N": str(seen.chunks)}},
        }
    }


def _copy_table(
    link: ItemsLink, table: TableMap, chunk_rows: int, progress: Progress | None
) -> int:
    """Copy one table chunk by chunk up to its bound; the rows this run copied."""
    keys = _key_columns(link, table)
    source = link.tables[table.monolith]
    copied = 0
    while True:
        seen = checkpoint(link, table.monolith)
        if seen is None:
            raise RuntimeError(
                f"the checkpoint of {table.monolith} vanished: was the feed stopped?"
            )
        if seen.is_complete:
            return copied
        chunk: list[dict[str, Any]] = []
        if seen.high_key is not None:
            after = None if seen.last_key is None else keys.decode(seen.last_key)
            with link.monolith.connect() as reader:
                dialect = reader.dialect.name
                query = (
                    select(*(source.c[name] for name in table.columns))
                    .where(keys.within(dialect, after, keys.decode(seen.high_key)))
                    .order_by(*keys.order_by(dialect))
                    .limit(chunk_rows)
                )
                chunk = [dict(row) for row in reader.execute(query).mappings()]
        following = replace(seen, chunks=seen.chunks + 1, is_complete=not chunk)
        if chunk:
            last = keys.encode(tuple(chunk[-1][name] for name in table.key))
            following = replace(following, last_key=last, rows_copied=seen.rows_copied + len(chunk))
        items = {}
        for row in chunk:  # one action per item key: a transaction refuses two
            item = link.mapping.item_of_row(table.monolith, row)
            items[repr(sorted(link.key_of(item).items()))] = item
        puts = [{"Put": {"TableName": link.table_name, "Item": item}} for item in items.values()]
        if not transact(link, [*puts, _chunk_put(link, seen, following)]):
            continue  # another run committed this chunk: follow it
        copied += len(chunk)
        if progress is not None:
            progress(following)


def backfill(
    link: ItemsLink, chunk_rows: int = DEFAULT_CHUNK_ROWS, progress: Progress | None = None
) -> int:
    """Copy every table of the feed, resuming where an earlier run stopped; the rows this run
    copied. The forward feed must be started (its capture is what makes the copy current)."""
    from strangler.serverless.data import forward  # forward forgets backfills: no cycle at import

    if not 1 <= chunk_rows <= TRANSACTION_ITEMS:
        raise ValueError(f"a chunk is one transaction: 1 to {TRANSACTION_ITEMS} rows")
    stored = forward.read_position(link)
    if stored is None or not stored.position.is_active:
        raise forward.NotStarted(f"start {link.feed.name} before its backfill")
    _bound(link)
    copied = sum(_copy_table(link, table, chunk_rows, progress) for table in link.feed.tables)
    sequences.raise_item_counters(link)
    mark_complete(link)
    return copied


def mark_complete(link: ItemsLink) -> None:
    """Record that the items hold every row the log will not bring (after a copy, or after a
    rollback's verify found both sides equal): the forward feed applies from then on."""
    link.dynamodb.put_item(
        TableName=link.bookkeeping,
        Item={BOOKKEEPING_KEY: {"S": _name(link)}, "is_complete": {"BOOL": True}},
    )


def describe(progress: Checkpoint) -> str:
    state = "done" if progress.is_complete else f"after {progress.last_key}"
    return (
        f"chunk {progress.table} #{progress.chunks} {state}"
        f" rows={progress.rows_copied} bound={progress.high_key}"
    )


def main(argv: list[str] | None = None) -> None:
    import argparse
    import os

    from strangler.workspace import find_workspace

    parser = argparse.ArgumentParser(prog="python -m strangler.serverless.data.backfill")
    parser.add_argument("context")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    arguments = parser.parse_args(argv)
    workspace = find_workspace()
    monolith = os.environ.get(workspace.url_variable("monolith"), "sqlite:///monolith.sqlite3")
    link = ItemsLink.open(workspace, arguments.context, monolith, endpoint=None)
    try:
        copied = backfill(
            link, arguments.chunk_rows, lambda done: print(describe(done), flush=True)
        )
    finally:
        link.close()
    print(f"backfilled rows={copied}", flush=True)


if __name__ == "__main__":
    main()
