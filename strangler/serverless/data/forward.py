"""The forward feed of a serverless context: the monolith's changed rows into its DynamoDB table.

`start` installs the capture triggers of the link's feed (`polls-dynamodb`) on the monolith and
creates the feed's position item in the bookkeeping table. A batch then reads the next window
of the change log (in commit order, as `strangler.datapath.change_log` reads it), re-reads the
rows its entries name from the monolith in the same snapshot (their current state: a replayed
or late entry writes the current row again, so it is harmless), and commits ONE
`TransactWriteItems`: a Put of every existing row's item, a Delete of every item whose row the
monolith no longer has, and the Put of the next position conditioned on the position's
`version` as read. Two appliers (the sync and a cutover's drain) therefore never interleave a
stale row: the loser's whole transaction is refused and it reads again. Nothing is applied
until the backfill is complete and the position is active.

Deletes: the key of a deleted option's or vote's item needs its poll and position or user,
which the log (keys only) does not hold once the row is gone. A batch that names a row the
monolith no longer has therefore finds its items by a strongly consistent, paginated Scan of the
context's table filtered on `table` (the cost of having no index: one read of the whole table
per such batch; batches of inserts and updates need none, since an item's key never changes
while its row lives: the mapping's contract). Keeping each row's last item key in the
bookkeeping table would cost no Scan but two actions a row, halving every transaction; deletes
are rare here, so the Scan was chosen. The Scan runs after the position is read, so a
concurrent applier's commit refuses this batch's transaction. Verify's repair looks up the
items of every row it rewrites, so a misplaced or doubled item is removed there.

Limits: a transaction holds at most `TRANSACTION_ITEMS` (99) item actions besides the
position, keys deduplicated; a window whose actions exceed that is cut into several
transactions in `seq` order, each moving the position only past the entries it applied. An
item key that any row of the window is Put to is never deleted in it, whichever transaction
deletes it. This module must never write the monolith's rows or copy a table wholesale.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from strangler.datapath import capture, change_log, rows
from strangler.datapath.contexts import Direction
from strangler.datapath.keys import Key, KeyColumns
from strangler.datapath.positions import Position
from strangler.serverless.data import backfill, sequences
from strangler.serverless.data.link import (
    BOOKKEEPING_KEY,
    TRANSACTION_ITEMS,
    Item,
    ItemsLink,
    Row,
    transact,
)

POSITION_PREFIX = "position#"
DEFAULT_LIMIT = 500
ATTEMPTS = 8  # a refused transaction is read and tried again this many times


class NotStarted(RuntimeError):
    """The forward feed has no position: `start` it first."""


class DrainTimeout(RuntimeError):
    """The feed did not catch up within the time allowed."""


@dataclass(frozen=True)
class Stored:
    """A position as the bookkeeping table holds it, with the version its writes are
    conditioned on."""

    position: Position
    version: int


@dataclass(frozen=True)
class Batch:
    """What one `apply_batch` did."""

    is_applying: bool  # false: the position is inactive or the backfill is not complete
    entries: int = 0
    put: int = 0
    deleted: int = 0
    transactions: int = 0
    refused: int = 0  # transactions another applier's commit refused (each read again)
    is_opened: bool = False
    is_closed: bool = True
    captured_at: list[float] = field(default_factory=list)


def position_name(link: ItemsLink) -> str:
    return POSITION_PREFIX + link.feed.position_key(Direction.FORWARD)


def _capture_installed(link: ItemsLink) -> bool:
    return capture.is_installed(link.monolith, link.feed, Direction.FORWARD)


# The position item ------------------------------------------------------------------------


def _text(value: str | None) -> dict[str, Any]:
    return {"NULL": True} if value is None else {"S": value}


def _position_item(link: ItemsLink, stored: Stored) -> Item:
    position = stored.position
    return {
        BOOKKEEPING_KEY: {"S": position_name(link)},
        "is_active": {"BOOL": position.is_active},
        "low": _text(position.low),
        "high": _text(position.high),
        "after_seq": {"N": str(position.after_seq)},
        "applied_entries": {"N": str(position.applied_entries)},
        "version": {"N": str(stored.version)},
        "updated_at": {"N": repr(time.time())},
    }


def _from_item(link: ItemsLink, item: Item) -> Stored:
    def text(name: str) -> str | None:
        return None if "S" not in item[name] else str(item[name]["S"])

    position = Position(
        link.feed.position_key(Direction.FORWARD),
        bool(item["is_active"]["BOOL"]),
        text("low"),
        text("high"),
        int(item["after_seq"]["N"]),
        int(item["applied_entries"]["N"]),
    )
    return Stored(position, int(item["version"]["N"]))


def read_position(link: ItemsLink) -> Stored | None:
    """The feed's position and its version, read strongly consistently (None: not started)."""
    found = link.dynamodb.get_item(
        TableName=link.bookkeeping,
        Key={BOOKKEEPING_KEY: {"S": position_name(link)}},
        ConsistentRead=True,
    ).get("Item")
    return None if found is None else _from_item(link, found)


