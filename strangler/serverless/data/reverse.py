"""The reverse feed: a serverless context's items back into the monolith's tables, from the stream.

After a cutover the functions own the data; this feed keeps the monolith's tables current from
the table's stream (NEW_AND_OLD_IMAGES), so monolith code that still reads them works and a
rollback loses nothing. `start` records where the feed begins: each shard's current end (read
up to now; an empty shard from its beginning), so the forward feed's own writes are not
replayed. A batch reads the next records of one shard, shards in lineage order (a parent read
to its end before its children), from `AFTER_SEQUENCE_NUMBER` its checkpoint; re-reads every
item a record names with a strongly consistent read (its current state, so replays, redeliveries
and reordering converge); then, in one SQL transaction, deletes the rows whose item is gone
(children first, their keys from the images) and upserts the others (parents first), and saves
the shard's checkpoint in `strangler_stream_positions`: a process killed at any moment neither
loses nor re-applies a batch. A row is assumed to stay at one item key (what its item key is
made of never changes, as in the polls mapping). A batch the monolith refuses (a foreign key)
is read again with more records, then fails with its checkpoint unmoved, to be retried. This
module must never write to the context's table or its stream.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError

from strangler.datapath import rows
from strangler.datapath.contexts import Direction, TableMap
from strangler.datapath.keys import Key, KeyColumns
from strangler.plumbing.logs import configure_logging, get_logger
from strangler.serverless.data.link import Item, ItemsLink, Row

log = get_logger("reverse-feed")

stream_positions = Table(
    "strangler_stream_positions",
    MetaData(),
    Column("feed", String(64), primary_key=True),
    Column("shard_id", String(128), primary_key=True),
    Column("sequence_number", Text, nullable=True),  # the last applied; None: none yet
    Column("is_finished", Boolean, nullable=False),  # a closed shard read to its end
    Column("is_active", Boolean, nullable=False),
    Column("applied_records", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# A refused batch is read again with up to this many times its records, before giving up.
GROWTH = (4, 16)
GET_KEYS = 100  # BatchGetItem's limit
PAGE = 1000  # GetRecords' limit


@dataclass(frozen=True)
class ShardPosition:
    shard_id: str
    sequence_number: str | None
    is_finished: bool
    is_active: bool


@dataclass(frozen=True)
class Batch:
    """What one batch did; `oldest` is its first record's creation time (epoch seconds)."""

    is_applying: bool  # false: the feed was never started, or is stopped
    shard_id: str | None = None
    records: int = 0
    upserted: int = 0
    deleted: int = 0
    oldest: float | None = None


@dataclass(frozen=True)
class Lag:
    records: int  # read but not applied, counting at most one page per shard
    seconds: float  # the age of the oldest of them (0: caught up)


class DrainTimeout(RuntimeError):
    """The reverse feed did not catch up within the time allowed."""


class _Moved(Exception):
    """Another applier moved the shard's checkpoint meanwhile: look again."""


def ensure_positions(engine: Engine) -> None:
    """Create the checkpoint table unless it exists (two processes may race: the loser finds
    it there)."""
    for attempt in range(3):
        try:
            stream_positions.create(engine, checkfirst=True)
            return
        except (IntegrityError, ProgrammingError, OperationalError):
            if attempt == 2:
                raise


def saved_positions(engine: Engine, feed: str) -> dict[str, ShardPosition]:
    with engine.connect() as connection:
        found = connection.execute(
            select(stream_positions).where(stream_positions.c.feed == feed)
        ).all()
    return {
        row.shard_id: ShardPosition(
            row.shard_id, row.sequence_number, bool(row.is_finished), bool(row.is_active)
        )
        for row in found
    }


def stream_arn(link: ItemsLink) -> str:
    table = link.dynamodb.describe_table(TableName=link.table_name)["Table"]
    return str(table["LatestStreamArn"])


