"""Specification: the forward feed brings every write on the monolith into the items, once.

Writers change the monolith (new polls with their options, votes, a renamed question, a deleted
vote and a deleted option) while the backfill copies and while the feed applies; after a drain
the items are the monolith's rows. An applier interrupted between its read and its transaction,
or after its transaction committed, loses and doubles nothing; two appliers racing converge,
the one whose transaction was refused reading again.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, text, update

from strangler.serverless.data import backfill, forward, verify
from strangler.serverless.data.link import ItemsLink


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Writer:
    """A monolith's user, writing the polls tables directly."""

    def __init__(self, link: ItemsLink, seed: int) -> None:
        self.link, self.chance = link, random.Random(seed)
        self.polls, self.options, self.votes = (
            link.tables[name] for name in ("polls", "poll_options", "votes")
        )
        with link.monolith.connect() as connection:
            self.users = list(connection.scalars(text("SELECT id FROM users ORDER BY id")))

    def new_poll(self, options: int = 3) -> int:
        with self.link.monolith.begin() as connection:
            poll = connection.scalar(
                insert(self.polls).values(question="New?", author_id=self.users[0],
                                          created_at=_now()).returning(self.polls.c.id)
            )  # fmt: skip
            for position in range(options):
                connection.execute(
                    insert(self.options).values(
                        poll_id=poll, position=position, text=f"o{position}"
                    )
                )
        return int(poll)

    def vote(self) -> None:
        with self.link.monolith.begin() as connection:
            poll, option = self.chance.choice(connection.execute(
                select(self.options.c.poll_id, self.options.c.id).order_by(self.options.c.id)
            ).all())  # fmt: skip
            voted = set(connection.scalars(
                select(self.votes.c.user_id).where(self.votes.c.poll_id == poll)
            ))  # fmt: skip
            free = [user for user in self.users if user not in voted]
            if free:
                connection.execute(insert(self.votes).values(
                    poll_id=poll, option_id=option, user_id=self.chance.choice(free),
                    created_at=_now(),
                ))  # fmt: skip

    def rename(self) -> None:
        with self.link.monolith.begin() as connection:
            poll = self.chance.choice(list(connection.scalars(select(self.polls.c.id))))
            connection.execute(
                update(self.polls)
                .where(self.polls.c.id == poll)
                .values(question=f"Renamed {poll}?")
            )

    def delete_vote(self) -> None:
        with self.link.monolith.begin() as connection:
            vote = connection.scalar(select(func.min(self.votes.c.id)))
            connection.execute(delete(self.votes).where(self.votes.c.id == vote))

    def delete_option(self) -> None:
        with self.link.monolith.begin() as connection:
            option = connection.scalar(select(func.max(self.options.c.id)))
            connection.execute(delete(self.votes).where(self.votes.c.option_id == option))
            connection.execute(delete(self.options).where(self.options.c.id == option))

    def every_kind(self) -> None:
        self.new_poll()
        self.vote()
        self.vote()
        self.rename()
        self.delete_vote()
        self.delete_option()


def logged(link: ItemsLink) -> int:
    """Entries the capture has logged for the feed so far."""
    with link.monolith.connect() as connection:
        return int(connection.scalar(
            text("SELECT count(*) FROM strangler_change_log WHERE feed = :feed"),
            {"feed": link.feed.name},
        ) or 0)  # fmt: skip


def applied(link: ItemsLink) -> int:
    stored = forward.read_position(link)
    assert stored is not None
    return stored.position.applied_entries


def assert_equal(link: ItemsLink) -> None:
    report = verify.verify(link, range_rows=40)
    assert report.is_equal, [difference.describe() for difference in report.differences]