def position_put(link: ItemsLink, seen: Stored | None, following: Position) -> dict[str, Any]:
    """The transaction action that saves `following`, refused unless the position is still
    at the version `seen` (None: refused unless there is no position)."""
    version = 0 if seen is None else seen.version + 1
    put: dict[str, Any] = {
        "TableName": link.bookkeeping,
        "Item": _position_item(link, Stored(following, version)),
    }
    if seen is None:
        put["ConditionExpression"] = "attribute_not_exists(#name)"
        put["ExpressionAttributeNames"] = {"#name": BOOKKEEPING_KEY}
    else:
        put["ConditionExpression"] = "version = :seen"
        put["ExpressionAttributeValues"] = {":seen": {"N": str(seen.version)}}
    return {"Put": put}


def _save_position(link: ItemsLink, seen: Stored | None, following: Position) -> bool:
    """Save `following` alone, conditioned like a batch; False when refused."""
    return transact(link, [position_put(link, seen, following)])


# Starting and stopping ---------------------------------------------------------------------


def start(link: ItemsLink) -> bool:
    """Capture the feed on the monolith and create its position; False when both exist.

    A fresh capture starts from an empty log, so its position starts at the beginning and
    any earlier backfill is forgotten (writes made while nothing captured them never reached
    the items): the next backfill copies everything again.
    """
    return _capture_afresh(link, backfill.forget, is_active_wanted=False)


def _capture_afresh(
    link: ItemsLink, settle_backfill: Callable[[ItemsLink], None], is_active_wanted: bool
) -> bool:
    """Replace the capture and the position with fresh ones unless both exist (and the
    position is active, when `is_active_wanted`); False when they did. `settle_backfill`
    says what the items hold meanwhile: forgotten (copy again) or complete."""
    link.ensure_bookkeeping()
    for _ in range(ATTEMPTS):
        stored = read_position(link)
        is_kept = stored is not None and (stored.position.is_active or not is_active_wanted)
        if is_kept and _capture_installed(link):
            return False
        if stored is not None and stored.position.is_active:
            # No applier may read a log being replaced.
            _save_position(link, stored, replace(stored.position, is_active=False))
            continue
        capture.remove(link.monolith, link.feed, Direction.FORWARD)  # a log of the past goes
        settle_backfill(link)
        capture.install(link.monolith, link.feed, Direction.FORWARD)
        fresh = Position(link.feed.position_key(Direction.FORWARD))
        if _save_position(link, stored, fresh):
            return True
    raise RuntimeError(f"the position of {link.feed.name} kept changing; is another start running?")


def set_active(link: ItemsLink, is_active: bool) -> None:
    """Pause or resume applying, the position and the capture kept (a cutover stops the feed
    this way under its freeze, and puts it back if it must undo before its flip). The version
    moves, so an applier in flight is refused."""
    for _ in range(ATTEMPTS):
        stored = read_position(link)
        if stored is None:
            raise NotStarted(f"{link.feed.name} was never started")
        if stored.position.is_active is is_active:
            return
        if _save_position(link, stored, replace(stored.position, is_active=is_active)):
            return
    raise RuntimeError(f"the position of {link.feed.name} kept changing")