def shards(link: ItemsLink, arn: str) -> list[dict[str, Any]]:
    """Every shard of the stream, parents before their children."""
    found: list[dict[str, Any]] = []
    options: dict[str, Any] = {"StreamArn": arn}
    while True:
        described = link.streams.describe_stream(**options)["StreamDescription"]
        found.extend(described.get("Shards", []))
        last = described.get("LastEvaluatedShardId")
        if not last:
            return lineage(found)
        options["ExclusiveStartShardId"] = last


def lineage(listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shards ordered so that a parent comes before its children (a parent no longer listed,
    trimmed after 24 hours, counts as read)."""
    by_id = {shard["ShardId"]: shard for shard in listed}
    ordered: list[dict[str, Any]] = []
    seen: set[str] = set()
    for shard in listed:
        chain = []
        while shard["ShardId"] not in seen:
            seen.add(shard["ShardId"])
            chain.append(shard)
            parent = by_id.get(shard.get("ParentShardId") or "")
            if parent is None:
                break
            shard = parent
        ordered.extend(reversed(chain))
    return ordered


def _read(
    link: ItemsLink, arn: str, shard_id: str, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` records of a shard after `after` (None: from its beginning), and whether
    the shard is closed and read to its end."""
    options: dict[str, Any] = {"StreamArn": arn, "ShardId": shard_id}
    if after is None:
        options["ShardIteratorType"] = "TRIM_HORIZON"
    else:
        options.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
    iterator = link.streams.get_shard_iterator(**options).get("ShardIterator")
    found: list[dict[str, Any]] = []
    while iterator is not None and len(found) < limit:
        page = link.streams.get_records(ShardIterator=iterator, Limit=min(PAGE, limit - len(found)))
        found.extend(page.get("Records", []))
        iterator = page.get("NextShardIterator")
        if not page.get("Records"):
            break
    return found, iterator is None


Ends = dict[str, tuple[str | None, bool]]  # shard -> (its last sequence number, is it closed)


def stream_ends(link: ItemsLink, marks: Ends | None = None) -> Ends:
    """Each shard's last sequence number now, read forward from `marks` (ends read earlier;
    None: from each shard's beginning, a read of the whole stream)."""
    return _read_after(link, marks or {}, lambda records: None)


def keys_since(link: ItemsLink, marks: Ends) -> dict[str, set[Key]]:
    """The rows the stream's records after `marks` name (from their images), applied or not,
    by the monolith's table: what changed since, for a verify of only those keys."""
    found: dict[str, set[Key]] = {}

    def collect(records: list[dict[str, Any]]) -> None:
        for table, keys in _named(link, records)[1].items():
            found.setdefault(table, set()).update(keys)

    _read_after(link, marks, collect)
    return found


def _read_after(
    link: ItemsLink, marks: Ends, seen: Callable[[list[dict[str, Any]]], None]
) -> Ends:
    """Read every shard from its mark (a shard without one from its beginning) to its end,
    each page of records to `seen`; the ends reached."""
    arn = stream_arn(link)
    ends: Ends = {}
    for shard in shards(link, arn):
        last, is_ended = marks.get(shard["ShardId"], (None, False))
        while not is_ended:
            records, is_ended = _read(link, arn, shard["ShardId"], last, PAGE)
            if not records:
                break
            last = records[-1]["dynamodb"]["SequenceNumber"]
            seen(records)
        ends[shard["ShardId"]] = (last, is_ended)
    return ends


def start(link: ItemsLink, marks: Ends | None = None) -> dict[str, str | None]:
    """Start (or restart) the feed at each shard's current end, read forward from `marks`
    (the ends read before a freeze, so that the freeze reads only what came after them);
    the positions recorded."""
    ensure_positions(link.monolith)
    ends = stream_ends(link, marks)
    with link.monolith.begin() as connection:
        connection.execute(
            delete(stream_positions).where(stream_positions.c.feed == link.feed.name)
        )
        for shard_id, (last, is_ended) in ends.items():
            connection.execute(
                insert(stream_positions).values(
                    feed=link.feed.name, shard_id=shard_id, sequence_number=last,
                    is_finished=is_ended, is_active=True, applied_records=0,
                    updated_at=time.time(),
                )
            )  # fmt: skip
    log.debug("reverse feed started", feed=link.feed.name, positions=ends)
    return {shard_id: last for shard_id, (last, _) in ends.items()}


def stop(link: ItemsLink) -> None:
    """Deactivate the feed: no batch applies until it is resumed or started again."""
    set_active(link, False)


def set_active(link: ItemsLink, is_active: bool) -> None:
    """Deactivate the feed, or resume it where it stopped (its checkpoints unmoved)."""
    ensure_positions(link.monolith)
    with link.monolith.begin() as connection:
        connection.execute(
            update(stream_positions)
            .where(stream_positions.c.feed == link.feed.name)
            .values(is_active=is_active, updated_at=time.time())
        )


def is_active(link: ItemsLink) -> bool:
    """Whether the feed was started and is not stopped."""
    ensure_positions(link.monolith)
    saved = saved_positions(link.monolith, link.feed.name)
    return bool(saved) and all(position.is_active for position in saved.values())


def next_shard(
    listed: list[dict[str, Any]], saved: dict[str, ShardPosition], idle: set[str]
) -> str | None:
    """The first shard, in lineage order, not finished, not idle, and whose parent is
    finished."""
    present = {shard["ShardId"] for shard in listed}
    for shard in listed:
        shard_id = shard["ShardId"]
        position = saved.get(shard_id)
        if shard_id in idle or (position is not None and position.is_finished):
            continue
        parent = shard.get("ParentShardId")
        if parent in present and not (parent in saved and saved[parent].is_finished):
            continue
        return str(shard_id)
    return None


def apply_batch(link: ItemsLink, limit: int = 100) -> Batch:
    """Apply the next (at most `limit`) records of the stream; see the module doc."""
    for _ in range(10):
        saved = saved_positions(link.monolith, link.feed.name)
        if not saved or not all(position.is_active for position in saved.values()):
            return Batch(False)  # never started, or stopped
        try:
            return _apply_next(link, saved, limit)
        except _Moved:
            continue
    raise RuntimeError(f"{link.feed.name}: its checkpoints kept moving under another applier")


def _apply_next(link: ItemsLink, saved: dict[str, ShardPosition], limit: int) -> Batch:
    arn = stream_arn(link)
    listed = shards(link, arn)
    idle: set[str] = set()
    while (shard_id := next_shard(listed, saved, idle)) is not None:
        position = saved.get(shard_id)
        for growth in (1, *GROWTH):
            records, is_ended = _read(link, arn, shard_id, _after(position), limit * growth)
            if not records and not is_ended:
                idle.add(shard_id)  # nothing new here; a sibling may have some
                break
            try:
                batch = _apply_records(link, shard_id, position, records, is_ended)
            except IntegrityError:  # the parent row it needs may be just past the batch
                if growth == GROWTH[-1] or is_ended:
                    raise
                continue
            if batch.records:
                return batch
            # a closed shard read to its end: its children come next
            saved[shard_id] = ShardPosition(shard_id, _after(position), True, True)
            break
    return Batch(True)


def _apply_records(
    link: ItemsLink,
    shard_id: str,
    position: ShardPosition | None,
    records: list[dict[str, Any]],
    is_ended: bool,
) -> Batch:
    named, imaged = _named(link, records)
    current = _current_rows(link, list(named.values()))
    gone = {table: keys - set(current.get(table, {})) for table, keys in imaged.items()}
    with link.monolith.begin() as connection:
        _lock(connection, link.feed.name, shard_id, position)
        deleted = 0
        for table_map in reversed(link.feed.tables):
            wanted = gone.get(table_map.monolith)
            if wanted:
                keys = KeyColumns(link.tables[table_map.monolith], table_map.key)
                deleted += rows.delete_keys(connection, keys, wanted)
        upserted = 0
        for table_map in link.feed.tables:
            found = list(current.get(table_map.monolith, {}).values())
            if found:
                upsert(connection, link.tables[table_map.monolith], table_map, found)
                upserted += len(found)
        last = records[-1]["dynamodb"]["SequenceNumber"] if records else _after(position)
        _save(connection, link.feed.name, shard_id, last, is_ended, len(records))
    oldest = _created(records[0]) if records else None
    return Batch(True, shard_id, len(records), upserted, deleted, oldest)


def _after(position: ShardPosition | None) -> str | None:
    return None if position is None else position.sequence_number


def _created(record: dict[str, Any]) -> float | None:
    moment = record["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(moment, datetime):
        return moment.timestamp()
    return float(moment) if isinstance(moment, int | float) else None


def _item_text(key: Item) -> str:
    return json.dumps(key, sort_keys=True)


def _named(
    link: ItemsLink, records: list[dict[str, Any]]
) -> tuple[dict[str, Item], dict[str, set[Key]]]:
    """The item keys the records name whose images hold rows, and those rows' keys by table."""
    named: dict[str, Item] = {}
    imaged: dict[str, set[Key]] = {}
    for record in records:
        change = record["dynamodb"]
        for image in (change.get("NewImage"), change.get("OldImage")):
            held = link.mapping.row_of_item(image) if image else None
            if held is None:
                continue
            table, row = held
            named[_item_text(change["Keys"])] = change["Keys"]
            imaged.setdefault(table, set()).add(_row_key(link, table, row))
    return named, imaged


def _row_key(link: ItemsLink, table: str, row: Row) -> Key:
    return tuple(row[name] for name in link.feed.table(table, Direction.REVERSE).key)


def _current_rows(link: ItemsLink, keys: list[Item]) -> dict[str, dict[Key, Row]]:
    """The rows the items at `keys` hold now (strongly consistent reads), by table and key."""
    found: dict[str, dict[Key, Row]] = {}
    for start_at in range(0, len(keys), GET_KEYS):
        wanted: dict[str, Any] = {
            link.table_name: {"Keys": keys[start_at : start_at + GET_KEYS], "ConsistentRead": True}
        }
        while wanted:
            answer = link.dynamodb.batch_get_item(RequestItems=wanted)
            for item in answer.get("Responses", {}).get(link.table_name, []):
                held = link.mapping.row_of_item(item)
                if held is not None:
                    table, row = held
                    found.setdefault(table, {})[_row_key(link, table, row)] = row
            wanted = answer.get("UnprocessedKeys") or {}
    return found


def upsert(connection: Connection, table: Table, table_map: TableMap, found: list[Row]) -> None:
    """Insert the rows, or update the ones whose key exists (the database's own upsert)."""
    build = postgres_insert if connection.dialect.name == "postgresql" else sqlite_insert
    filled = table_map.filled(Direction.REVERSE)
    initial = table_map.initial(Direction.REVERSE)
    values = [
        {**initial, **{name: row[name] for name in table_map.columns if name in row}, **filled}
        for row in found
    ]
    statement = build(table).values(values)
    changed = [name for name in values[0] if name not in table_map.key and name not in initial]
    if not changed:
        connection.execute(statement.on_conflict_do_nothing(index_elements=list(table_map.key)))
        return
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=list(table_map.key),
            set_={name: statement.excluded[name] for name in changed},
        )
    )


