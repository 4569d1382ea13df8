"""Specification: the items' cutover and rollback lose no write, whatever step they stop at.

A writer creates polls all along, through a stand-in for the proxy's admin API that holds
writes while the context is frozen and says who owns the data (`tests.data.fake_proxy`): on
the monolith's tables while the monolith owns them, as the functions would (ids from the
counter items, options first, then the poll) once the items do. The context's sync runs both
feeds in a thread, as its process does. The cutover, and then the rollback, are stopped at
every one of their steps in turn (the command dies there: no undo runs, no state is recorded
after it; the proxy hears nothing more from it, so its freeze stays until the next run ends
it) and run again, which settles the stopped move and
goes on to the next stop, until one runs through. At the end every poll the writer was told
was created is in the monolith's tables, once, and the items equal the rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from strangler.datapath import state
from strangler.datapath.contexts import Owner
from strangler.datapath.sync import SyncMetrics
from strangler.serverless.data import backfill, cutover, forward, reverse, verify
from strangler.serverless.data.link import ItemsLink
from strangler.serverless.data.sync import ItemsSyncer, ItemsSyncSettings
from strangler_proxy.client import ProxyAdminError
from tests.data.fake_proxy import FakeProxy

STEPS = ["catch up", "pre-verify", "freeze", "drain", "verify", "switch feeds", "flip routes",
         "finish"]  # fmt: skip
LEASE_SECONDS = 1.0


class Stopped(BaseException):
    """The command died here: nothing after this point of the move runs (not even its undo)."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class PollWriter:
    """Creates polls on whichever side owns the data, as the monolith's or the functions' code
    would, waiting out freezes like a request at the proxy; remembers what was acknowledged."""

    def __init__(self, link: ItemsLink, proxy: FakeProxy) -> None:
        self.link, self.proxy = link, proxy
        self.acknowledged: dict[int, str] = {}
        self.sides: dict[Owner, int] = {Owner.MONOLITH: 0, Owner.SERVICE: 0}
        self.failures: list[str] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PollWriter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        number = 0
        while not self._stopping.wait(0.05):
            number += 1
            question = f"Written {number}?"
            try:
                with self.proxy.writing() as owner:
                    poll = (self._on_items if owner is Owner.SERVICE else self._on_rows)(question)
            except Exception as error:  # a write that fails is a finding, not a crash of the test
                self.failures.append(f"{type(error).__name__}: {error}")
                continue
            self.acknowledged[poll] = question
            self.sides[owner] += 1

    def _on_rows(self, question: str) -> int:
        polls, options = self.link.tables["polls"], self.link.tables["poll_options"]
        with self.link.monolith.begin() as connection:
            poll = int(connection.scalar(
                insert(polls).values(question=question, author_id=1, created_at=_now())
                .returning(polls.c.id)
            ))  # fmt: skip
            for position in range(2):
                connection.execute(insert(options).values(
                    poll_id=poll, position=position, text=f"option {position}"
                ))  # fmt: skip
        return poll

    def _next_ids(self, table: str, count: int) -> list[int]:
        key = self.link.mapping.sequence_key(table)
        answer = self.link.dynamodb.update_item(
            TableName=self.link.table_name, Key=key, UpdateExpression="ADD #last :n",
            ExpressionAttributeNames={"#last": "last"},
            ExpressionAttributeValues={":n": {"N": str(count)}}, ReturnValues="UPDATED_NEW",
        )  # fmt: skip
        last = int(answer["Attributes"]["last"]["N"])
        return list(range(last - count + 1, last + 1))

    def _on_items(self, question: str) -> int:
        [poll] = self._next_ids("polls", 1)
        mapping, table = self.link.mapping, self.link.table_name
        for position, option in enumerate(self._next_ids("poll_options", 2)):
            row = {"id": option, "poll_id": poll, "position": position,
                   "text": f"option {position}"}  # fmt: skip
            self.link.dynamodb.put_item(
                TableName=table, Item=mapping.item_of_row("poll_options", row)
            )
        row = {"id": poll, "question": question, "author_id": 1, "created_at": _now()}
        self.link.dynamodb.put_item(TableName=table, Item=mapping.item_of_row("polls", row))
        return poll


