"""Concurrent writers on the `library` tables: every shape, written where its data's owner is.

Each writer is a thread writing small transactions as an app's requests would: accounts keyed
by new UUIDs, tags keyed by text from all over Unicode, documents that reference an account,
another document (often a newer one) or nothing, tags put on and taken off documents (the
association table), numbered revisions (a composite key), and documents deleted with what
hangs on them. Through a `FakeProxy` a writer waits out freezes and writes to whichever side
owns the data, in that side's column names. The ledger keeps every acknowledged insert by key
(monolith table names), and every key ever deleted, so a test can tell a lost write.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, MetaData, Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from strangler.datapath.link import Link
from strangler_proxy.table import DataOwner
from tests.data.fake_proxy import FakeProxy

# Text from all over Unicode: accents, CJK, right-to-left, combining marks, emoji with joiners
# and skin tones, astral planes, zero-width and control-ish characters (no NUL: PostgreSQL
# text cannot hold it).
WORDS = [
    "café", "naïve", "Ωmega", "日本語", "中文", "한국어", "עברית", "العربية", "e\u0301", "👩‍👩‍👧",
    "👍🏽", "\U0001d518\U0001d52b\U0001d526", "𐍈", "zero\u200bwidth", "tab\tand\nnewline",
    "quote\"'`", "back\\slash",
    "Zebra", "apple", "_under", "~tilde", "ß", "İ", "ﬁ",
]  # fmt: skip
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-7))]
# Refusals a writer's own race earns (it picked a row another writer deleted meanwhile): the
# write fails whole and is never acknowledged, as an app's request would.
RETRYABLE = ("deadlock detected", "could not serialize", "FOREIGN KEY constraint failed",
             "violates foreign key constraint")  # fmt: skip


def words(chance: random.Random, count: int = 3) -> str:
    return " ".join(chance.choice(WORDS) for _ in range(count))


@dataclass
class Ledger:
    """Acknowledged inserts and every deleted key, by monolith table name."""

    created: dict[str, set[tuple[Any, ...]]] = field(default_factory=lambda: defaultdict(set))
    deleted: dict[str, set[tuple[Any, ...]]] = field(default_factory=lambda: defaultdict(set))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expected(self, table: str) -> set[tuple[Any, ...]]:
        """Keys acknowledged as created and never deleted (nor hanging on a deleted document)."""
        gone_documents = {key[0] for key in self.deleted["documents"]}
        kept = self.created[table] - self.deleted[table]
        if table in ("document_tags", "revisions"):
            kept = {key for key in kept if key[0] not in gone_documents}
        return kept


class Side:
    """One database's tables, under the names that side gives them."""

    def __init__(self, schema: MetaData, is_service: bool) -> None:
        self.tables = schema.tables
        self.is_service = is_service
        self.title = "heading" if is_service else "title"

    def table(self, name: str) -> Table:
        return self.tables[name]