def _lock(connection: Connection, feed: str, shard_id: str, position: ShardPosition | None) -> None:
    """Take the shard's checkpoint row first (a row lock on PostgreSQL, the write lock on
    SQLite); raise `_Moved` if it is not where this batch read from."""
    touched = connection.execute(
        update(stream_positions)
        .where(stream_positions.c.feed == feed, stream_positions.c.shard_id == shard_id)
        .values(updated_at=time.time())
    )
    if touched.rowcount == 0:
        if position is not None:
            raise _Moved()
        try:  # a shard born after `start`: read from its beginning
            connection.execute(
                insert(stream_positions).values(
                    feed=feed, shard_id=shard_id, sequence_number=None, is_finished=False,
                    is_active=True, applied_records=0, updated_at=time.time(),
                )
            )  # fmt: skip
        except IntegrityError as error:  # another applier recorded it first
            raise _Moved() from error
        return
    row = connection.execute(
        select(stream_positions.c.sequence_number, stream_positions.c.is_active).where(
            stream_positions.c.feed == feed, stream_positions.c.shard_id == shard_id
        )
    ).one()
    if position is None or row.sequence_number != position.sequence_number or not row.is_active:
        raise _Moved()


def _save(
    connection: Connection, feed: str, shard_id: str, last: str | None, is_ended: bool, count: int
) -> None:
    connection.execute(
        update(stream_positions)
        .where(stream_positions.c.feed == feed, stream_positions.c.shard_id == shard_id)
        .values(
            sequence_number=last,
            is_finished=is_ended,
            applied_records=stream_positions.c.applied_records + count,
            updated_at=time.time(),
        )
    )


