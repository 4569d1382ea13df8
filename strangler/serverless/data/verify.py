"""Verify a serverless context's items against the monolith's rows: counts and range checksums.

The monolith's rows of each table are read in key-ordered ranges of N rows (`after < key <=
upto`, the last range open-ended). The items are read by a paginated, strongly consistent Scan
of the context's table; `row_of_item` turns each into its table and row (None: an item of no
row, such as counts and sequences, skipped), and each row is placed in the range its key falls
in. Both sides' rows are reduced to digests by `strangler.datapath.verify.Canon` over the
monolith's `Table`, so an item's text timestamp and the SQL datetime render alike; a range's
checksum is the digest of its rows' digests in key order. An item kept under a key other than
its row's item key, or a row held by two items, counts as changed. The report gives per table
the counts on both sides, and each range that differs with the keys missing from the items,
extra in them, and changed. `repair` re-puts or deletes exactly those keys through the forward
apply's conditioned transaction, so the sync cannot interleave an older row. Under live writes
a difference may be only lag: verify again after a drain. This module must never change the
monolith's data.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from strangler.datapath import rows
from strangler.datapath.contexts import TableMap
from strangler.datapath.keys import Key, KeyColumns
from strangler.datapath.verify import Canon, chunk_digest
from strangler.serverless.data import forward
from strangler.serverless.data.link import ItemsLink, Row

DEFAULT_RANGE_ROWS = 1000
SETTLE_ROUNDS = 3  # drains before a difference under live writes counts
_MISPLACED = b"misplaced"


@dataclass(frozen=True)
class RangeDifference:
    """A key range `after < key <= upto` (open ends are None) of one table that differs."""

    table: str
    after: Key | None
    upto: Key | None
    rows: int  # the monolith's rows in the range
    items: int  # the items holding rows of the range
    missing: tuple[Key, ...]  # rows that have no item
    extra: tuple[Key, ...]  # items of rows the monolith does not have
    changed: tuple[Key, ...]  # items that differ from their row (or are misplaced, or doubled)

    @property
    def keys(self) -> tuple[Key, ...]:
        return (*self.missing, *self.extra, *self.changed)

    def describe(self) -> str:
        start = "start" if self.after is None else str(self.after)
        end = "end" if self.upto is None else str(self.upto)
        return (
            f"{self.table} ({start}, {end}]: {self.rows} rows, {self.items} items;"
            f" missing {list(self.missing)}, extra {list(self.extra)},"
            f" changed {list(self.changed)}"
        )


@dataclass(frozen=True)
class TableCount:
    table: str
    rows: int
    items: int


@dataclass
class ItemsReport:
    counts: dict[str, TableCount] = field(default_factory=dict)
    ranges: int = 0
    differences: list[RangeDifference] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def is_equal(self) -> bool:
        return not self.differences and all(
            count.rows == count.items for count in self.counts.values()
        )


Digests = dict[Key, bytes]


def _canon(link: ItemsLink, table: TableMap) -> Canon:
    return Canon(link.tables[table.monolith], table.columns)


def _digest(canon: Canon, table: TableMap, row: Row) -> bytes:
    return canon.digest([row[column] for column in table.columns])


def _monolith_ranges(
    link: ItemsLink, table: TableMap, range_rows: int
) -> list[tuple[Key | None, Key | None, Digests]]:
    """The monolith's rows of `table` as (after, upto, digests) in key order."""
    keys = KeyColumns(link.tables[table.monolith], table.key)
    source = link.tables[table.monolith]
    canon = _canon(link, table)
    ranges: list[tuple[Key | None, Key | None, Digests]] = []
    after: Key | None = None
    with link.monolith.connect() as reader:
        dialect = reader.dialect.name
        while True:
            query = (
                select(*(source.c[name] for name in table.columns))
                .where(keys.within(dialect, after, None))
                .order_by(*keys.order_by(dialect))
                .limit(range_rows)
            )
            found = [dict(row) for row in reader.execute(query).mappings()]
            digests = {
                tuple(row[c] for c in table.key): _digest(canon, table, row) for row in found
            }
            if len(found) < range_rows:
                ranges.append((after, None, digests))
                return ranges
            upto = tuple(found[-1][c] for c in table.key)
            ranges.append((after, upto, digests))
            after = upto


def _items_by_table(link: ItemsLink) -> tuple[dict[str, dict[Key, list[bytes]]], dict[str, int]]:
    """Each table's rows as the items hold them: key -> digests (more than one: doubled),
    and the number of items of each table."""
    digests: dict[str, dict[Key, list[bytes]]] = {t.monolith: {} for t in link.feed.tables}
    counts = dict.fromkeys(digests, 0)
    canons = {table.monolith: (table, _canon(link, table)) for table in link.feed.tables}
    for item in forward.scan_items(link):
        held = forward.row_key_of_item(link, item)
        if held is None:
            continue
        (name, key), row = held
        table, canon = canons[name]
        digest = _digest(canon, table, row)
        if link.key_of(link.mapping.item_of_row(name, row)) != link.key_of(item):
            digest += _MISPLACED
        digests[name].setdefault(key, []).append(digest)
        counts[name] += 1
    return digests, counts