@pytest.fixture
def synced(open_link: Callable[[], ItemsLink]) -> Iterator[ItemsLink]:
    """The context's sync running in a thread on a link of its own, as its process runs."""
    link = open_link()
    reverse.ensure_positions(link.monolith)
    settings = ItemsSyncSettings(poll_seconds=0.05, retry_seconds=0.1, lag_seconds=5)
    syncer = ItemsSyncer(link, settings, SyncMetrics())
    stopping = threading.Event()
    thread = threading.Thread(target=syncer.run, args=(stopping,), daemon=True)
    thread.start()
    yield link
    stopping.set()
    thread.join(timeout=30)


class Command:
    """One run of a move as the proxy sees it: once it has died, the proxy hears nothing more
    from it (its `finally` cannot thaw, as a killed process's cannot)."""

    def __init__(self, proxy: FakeProxy, points: list[str]) -> None:
        self.proxy, self.points, self.is_dead = proxy, points, False

    def say(self, step: str) -> None:
        if step in self.points:
            self.is_dead = True
            raise Stopped(step)

    def __getattr__(self, name: str) -> object:
        call = getattr(self.proxy, name)

        def calling(*arguments: object, **keywords: object) -> object:
            if self.is_dead:
                raise ProxyAdminError("the command is dead")
            return call(*arguments, **keywords)

        return calling


def walk(move: Callable[..., object], link: ItemsLink, proxy: FakeProxy) -> list[str]:
    """Run `move` stopped at each step in turn, again and again, until it runs through."""
    stopped: list[str] = []
    remaining = list(STEPS)
    while True:
        command = Command(proxy, remaining)
        try:
            move(link, command, max_freeze_seconds=10, say=command.say,
                 lease_seconds=LEASE_SECONDS)  # fmt: skip
        except Stopped as at:
            stopped.append(str(at))
            remaining = remaining[remaining.index(str(at)) + 1 :]
            time.sleep(0.2)  # writes go on meanwhile, or wait for a freeze nobody will end
            continue
        return stopped


def test_a_cutover_and_a_rollback_stopped_at_every_step_lose_no_write(
    items_link: ItemsLink, synced: ItemsLink
) -> None:
    link = items_link
    forward.start(link)
    backfill.backfill(link)
    proxy = FakeProxy("polls")
    writer = PollWriter(link, proxy).start()
    try:
        stopped = walk(cutover.cutover, link, proxy)
        assert stopped == STEPS, "the cutover never reached some steps"
        assert proxy.owner is Owner.SERVICE
        assert state.read(link.monolith, "polls").owner is Owner.SERVICE
        time.sleep(1.0)  # writes land on the items, the reverse feed brings them back
        stopped = walk(cutover.rollback, link, proxy)
        assert stopped == STEPS, "the rollback never reached some steps"
        assert proxy.owner is Owner.MONOLITH
        time.sleep(0.5)
    finally:
        writer.stop()
        proxy.close()
    assert not writer.failures, writer.failures[:5]
    assert state.read(link.monolith, "polls") == state.ContextState(
        "polls", Owner.MONOLITH, last_freeze_seconds=state.read(link.monolith, "polls")
        .last_freeze_seconds
    )  # fmt: skip
    polls = link.tables["polls"]
    with link.monolith.connect() as connection:
        found = dict(connection.execute(select(polls.c.id, polls.c.question)).all())
    assert writer.sides[Owner.SERVICE] > 5 and writer.sides[Owner.MONOLITH] > 5, writer.sides
    assert {poll: found.get(poll) for poll in writer.acknowledged} == writer.acknowledged
    forward.drain(link, timeout=30)
    assert verify.verify(link).is_equal