def drain(link: ItemsLink, timeout: float = 60.0, limit: int = 500) -> int:
    """Apply batches until every shard returns nothing new; the records applied."""
    started = time.monotonic()
    applied = 0
    while True:
        batch = apply_batch(link, limit)
        if not batch.is_applying or not batch.records:
            return applied
        applied += batch.records
        if time.monotonic() - started > timeout:
            raise DrainTimeout(f"{link.feed.name} did not catch up within {timeout:.0f}s")


def lag(link: ItemsLink) -> Lag:
    """Records of rows read but not applied, counting at most one page per shard, and the age
    of the oldest of them (records of items that hold no row, counts and counters, are not the
    feed's work: they are not lag)."""
    saved = saved_positions(link.monolith, link.feed.name)
    arn = stream_arn(link)
    waiting = 0
    oldest: float | None = None
    for shard in shards(link, arn):
        position = saved.get(shard["ShardId"])
        if position is not None and position.is_finished:
            continue
        records, _ = _read(link, arn, shard["ShardId"], _after(position), PAGE)
        records = [record for record in records if _named(link, [record])[0]]
        waiting += len(records)
        created = _created(records[0]) if records else None
        if created is not None:
            oldest = created if oldest is None else min(oldest, created)
    return Lag(waiting, 0.0 if oldest is None else max(0.0, time.time() - oldest))


