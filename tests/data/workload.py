"""Concurrent writers for the data-path tests: inserts, updates and deletes on the monolith.

Each writer is a thread with its own connections, writing the forum's tables (and renaming
users, which the `forum-authors` replica feeds on) in small transactions, as the monolith's
requests do, plus deletes the contract never makes. `same_rows` compares two sides exactly.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import OperationalError

from monolith.models import Post, Thread, User
from strangler.datapath.contexts import Direction, Feed
from strangler.datapath.link import Link
from strangler.plumbing.clock import utcnow


@dataclass
class Writers:
    """`count` threads writing until `stop()`; `done` counts what they did, by kind."""

    engine: Engine
    count: int = 3
    seed: int = 7
    done: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Writers:
        for number in range(self.count):
            thread = threading.Thread(target=self._write, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)
        assert not self.errors, self.errors[:3]

    def wait_for(self, operations: int, timeout: float = 60) -> None:
        """Block until at least `operations` more writes were made (the writers are alive)."""
        target = sum(self.done.values()) + operations
        deadline = time.monotonic() + timeout
        while sum(self.done.values()) < target:
            assert time.monotonic() < deadline, f"writers made {dict(self.done)} only"
            assert not self.errors, self.errors[:3]
            time.sleep(0.01)

    def _write(self, number: int) -> None:
        chance = random.Random(self.seed * 100 + number)
        while not self._stopping.is_set():
            kind = chance.choice(["thread", "post", "post", "edit", "count", "delete", "rename"])
            try:
                with self.engine.begin() as connection:
                    _ACTIONS[kind](connection, chance)
                self.done[kind] += 1
            except OperationalError as error:  # SQLite busy beyond its timeout: say so
                self.errors.append(str(error))
            time.sleep(chance.uniform(0, 0.004))


def _largest(connection: Any, column: Any) -> int:
    return int(connection.scalar(select(func.max(column))) or 1)


def _new_thread(connection: Any, chance: random.Random) -> None:
    author = chance.randint(1, _largest(connection, User.id))
    connection.execute(
        insert(Thread).values(
            title=f"new {chance.random():.6f}", body="b", author_id=author, post_count=0,
            created_at=utcnow(),
        )
    )  # fmt: skip


def _new_post(connection: Any, chance: random.Random) -> None:
    thread = chance.randint(1, _largest(connection, Thread.id))
    author = chance.randint(1, _largest(connection, User.id))
    if connection.scalar(select(Thread.id).where(Thread.id == thread)) is None:
        return
    connection.execute(
        insert(Post).values(thread_id=thread, body="p", author_id=author, created_at=utcnow())
    )
    connection.execute(
        update(Thread).where(Thread.id == thread).values(post_count=Thread.post_count + 1)
    )


def _edit_post(connection: Any, chance: random.Random) -> None:
    post = chance.randint(1, _largest(connection, Post.id))
    connection.execute(update(Post).where(Post.id == post).values(body=f"edited {chance.random()}"))


def _recount(connection: Any, chance: random.Random) -> None:
    thread = chance.randint(1, _largest(connection, Thread.id))
    connection.execute(
        update(Thread).where(Thread.id == thread).values(title=f"retitled {chance.random()}")
    )


def _delete_post(connection: Any, chance: random.Random) -> None:
    post = chance.randint(1, _largest(connection, Post.id))
    connection.execute(delete(Post).where(Post.id == post))


def _rename(connection: Any, chance: random.Random) -> None:
    user = chance.randint(1, _largest(connection, User.id))
    connection.execute(
        update(User).where(User.id == user).values(display_name=f"name {chance.random():.6f}")
    )


_ACTIONS = {
    "thread": _new_thread,
    "post": _new_post,
    "edit": _edit_post,
    "count": _recount,
    "delete": _delete_post,
    "rename": _rename,
}


def _comparable(value: Any) -> Any:
    """A value as both sides must agree on it (a timestamp as UTC, whether or not the side
    keeps its time zone)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def contents(
    link: Link, feed: Feed, direction: Direction
) -> dict[str, tuple[dict[Any, Any], dict[Any, Any]]]:
    """Every row of every table of `feed` on both sides (copied columns only, in the monolith's
    order whatever each side calls them), by key."""
    found = {}
    for table in feed.tables:
        sides = []
        for engine, mapped, key, columns in (
            (link.source(direction), link.context.source_table(table, direction),
             table.source_key(direction), table.source_columns(direction)),
            (link.target(direction), link.context.target_table(table, direction),
             table.target_key(direction), table.target_columns(direction)),
        ):  # fmt: skip
            with engine.connect() as connection:
                rows = connection.execute(select(*(mapped.c[c] for c in (*key, *columns)))).all()
            width = len(key)
            sides.append(
                {tuple(row[:width]): tuple(_comparable(v) for v in row[width:]) for row in rows}
            )
        found[table.source_name(direction)] = (sides[0], sides[1])
    return found


def assert_same_rows(link: Link, direction: Direction = Direction.FORWARD) -> int:
    """Every feed's tables hold exactly the same rows on both sides; returns rows compared."""
    compared = 0
    for feed in link.context.feeds:
        if direction is Direction.REVERSE and not feed.is_reversible:
            continue
        for name, (source, target) in contents(link, feed, direction).items():
            lost = sorted(source.keys() - target.keys())
            extra = sorted(target.keys() - source.keys())
            stale = sorted(
                key for key in source.keys() & target.keys() if source[key] != target[key]
            )
            assert not (lost or extra or stale), (
                f"{name}: lost {lost[:10]}, extra {extra[:10]}, stale {stale[:10]}"
            )
            compared += len(source)
    return compared