def remove_capture(link: ItemsLink) -> None:
    """Drop the triggers and the log of the feed (after a cutover's flip: the monolith no
    longer takes the context's writes); the position stays, inactive."""
    capture.remove(link.monolith, link.feed, Direction.FORWARD)


def resume(link: ItemsLink) -> None:
    """Capture again over items known to equal the monolith's rows (a rollback, under its
    freeze, after the reverse feed drained and verify found both sides equal): a fresh log, a
    fresh active position, the backfill counted complete, so nothing is copied again."""
    _capture_afresh(link, backfill.mark_complete, is_active_wanted=True)


def stop(link: ItemsLink) -> None:
    """Remove the capture and deactivate the position (idempotent); the backfill is forgotten,
    since writes made from now on never reach the items."""
    capture.remove(link.monolith, link.feed, Direction.FORWARD)
    for _ in range(ATTEMPTS):
        stored = read_position(link)
        if stored is None or not stored.position.is_active:
            break
        if _save_position(link, stored, replace(stored.position, is_active=False)):
            break
    backfill.forget(link)


# Finding the items of rows -----------------------------------------------------------------


RowKey = tuple[str, Key]  # (the monolith's table, the row's key)


def _key_columns(link: ItemsLink, table: str) -> KeyColumns:
    mapping = link.feed.table(table, Direction.FORWARD)
    return KeyColumns(link.tables[table], mapping.key)


def scan_items(link: ItemsLink, tables: Iterable[str] | None = None) -> Iterator[Item]:
    """Every item of the context's table (holding a row of `tables`, when given): a paginated,
    strongly consistent Scan."""
    arguments: dict[str, Any] = {"TableName": link.table_name, "ConsistentRead": True}
    wanted = sorted(set(tables)) if tables is not None else None
    if wanted:
        names = ", ".join(f":t{index}" for index in range(len(wanted)))
        arguments["FilterExpression"] = f"#table IN ({names})"
        arguments["ExpressionAttributeNames"] = {"#table": "table"}
        arguments["ExpressionAttributeValues"] = {
            f":t{index}": {"S": name} for index, name in enumerate(wanted)
        }
    for page in link.dynamodb.get_paginator("scan").paginate(**arguments):
        yield from page.get("Items", [])


def row_key_of_item(link: ItemsLink, item: Item) -> tuple[RowKey, Row] | None:
    """The (table, key) and row an item holds, or None for an item of no row of the feed."""
    found = link.mapping.row_of_item(item)
    if found is None or found[0] not in link.tables:
        return None
    table, row = found
    key = link.feed.table(table, Direction.FORWARD).key
    return (table, tuple(row[column] for column in key)), row


def items_of(link: ItemsLink, wanted: set[RowKey]) -> dict[RowKey, list[Item]]:
    """The keys of the items now holding each wanted row (usually one; none when missing)."""
    found: dict[RowKey, list[Item]] = {}
    for item in scan_items(link, {table for table, _ in wanted}):
        held = row_key_of_item(link, item)
        if held is not None and held[0] in wanted:
            found.setdefault(held[0], []).append(link.key_of(item))
    return found


# Planning and committing -------------------------------------------------------------------


def _identity(key: Item) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, repr(value)) for name, value in key.items()))


@dataclass
class _Plan:
    """The actions that make each named row's items the monolith's current row."""

    actions: dict[RowKey, list[dict[str, Any]]]  # each row's Puts and Deletes
    identities: dict[RowKey, list[tuple[tuple[str, str], ...]]]


def _plan(link: ItemsLink, current: dict[RowKey, Row | None], is_repair: bool = False) -> _Plan:
    """A repair finds the items of every row it names (one may be misplaced or doubled); the
    feed only those of rows that are gone, since an item's key never changes while its row
    lives (the mapping's contract, `link.ItemMapping`): most batches need no Scan."""
    looked_for = set(current) if is_repair else {named for named, row in current.items() if not row}
    held = items_of(link, looked_for) if looked_for else {}
    items = {
        named: link.mapping.item_of_row(named[0], row)
        for named, row in current.items()
        if row is not None
    }
    put_to = {_identity(link.key_of(item)) for item in items.values()}
    plan = _Plan({}, {})
    for named in current:
        actions: list[dict[str, Any]] = []
        identities = []
        if named in items:
            actions.append({"Put": {"TableName": link.table_name, "Item": items[named]}})
            identities.append(_identity(link.key_of(items[named])))
        for key in held.get(named, []):
            identity = _identity(key)
            if identity in put_to:
                continue  # the Put overwrites it, or another row of this window owns it now
            actions.append({"Delete": {"TableName": link.table_name, "Key": key}})
            identities.append(identity)
        plan.actions[named], plan.identities[named] = actions, identities
    return plan


