"""The polls table in DynamoDB: its definition, its keys, and the items of the SQL rows.

One table holds a context's data (docs/serverless.md, "The table"). A poll is one partition,
`PK = POLL#<poll id>`, sorted by `SK`:

    OPTION#0000 .. OPTION#0009   its options, in position order   (rows of `poll_options`)
    POLL                         the poll                          (a row of `polls`)
    RESULTS                      its counts, recomputed from votes (derived, no SQL row)
    VOTE#<user id>               one vote per user: the key is the rule (rows of `votes`)

so a poll with its options is one Query (`SK BETWEEN OPTION# AND POLL`), with its results too
up to `RESULTS`, and its votes one Query of `begins_with(SK, VOTE#)`. Integer ids come from one
counter item per SQL table, `PK = SEQUENCE#<table>`, `SK = SEQUENCE`, attribute `last`.

Every item of a SQL row carries every column of the row, under the column's name, and the row's
table in `table`: `item_of_row` and `row_of_item` are the whole mapping. This module never
talks to AWS and never reads the environment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from strangler.plumbing.clock import to_iso

# boto3's `create_table` keyword arguments. The runtime names the table (POLLS_TABLE); this is
# the name where it does not.
DEFINITION: dict[str, Any] = {
    "TableName": "polls",
    "KeySchema": [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": "PK", "AttributeType": "S"},
        {"AttributeName": "SK", "AttributeType": "S"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
}

POLL_SK = "POLL"
RESULTS_SK = "RESULTS"
OPTION_PREFIX = "OPTION#"
VOTE_PREFIX = "VOTE#"
SEQUENCE_SK = "SEQUENCE"

# The SQL tables whose rows are items here, and the type of each column (N: an integer,
# S: text, T: a naive UTC datetime stored as text in the contract's ISO form, which sorts).
COLUMNS: dict[str, dict[str, str]] = {
    "polls": {"id": "N", "question": "S", "author_id": "N", "created_at": "T"},
    "poll_options": {"id": "N", "poll_id": "N", "position": "N", "text": "S"},
    "votes": {"id": "N", "poll_id": "N", "option_id": "N", "user_id": "N", "created_at": "T"},
}

Item = dict[str, dict[str, Any]]  # an item in the low-level client's form: {"name": {"N": "1"}}
Row = dict[str, Any]  # a SQL row: {column: value}


def partition(poll_id: int) -> str:
    return f"POLL#{poll_id}"


def poll_id_of(partition_key: str) -> int | None:
    """The poll of a partition key, or None for a key outside the polls (a sequence)."""
    prefix, _, number = partition_key.partition("#")
    return int(number) if prefix == "POLL" and number.isdigit() else None


def option_sort_key(position: int) -> str:
    return f"{OPTION_PREFIX}{position:04d}"  # zero-padded: options sort by position


def vote_sort_key(user_id: int) -> str:
    return f"{VOTE_PREFIX}{user_id}"


def sequence_key(table: str) -> Item:
    return {"PK": {"S": f"SEQUENCE#{table}"}, "SK": {"S": SEQUENCE_SK}}


def key_of_row(table: str, row: Row) -> Item:
    """The primary key of the item holding `row` of `table`."""
    if table == "polls":
        return {"PK": {"S": partition(row["id"])}, "SK": {"S": POLL_SK}}
    if table == "poll_options":
        sort_key = option_sort_key(row["position"])
        return {"PK": {"S": partition(row["poll_id"])}, "SK": {"S": sort_key}}
    if table == "votes":
        sort_key = vote_sort_key(row["user_id"])
        return {"PK": {"S": partition(row["poll_id"])}, "SK": {"S": sort_key}}
    raise ValueError(f"{table} is not a table of the polls context")


def item_of_row(table: str, row: Row) -> Item:
    """The item of `row` of `table`: its key, `table`, and every column."""
    item = key_of_row(table, row)
    item["table"] = {"S": table}
    for column, kind in COLUMNS[table].items():
        item[column] = _attribute(kind, row[column])
    return item


def row_of_item(item: Item) -> tuple[str, Row]:
    """The SQL table and row an item holds (the inverse of `item_of_row`)."""
    table = item["table"]["S"]
    return table, {column: _value(kind, item[column]) for column, kind in COLUMNS[table].items()}


class PollsItems:
    """The mapping the toolkit's data path moves rows with (`strangler.serverless.data.link
    .ItemMapping`), named by the workspace as `[contexts.polls.serverless] items`."""

    def item_of_row(self, table: str, row: Row) -> Item:
        return item_of_row(table, row)

    def row_of_item(self, item: Item) -> tuple[str, Row] | None:
        if "table" not in item or item["table"].get("S") not in COLUMNS:
            return None  # counts and counters hold no row
        return row_of_item(item)

    def sequence_key(self, table: str) -> Item | None:
        return sequence_key(table) if table in COLUMNS else None


ITEMS = PollsItems()


def _attribute(kind: str, value: Any) -> dict[str, str]:
    if kind == "N":
        return {"N": str(int(value))}
    if kind == "T":
        return {"S": to_iso(value)}
    return {"S": str(value)}


def _value(kind: str, attribute: dict[str, str]) -> Any:
    if kind == "N":
        return int(attribute["N"])
    if kind == "T":
        return from_text(attribute["S"])
    return attribute["S"]


def from_text(text: str) -> datetime:
    """The naive UTC datetime an item stores (the inverse of `to_iso`)."""
    return datetime.fromisoformat(text.removesuffix("Z"))