def test_writes_during_the_backfill_and_the_apply_are_in_the_items_after_a_drain(
    items_link: ItemsLink,
) -> None:
    link, writer = items_link, Writer(items_link, 1)
    assert forward.start(link)
    assert not forward.start(link)  # a second start keeps the position
    assert not forward.apply_batch(link).is_applying  # nothing before the backfill completes
    chunks = 0

    def write_now_and_then(_: backfill.Checkpoint) -> None:
        nonlocal chunks
        chunks += 1
        if chunks % 3 == 0:
            writer.every_kind()

    backfill.backfill(link, chunk_rows=20, progress=write_now_and_then)
    for _ in range(4):
        batch = forward.apply_batch(link, limit=7)
        assert batch.is_applying and batch.entries > 0
        writer.every_kind()
    forward.drain(link, timeout=60)
    assert_equal(link)
    lag = forward.lag(link)
    assert lag is not None and lag.entries == 0
    assert applied(link) == logged(link)  # every entry accounted for once


class Interrupted(RuntimeError):
    pass


class InterruptedClient:
    """A DynamoDB client whose next transaction is interrupted, before it is sent or after it
    committed (as a process killed at that moment would be)."""

    def __init__(self, client: Any, after_commit: bool) -> None:
        self.client, self.after_commit, self.is_armed = client, after_commit, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def transact_write_items(self, **arguments: Any) -> Any:
        if not self.is_armed:
            return self.client.transact_write_items(**arguments)
        self.is_armed = False
        if self.after_commit:
            self.client.transact_write_items(**arguments)
        raise Interrupted("killed")


def test_an_apply_interrupted_around_its_transaction_loses_and_doubles_nothing(
    open_link: Callable[[], ItemsLink],
) -> None:
    link = open_link()
    writer = Writer(link, 2)
    forward.start(link)
    backfill.backfill(link)
    for _ in range(20):  # well over one transaction's worth of actions: the window is cut
        writer.vote()
        writer.vote()
        writer.new_poll(options=2)
    writer.every_kind()
    before = forward.read_position(link)
    assert before is not None
    for after_commit in (False, True):
        interrupted = replace(link, dynamodb=InterruptedClient(link.dynamodb, after_commit))
        with pytest.raises(Interrupted):
            forward.apply_batch(interrupted, limit=1000)
        after = forward.read_position(link)
        assert after is not None
        assert after.version == before.version + int(after_commit)
    # The first transaction committed: the position moved past its entries only.
    assert 0 < applied(link) < logged(link)
    batch = forward.apply_batch(open_link(), limit=1000)  # another process takes over
    assert batch.is_applying and batch.entries > 0 and batch.refused == 0
    forward.drain(link, timeout=60)
    assert_equal(link)
    assert applied(link) == logged(link)


class RacedClient:
    """A DynamoDB client that lets another applier commit a whole batch just before its own
    first transaction is sent."""

    def __init__(self, client: Any, rival: Callable[[], object]) -> None:
        self.client, self.rival, self.is_armed = client, rival, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def transact_write_items(self, **arguments: Any) -> Any:
        if self.is_armed:
            self.is_armed = False
            self.rival()
        return self.client.transact_write_items(**arguments)


def test_two_appliers_racing_converge_the_refused_one_reading_again(
    open_link: Callable[[], ItemsLink],
) -> None:
    link, rival = open_link(), open_link()
    writer = Writer(link, 3)
    forward.start(link)
    backfill.backfill(link)
    for _ in range(2):
        writer.every_kind()
    rival_batches: list[forward.Batch] = []
    raced = replace(
        link,
        dynamodb=RacedClient(
            link.dynamodb, lambda: rival_batches.append(forward.apply_batch(rival, limit=10))
        ),
    )
    batch = forward.apply_batch(raced, limit=1000)
    assert rival_batches[0].entries == 10 and rival_batches[0].refused == 0
    assert batch.refused == 1 and batch.entries > 0  # refused, read again, applied the rest
    writer.every_kind()
    forward.drain(rival, timeout=60)
    forward.drain(link, timeout=60)
    assert_equal(link)
    assert applied(link) == logged(link)


def test_stop_removes_the_capture_and_deactivates_the_position(items_link: ItemsLink) -> None:
    link = items_link
    forward.start(link)
    forward.stop(link)
    stored = forward.read_position(link)
    assert stored is not None and not stored.position.is_active
    assert not backfill.is_complete(link)
    Writer(link, 4).rename()
    assert logged(link) == 0
    assert not forward.apply_batch(link).is_applying