@dataclass
class ShapeWriters:
    """`count` threads writing until `stop()`; `done` counts acknowledged writes by kind."""

    link: Link
    gate: FakeProxy | None = None
    count: int = 3
    seed: int = 11
    done: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> ShapeWriters:
        for number in range(self.count):
            thread = threading.Thread(target=self._write, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not self.errors, self.errors[:3]

    def wait_for(self, operations: int, timeout: float = 120) -> None:
        target = sum(self.done.values()) + operations
        deadline = time.monotonic() + timeout
        while sum(self.done.values()) < target:
            assert time.monotonic() < deadline, f"writers made {dict(self.done)} only"
            assert not self.errors, self.errors[:3]
            time.sleep(0.01)

    def _sides(self) -> dict[DataOwner, tuple[Any, Side]]:
        context = self.link.context
        return {
            DataOwner.MONOLITH: (self.link.monolith, Side(context.monolith_schema, False)),
            DataOwner.SERVICE: (self.link.service, Side(context.service_schema, True)),
        }

    def _write(self, number: int) -> None:
        chance = random.Random(self.seed * 100 + number)
        sides = self._sides()
        kinds = list(ACTIONS)
        weights = [ACTIONS[kind][1] for kind in kinds]
        while not self._stopping.is_set():
            kind = chance.choices(kinds, weights)[0]
            try:
                if self.gate is None:
                    self._one(sides[DataOwner.MONOLITH], kind, chance)
                else:
                    with self.gate.writing() as owner:
                        self._one(sides[owner], kind, chance)
            except DBAPIError as error:
                if any(text in str(error) for text in RETRYABLE):
                    self.retried[kind] += 1  # refused whole: nothing was acknowledged
                else:
                    self.errors.append(f"{kind}: {error}")
            time.sleep(chance.uniform(0, 0.003))

    def _one(self, where: tuple[Any, Side], kind: str, chance: random.Random) -> None:
        engine, side = where
        records: list[tuple[str, str, tuple[Any, ...]]] = []
        with engine.begin() as connection:
            ACTIONS[kind][0](connection, side, chance, records)
        with self.ledger.lock:
            for what, table, key in records:
                (self.ledger.created if what == "created" else self.ledger.deleted)[table].add(key)
        self.done[kind] += 1


Records = list[tuple[str, str, tuple[Any, ...]]]


def _random_key(connection: Connection, table: Table, column: str) -> Any:
    return connection.scalar(select(table.c[column]).order_by(func.random()).limit(1))


def _insert(connection: Connection, table: Table) -> Any:
    build = postgres_insert if connection.dialect.name == "postgresql" else sqlite_insert
    return build(table)


def _new_account(connection: Connection, side: Side, chance: random.Random, out: Records) -> None:
    key = uuid.UUID(int=chance.getrandbits(128), version=4)
    zone = chance.choice(ZONES)
    connection.execute(
        side.table("accounts").insert().values(
            id=key, handle=f"h{key.hex[:8]}", display_name=words(chance),
            joined_at=datetime.now(UTC).astimezone(zone).replace(microsecond=chance.randrange(10**6)),
        )
    )  # fmt: skip
    out.append(("created", "accounts", (key,)))


def _rename(connection: Connection, side: Side, chance: random.Random, out: Records) -> None:
    accounts = side.table("accounts")
    key = _random_key(connection, accounts, "id")
    if key is not None:
        statement = update(accounts).where(accounts.c.id == key)
        connection.execute(statement.values(display_name=words(chance, 2)))


def _new_tag(connection: Connection, side: Side, chance: random.Random, out: Records) -> None:
    slug = f"{chance.choice(WORDS)[:20]}-{chance.getrandbits(32):08x}"
    values: dict[str, Any] = {"slug": slug, "label": words(chance)}
    if side.is_service:
        values["origin"] = "service"
    connection.execute(side.table("tags").insert().values(**values))
    out.append(("created", "tags", (slug,)))


def _new_document(connection: Connection, side: Side, chance: random.Random, out: Records) -> None:
    documents = side.table("documents")
    account = (
        _random_key(connection, side.table("accounts"), "id") if chance.random() < 0.8 else None
    )
    parent = _random_key(connection, documents, "id") if chance.random() < 0.5 else None
    attachment = chance.randbytes(chance.randrange(0, 300)) if chance.random() < 0.3 else None
    result = connection.execute(
        documents.insert().values(
            account_id=account, parent_id=parent, body=words(chance, 8), attachment=attachment,
            edited_at=datetime.now(UTC).replace(tzinfo=None), is_public=chance.random() < 0.5,
            **{side.title: words(chance, 2)},
        )
    )  # fmt: skip
    out.append(("created", "documents", tuple(result.inserted_primary_key)))


def _edit(connection: Connection, side: Side, chance: random.Random, out: Records) -> None:
    documents = side.table("documents")
    key = _random_key(connection, documents, "id")
    if key is not None:
        connection.execute(
            update(documents).where(documents.c.id == key).values(
                body=words(chance, 5), edited_at=datetime.now(UTC).replace(tzinfo=None),
                **{side.title: words(chance, 2)},
            )
        )  # fmt: skip


def _reparent(connection: Connection, side: Side, chance: random.Random, out: Records) -> None:
    documents = side.table("documents")
    child, parent = (
        _random_key(connection, documents, "id"),
        _random_key(connection, documents, "id"),
    )
    if child is not None:
        connection.execute(
            update(documents).where(documents.c.id == child).values(parent_id=parent)
        )


def _tag(connection: Connection, side: Side, chance: random.Random, out: Records) -> None:
    document = _random_key(connection, side.table("documents"), "id")
    tag = _random_key(connection, side.table("tags"), "slug")
    if document is None or tag is None:
        return
    statement = _insert(connection, side.table("document_tags"))
    connection.execute(
        statement.values(document_id=document, tag_slug=tag).on_conflict_do_nothing()
    )
    out.append(("created", "document_tags", (document, tag)))


def _untag(connection: Connection, side: Side, chance: random.Random, out: Records) -> None:
    tags = side.table("document_tags")
    row = connection.execute(select(tags).order_by(func.random()).limit(1)).first()
    if row is not None:
        connection.execute(
            delete(tags).where(
                tags.c.document_id == row.document_id, tags.c.tag_slug == row.tag_slug
            )
        )
        out.append(("deleted", "document_tags", (row.document_id, row.tag_slug)))


def _revise(connection: Connection, side: Side, chance: random.Random, out: Records) -> None:
    revisions = side.table("revisions")
    document = _random_key(connection, side.table("documents"), "id")
    if document is None:
        return
    last = connection.scalar(
        select(func.max(revisions.c.number)).where(revisions.c.document_id == document)
    )
    number = int(last or 0) + 1
    zone = chance.choice(ZONES)
    statement = _insert(connection, revisions).values(
        document_id=document, number=number, note=words(chance),
        made_at=datetime.now(UTC).astimezone(zone),
    )  # fmt: skip
    if connection.execute(statement.on_conflict_do_nothing()).rowcount:
        out.append(("created", "revisions", (document, number)))


def _delete_document(
    connection: Connection, side: Side, chance: random.Random, out: Records
) -> None:
    documents = side.table("documents")
    key = _random_key(connection, documents, "id")
    if key is None:
        return
    connection.execute(delete(side.table("document_tags")).where(
        side.table("document_tags").c.document_id == key))  # fmt: skip
    connection.execute(delete(side.table("revisions")).where(
        side.table("revisions").c.document_id == key))  # fmt: skip
    connection.execute(update(documents).where(documents.c.parent_id == key).values(parent_id=None))
    connection.execute(delete(documents).where(documents.c.id == key))
    out.append(("deleted", "documents", (key,)))


Action = Callable[[Connection, Side, random.Random, Records], None]
ACTIONS: dict[str, tuple[Action, int]] = {
    "account": (_new_account, 2),
    "rename": (_rename, 2),
    "tag": (_new_tag, 1),
    "document": (_new_document, 4),
    "edit": (_edit, 3),
    "reparent": (_reparent, 2),
    "tag_document": (_tag, 3),
    "untag": (_untag, 1),
    "revise": (_revise, 3),
    "delete_document": (_delete_document, 1),
}


def seed(link: Link, operations: int = 300, seed_value: int = 5) -> Ledger:
    """Fill the monolith with `operations` writes of every kind (one thread, no gate)."""
    writers = ShapeWriters(link, seed=seed_value)
    chance = random.Random(seed_value)
    side = writers._sides()[DataOwner.MONOLITH]
    for kind in ("account", "tag", "document"):
        for _ in range(10):
            writers._one(side, kind, chance)
    kinds = list(ACTIONS)
    weights = [ACTIONS[kind][1] for kind in kinds]
    for _ in range(operations):
        writers._one(side, chance.choices(kinds, weights)[0], chance)
    return writers.ledger