def _current_rows(
    connection: Any, link: ItemsLink, named: Iterable[RowKey]
) -> dict[RowKey, Row | None]:
    """Each named row as the monolith holds it now (None: gone), in the order named."""
    wanted: dict[str, list[Key]] = {}
    order = list(dict.fromkeys(named))
    for table, key in order:
        wanted.setdefault(table, []).append(key)
    present: dict[RowKey, Row] = {}
    for table, keys in wanted.items():
        mapping = link.feed.table(table, Direction.FORWARD)
        for row in rows.fetch_keys(connection, _key_columns(link, table), mapping.columns, keys):
            present[(table, tuple(row[column] for column in mapping.key))] = row
    return {named_row: present.get(named_row) for named_row in order}


def _groups(plan: _Plan, order: list[list[RowKey]]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Cut `order` (the rows each entry names, in `seq` order) into transactions of at most
    TRANSACTION_ITEMS actions: (entries covered, actions)."""
    actions: list[dict[str, Any]] = []
    taken: set[tuple[tuple[str, str], ...]] = set()
    covered = 0
    for index, named in enumerate(order):
        adding = [
            (identity, action)
            for row in named
            for identity, action in zip(plan.identities[row], plan.actions[row], strict=True)
        ]
        fresh = {identity: action for identity, action in adding if identity not in taken}
        if actions and len(taken) + len(fresh) > TRANSACTION_ITEMS:
            yield index - covered, actions
            covered, actions, taken = index, [], set()
            fresh = dict(adding)
        if len(fresh) > TRANSACTION_ITEMS:
            raise ValueError("one entry needs more actions than a transaction holds")
        taken.update(fresh)
        actions.extend(fresh.values())
    yield len(order) - covered, actions


def _count(actions: list[dict[str, Any]], kind: str) -> int:
    return sum(1 for action in actions if kind in action)


# Applying ------------------------------------------------------------------------------------


def is_ready(link: ItemsLink, stored: Stored | None) -> bool:
    return stored is not None and stored.position.is_active and backfill.is_complete(link)


def apply_batch(link: ItemsLink, limit: int = DEFAULT_LIMIT) -> Batch:
    """Apply the next (at most `limit`) entries of the log; see the module's docstring. A
    transaction another applier's commit refused is read again, up to ATTEMPTS times."""
    refused = 0
    for _ in range(ATTEMPTS):
        batch = _apply_once(link, limit)
        refused += batch.refused
        if batch.refused == 0 or batch.transactions > batch.refused:
            return replace(batch, refused=refused)
        time.sleep(0.01 * refused)
    return Batch(True, refused=refused, is_closed=False)


def _apply_once(link: ItemsLink, limit: int) -> Batch:
    seen = read_position(link)
    if seen is None or not is_ready(link, seen):
        return Batch(False)
    with change_log.reading(link.monolith) as reader:
        window = change_log.read(reader, link.feed.name, seen.position, limit)
        if not window.entries and seen.position.high is None:
            return Batch(True, is_opened=window.is_opened)  # nothing new, nothing to move
        order = [[(entry.table_name, _decode(link, entry))] for entry in window.entries]
        current = _current_rows(reader, link, (row for named in order for row in named))
    plan = _plan(link, current)
    # A window cut short moves the position only past the entries committed.
    high = window.position.high if window.position.high is not None else window.position.low
    stored, done, put, deleted, transactions = seen, 0, 0, 0, 0
    groups = list(_groups(plan, order))
    for index, (entries, actions) in enumerate(groups):
        done += entries
        following = window.position
        if index < len(groups) - 1:
            last = window.entries[done - 1].seq
            following = replace(seen.position, after_seq=last)
            if link.monolith.dialect.name == "postgresql":
                following = replace(following, high=high)
        following = replace(following, applied_entries=seen.position.applied_entries + done)
        transactions += 1
        if not transact(link, [*actions, position_put(link, stored, following)]):
            applied = window.entries[: done - entries]
            return Batch(True, len(applied), put, deleted, transactions, 1, window.is_opened,
                         False, [entry.captured_at for entry in applied])  # fmt: skip
        stored = Stored(following, stored.version + 1)
        put += _count(actions, "Put")
        deleted += _count(actions, "Delete")
    return Batch(True, len(window.entries), put, deleted, transactions, 0, window.is_opened,
                 window.is_closed, [entry.captured_at for entry in window.entries])  # fmt: skip


def _decode(link: ItemsLink, entry: change_log.Entry) -> Key:
    return _key_columns(link, entry.table_name).decode(entry.row_key)


@dataclass
class Rewritten:
    rows: int = 0
    put: int = 0
    deleted: int = 0
    transactions: int = 0
    refused: int = 0


def rewrite(link: ItemsLink, keys: dict[str, set[Key]]) -> Rewritten:
    """Make the items of exactly these rows (by the monolith's table) the monolith's current
    rows, through the forward apply's conditioned transaction: the position is Put again at
    its next version, so a sync in flight cannot interleave an older row (for verify's repair).
    """
    report = Rewritten(rows=sum(len(wanted) for wanted in keys.values()))
    named = [[(table, key)] for table in keys for key in sorted(keys[table])]
    for _ in range(ATTEMPTS):
        seen = read_position(link)
        if seen is None:
            raise NotStarted(f"{link.feed.name} has no position: start the forward feed first")
        with link.monolith.connect() as reader:
            current = _current_rows(reader, link, (row for group in named for row in group))
        plan, stored = _plan(link, current, is_repair=True), seen
        for _entries, actions in _groups(plan, named):
            report.transactions += 1
            if not transact(link, [*actions, position_put(link, stored, stored.position)]):
                report.refused += 1
                break
            stored = Stored(stored.position, stored.version + 1)
            report.put += _count(actions, "Put")
            report.deleted += _count(actions, "Delete")
        else:
            return report
    raise RuntimeError(f"the position of {link.feed.name} kept changing during a repair")


def drain(link: ItemsLink, timeout: float = 120.0, limit: int = DEFAULT_LIMIT) -> int:
    """Apply batches until caught up with every commit made before the call; the entries
    applied. Once caught up, each id counter item is raised to the monolith's largest id."""
    started = time.monotonic()
    applied = 0
    has_fresh_window = False
    while True:
        batch = apply_batch(link, limit)
        if not batch.is_applying:
            return applied
        applied += batch.entries
        has_fresh_window = has_fresh_window or batch.is_opened
        if has_fresh_window and batch.is_closed:
            break
        if time.monotonic() - started > timeout:
            raise DrainTimeout(f"{link.feed.name} did not catch up within {timeout:.0f}s")
    sequences.raise_item_counters(link)
    return applied


def keys_since(link: ItemsLink, mark: Position) -> dict[str, set[Key]]:
    """The rows the log names after `mark` (a position read earlier), applied or not, by the
    monolith's table: what changed since, for a verify of only those keys."""
    found: dict[str, set[Key]] = {}
    with change_log.reading(link.monolith) as reader:
        position = mark
        while True:
            window = change_log.read(reader, link.feed.name, position, DEFAULT_LIMIT)
            for entry in window.entries:
                found.setdefault(entry.table_name, set()).add(_decode(link, entry))
            if window.is_closed and window.is_opened:  # read up to a snapshot taken here
                return found
            position = window.position


def lag(link: ItemsLink) -> change_log.Lag | None:
    """Entries committed on the monolith and not yet applied, and the oldest one's age
    (None: the feed is not started)."""
    stored = read_position(link)
    if stored is None:
        return None
    return change_log.lag(link.monolith, link.feed.name, stored.position)