class ReverseSettings(BaseSettings):
    """The reverse feed's process; the context's table is `NAME_TABLE`, AWS is boto3's own."""

    model_config = SettingsConfigDict(env_prefix="REVERSE_", extra="ignore")

    monolith_database_url: str = Field(
        validation_alias=AliasChoices("REVERSE_MONOLITH_DATABASE_URL", "MONOLITH_DATABASE_URL")
    )
    batch_records: int = Field(default=100, ge=1, le=1000)
    idle_seconds: float = Field(default=0.2, gt=0)
    retry_seconds: float = Field(default=1.0, gt=0)
    log_level: str = "INFO"


def main(argv: Sequence[str] | None = None) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from strangler.events.process import stop_on_signals
    from strangler.workspace import find_workspace

    parser = argparse.ArgumentParser(prog="python -m strangler.serverless.data.reverse")
    parser.add_argument("context", help="a serverless context, e.g. polls")
    arguments = parser.parse_args(argv)
    settings = ReverseSettings()  # type: ignore[call-arg]  # required fields come from the env
    configure_logging(f"{arguments.context}-reverse-feed", settings.log_level)
    stopping = stop_on_signals()
    link = ItemsLink.open(find_workspace(), arguments.context, settings.monolith_database_url)
    try:
        ensure_positions(link.monolith)
        while not stopping.is_set():
            try:
                batch = apply_batch(link, settings.batch_records)
            except (SQLAlchemyError, BotoCoreError, ClientError) as error:
                log.warning("batch failed; retrying", error=str(error).splitlines()[0])
                stopping.wait(settings.retry_seconds)
                continue
            if not batch.records:
                stopping.wait(settings.idle_seconds)
                continue
            log.info(
                "batch applied",
                feed=link.feed.name,
                shard=batch.shard_id,
                records=batch.records,
                upserted=batch.upserted,
                deleted=batch.deleted,
            )
    finally:
        link.close()


if __name__ == "__main__":
    main()