def _compare(
    table: str, after: Key | None, upto: Key | None, ours: Digests, theirs: dict[Key, list[bytes]]
) -> RangeDifference | None:
    single = {key: found[0] for key, found in theirs.items() if len(found) == 1}
    items = sum(len(found) for found in theirs.values())
    ordered_ours = [ours[key] for key in sorted(ours)]
    ordered_theirs = [single.get(key, b"") for key in sorted(theirs)]
    if (len(ours) == items == len(single)
            and chunk_digest(ordered_ours) == chunk_digest(ordered_theirs)):  # fmt: skip
        return None
    missing = tuple(sorted(key for key in ours if key not in theirs))
    extra = tuple(sorted(key for key in theirs if key not in ours))
    changed = tuple(sorted(key for key in ours if key in theirs and single.get(key) != ours[key]))
    if not (missing or extra or changed):
        return None
    return RangeDifference(table, after, upto, len(ours), items, missing, extra, changed)


def verify(link: ItemsLink, range_rows: int = DEFAULT_RANGE_ROWS) -> ItemsReport:
    """Compare every table of the feed, the monolith's rows against the items."""
    started = time.perf_counter()
    report = ItemsReport()
    items, counts = _items_by_table(link)
    for table in link.feed.tables:
        ranges = _monolith_ranges(link, table, range_rows)
        uptos = [upto for _, upto, _ in ranges[:-1] if upto is not None]
        placed: list[dict[Key, list[bytes]]] = [{} for _ in ranges]
        for key, digests in items[table.monolith].items():
            placed[bisect.bisect_left(uptos, key)][key] = digests
        rows = 0
        for (after, upto, ours), theirs in zip(ranges, placed, strict=True):
            rows += len(ours)
            found = _compare(table.monolith, after, upto, ours, theirs)
            if found is not None:
                report.differences.append(found)
        report.counts[table.monolith] = TableCount(table.monolith, rows, counts[table.monolith])
        report.ranges += len(ranges)
    report.seconds = time.perf_counter() - started
    return report


def verify_drained(
    link: ItemsLink, drain: Callable[[], object], rounds: int = SETTLE_ROUNDS
) -> ItemsReport:
    """`verify`; while it differs, `drain` the feed that keeps the replica current and look
    again, `rounds` times at most (under live writes a difference may only be lag)."""
    report = verify(link)
    for _ in range(rounds):
        if report.is_equal:
            break
        drain()
        report = verify(link)
    return report


def repair(link: ItemsLink, report: ItemsReport) -> forward.Rewritten:
    """Re-put or delete exactly the keys the report names, under the forward position."""
    keys: dict[str, set[Key]] = {}
    for difference in report.differences:
        keys.setdefault(difference.table, set()).update(difference.keys)
    return forward.rewrite(link, keys)


GET_KEYS = 100  # BatchGetItem's limit


def verify_keys(link: ItemsLink, keys: dict[str, set[Key]]) -> ItemsReport:
    """Compare exactly these rows (by the monolith's table) with their items: what a freeze can
    afford, where `verify` reads everything. A row the monolith no longer has must have no
    item, which only a Scan can tell (no index): done only when such a row is named."""
    started = time.perf_counter()
    report = ItemsReport()
    for table in link.feed.tables:
        wanted = sorted(keys.get(table.monolith, set()))
        if not wanted:
            continue
        canon = _canon(link, table)
        with link.monolith.connect() as reader:
            found = rows.fetch_keys(
                reader, KeyColumns(link.tables[table.monolith], table.key), table.columns, wanted
            )
        ours = {tuple(row[c] for c in table.key): row for row in found}
        theirs = _items_by_key(link, table, ours)
        gone = [key for key in wanted if key not in ours]
        if gone:
            held = forward.items_of(link, {(table.monolith, key) for key in gone})
            for (_, key), items in held.items():
                theirs[key] = [b"extra"] * len(items)
        digests = {key: _digest(canon, table, row) for key, row in ours.items()}
        difference = _compare(table.monolith, None, None, digests, theirs)
        if difference is not None:
            report.differences.append(difference)
        report.counts[table.monolith] = TableCount(
            table.monolith, len(ours), sum(len(found) for found in theirs.values())
        )
        report.ranges += 1
    report.seconds = time.perf_counter() - started
    return report


def _items_by_key(link: ItemsLink, table: TableMap, ours: dict[Key, Row]) -> dict[Key, list[bytes]]:
    """The digest of the row each of these rows' items holds, read by the item's key."""
    canon = _canon(link, table)
    placed = {key: link.key_of(link.mapping.item_of_row(table.monolith, row))
              for key, row in ours.items()}  # fmt: skip
    by_item = {repr(sorted(item_key.items())): key for key, item_key in placed.items()}
    item_keys = list(placed.values())
    found: dict[Key, list[bytes]] = {}
    for start in range(0, len(item_keys), GET_KEYS):
        wanted = {"Keys": item_keys[start : start + GET_KEYS], "ConsistentRead": True}
        pending: dict[str, Any] = {link.table_name: wanted}
        while pending:
            answer = link.dynamodb.batch_get_item(RequestItems=pending)
            for item in answer.get("Responses", {}).get(link.table_name, []):
                held = forward.row_key_of_item(link, item)
                key = by_item[repr(sorted(link.key_of(item).items()))]
                if held is None or held[0] != (table.monolith, key):
                    found[key] = [_MISPLACED]
                else:
                    found[key] = [_digest(canon, table, held[1])]
            pending = answer.get("UnprocessedKeys") or {}
    return found
