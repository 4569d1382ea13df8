"""The two sides of a serverless context's data path: the monolith's tables and the items.

An `ItemsLink` holds the monolith's engine, the context's main feed over the monolith's tables
(parents first, as the SQL data path orders them), the mapping between rows and items the
workspace names (`[contexts.NAME.serverless] items`), and boto3 clients of DynamoDB and its
streams. The feed is named `NAME-dynamodb`, so its capture and its positions never mix with
those of the context's SQL service. The data path's own bookkeeping (the forward feed's
position, the backfill's checkpoints) lives in a second, small table beside the context's
(`<table>-strangler`, one string key `name`), so that a batch of items and the position that
accounts for it commit in one `TransactWriteItems`, and the context's table and its stream
carry nothing but the context's items. This module must never move data itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy import Engine, Table

from strangler.datapath import tables
from strangler.datapath.contexts import Feed, describe
from strangler.plumbing.database import make_engine
from strangler.serverless.emulator import (
    DEFAULT_REGION,
    PLACEHOLDER_CREDENTIAL,
    serverless_of,
    table_definition,
)
from strangler.workspace import Workspace

Item = dict[str, dict[str, Any]]  # an item in the low-level client's form: {"name": {"N": "1"}}
Row = dict[str, Any]  # a SQL row: {column: value}

FEED_SUFFIX = "-dynamodb"
BOOKKEEPING_SUFFIX = "-strangler"
BOOKKEEPING_KEY = "name"
# One TransactWriteItems takes at most 100 actions; one is the position (or checkpoint).
TRANSACTION_ITEMS = 99


class ItemMapping(Protocol):
    """Rows of the context's SQL tables as items of its DynamoDB table, and back.

    `item_of_row` gives the whole item (its key included) of a row of `table` in the monolith's
    column names; `row_of_item` the table and row an item holds, or None for an item that holds
    no row (derived counts, counters); `sequence_key` the key of the counter item that allocates
    `table`'s integer ids (an attribute `last`), or None when the table's ids are not counted.
    The data path counts on two more things: an item of a row carries the row's table in an
    attribute `table` (a delete finds the items of a row by it), and an item's key derives
    from columns that never change while the row lives (the feeds put a changed row over its
    item and delete items only of rows that are gone).
    """

    def item_of_row(self, table: str, row: Row) -> Item: ...

    def row_of_item(self, item: Item) -> tuple[str, Row] | None: ...

    def sequence_key(self, table: str) -> Item | None: ...


class NotServerless(ValueError):
    """The context is not declared serverless with a table and an item mapping."""


@dataclass
class ItemsLink:
    """One serverless context: the monolith's side and the DynamoDB side of its data."""

    context: str
    monolith: Engine
    feed: Feed  # the main feed, monolith names, parents first, named NAME-dynamodb
    tables: dict[str, Table]  # the monolith's tables of the feed, by name
    mapping: ItemMapping
    dynamodb: Any  # a boto3 DynamoDB client
    streams: Any  # a boto3 DynamoDB Streams client
    table_name: str  # the context's table
    key_names: tuple[str, ...]  # its key attributes (partition, then sort)

    @property
    def bookkeeping(self) -> str:
        """The table of the data path's positions and checkpoints."""
        return self.table_name + BOOKKEEPING_SUFFIX

    @classmethod
    def open(
        cls,
        workspace: Workspace,
        context: str,
        monolith_url: str,
        endpoint: str | None = None,
        table_name: str | None = None,
    ) -> ItemsLink:
        """Both sides of `context`: `endpoint` is the emulator's URL (None: boto3's own
        configuration, `AWS_ENDPOINT_URL` or AWS); `table_name` the deployed table's name
        (default: `NAME_TABLE` in the environment, else the definition's `TableName`)."""
        spec = serverless_of(workspace, context)
        definition = table_definition(workspace, context)
        if definition is None or spec.items is None:
            raise NotServerless(
                f"the data path of {context} needs `table` and `items` in"
                f" [contexts.{context}.serverless]"
            )
        mapping = workspace.resolve(spec.items)
        monolith = make_engine(monolith_url)
        try:
            described = describe(workspace, context, monolith, monolith)
        except BaseException:
            monolith.dispose()
            raise
        feed = replace(described.main, name=context + FEED_SUFFIX)
        tables = {t.monolith: described.monolith_schema.tables[t.monolith] for t in feed.tables}
        name = table_name or os.environ.get(f"{context.upper()}_TABLE") or definition["TableName"]
        keys = tuple(
            part["AttributeName"]
            for kind in ("HASH", "RANGE")
            for part in definition["KeySchema"]
            if part["KeyType"] == kind
        )
        dynamodb, streams = clients(endpoint)
        return cls(context, monolith, feed, tables, mapping, dynamodb, streams, name, keys)

    def key_of(self, item: Item) -> Item:
        """The primary key of an item."""
        return {name: item[name] for name in self.key_names}

    def ensure_bookkeeping(self) -> None:
        """Create the data path's own tables when missing: the bookkeeping table beside the
        context's, and in the monolith's database the tables the SQL data path keeps there
        (the log, and the contexts' state rows a cutover writes its steps to)."""
        tables.ensure(self.monolith)
        provision_bookkeeping(self)

    def close(self) -> None:
        self.monolith.dispose()

    def __enter__(self) -> ItemsLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def clients(endpoint: str | None) -> tuple[Any, Any]:
    """boto3 clients of DynamoDB and DynamoDB Streams, retrying in the standard mode."""
    import boto3  # heavy: imported when a data path opens, never at import
    from botocore.config import Config

    # A whole-table Scan page takes seconds on the emulator while its stream is being read
    # (moto filters every item for each page): reads wait long rather than retry.
    config = Config(
        retries={"mode": "standard", "max_attempts": 5}, connect_timeout=2, read_timeout=60
    )
    region = os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION)
    keys = {}
    if endpoint is not None:  # the emulator accepts any keys; never real ones are needed
        keys = {
            "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", PLACEHOLDER_CREDENTIAL),
            "aws_secret_access_key": os.environ.get(
                "AWS_SECRET_ACCESS_KEY", PLACEHOLDER_CREDENTIAL
            ),
        }
    session = boto3.session.Session(region_name=region, **keys)
    return (
        session.client("dynamodb", endpoint_url=endpoint, config=config),
        session.client("dynamodbstreams", endpoint_url=endpoint, config=config),
    )


def transact(link: ItemsLink, actions: list[dict[str, Any]]) -> bool:
    """One `TransactWriteItems`; False when a condition refused it (nothing was written)."""
    try:
        link.dynamodb.transact_write_items(TransactItems=actions)
    except link.dynamodb.exceptions.TransactionCanceledException:
        return False
    return True


def provision_bookkeeping(link: ItemsLink) -> bool:
    """Create the bookkeeping table unless it exists; True when it was created."""
    try:
        link.dynamodb.create_table(
            TableName=link.bookkeeping,
            KeySchema=[{"AttributeName": BOOKKEEPING_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": BOOKKEEPING_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except link.dynamodb.exceptions.ResourceInUseException:
        return False
    link.dynamodb.get_waiter("table_exists").wait(
        TableName=link.bookkeeping, WaiterConfig={"Delay": 0.2}
    )
    return True
