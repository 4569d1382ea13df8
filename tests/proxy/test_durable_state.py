"""The proxy's durable state: it serves the recorded routes on every start, writes a change to
the record before serving it, moves a context's data owner only under that context's live
write-freeze lease, and holds a recorded freeze's writes after a restart until its lease ends."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from strangler.state import ContextState, MigrationState, StateFile
from strangler.workspace import find_workspace
from strangler_proxy.audit import AuditLog
from strangler_proxy.freeze import Freezes, NoSuchLease
from strangler_proxy.store import TableStore
from strangler_proxy.table import Mode, TableError, table_document

UPSTREAMS = {"monolith": "http://127.0.0.1:1", "users": "http://127.0.0.1:2",
             "polls": "http://127.0.0.1:3", "forum": "http://127.0.0.1:4",
             "search": "http://127.0.0.1:5"}  # fmt: skip


@pytest.fixture
def state(tmp_path: Path) -> StateFile:
    """A record at stage 0: the forum's stage-0 table, the data contexts owned by the monolith."""
    found = StateFile(tmp_path / "migration.json")
    table = table_document(find_workspace().migration().stage(0).table)

    def begin(record: MigrationState) -> None:
        record.routes = table
        record.contexts = {name: ContextState() for name in ("users", "polls", "forum")}

    found.update(begin)
    return found


def store_of(state: StateFile, tmp_path: Path) -> TableStore:
    store = TableStore(UPSTREAMS, AuditLog(tmp_path / "audit.jsonl"), state)
    store.load_state(None)
    return store


def users_to(side: str) -> dict[str, dict[str, str]]:
    routes = find_workspace().migration().stage(0).table.routes
    users = [route.name for route in routes if route.context == "users"]
    return {name: {"mode": side, "data_owner": side} for name in users}


def test_a_restarted_proxy_serves_the_routes_the_record_holds(
    state: StateFile, tmp_path: Path
) -> None:
    first = store_of(state, tmp_path)
    first.change_routes({"users.get_user": {"mode": "shadow"}}, "test", "shadow a read")
    again = store_of(state, tmp_path)
    route = again.current.table.route("users.get_user")
    assert route is not None and route.mode is Mode.SHADOW


def test_moving_a_context_s_writes_without_its_lease_is_refused(
    state: StateFile, tmp_path: Path
) -> None:
    store = store_of(state, tmp_path)
    with pytest.raises(TableError, match="only with the id of its live write-freeze lease"):
        store.change_routes(users_to("service"), "test", "cut over without a freeze")
    assert state.read().owner_of("users") == "monolith"
    assert store.current.table.route("users.sign_up").mode is Mode.MONOLITH  # type: ignore[union-attr]


def test_sending_part_of_a_context_s_writes_to_the_other_side_is_refused(
    state: StateFile, tmp_path: Path
) -> None:
    store = store_of(state, tmp_path)
    with pytest.raises(TableError, match="users's writes would go to the monolith and the service"):
        store.change_routes({"users.sign_up": {"mode": "service", "data_owner": "service"}},
                            "test", "one write route only")  # fmt: skip


def test_an_owner_moves_with_its_routes_under_the_live_lease(
    state: StateFile, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store = store_of(state, tmp_path)
        freezes = Freezes(AuditLog(tmp_path / "audit.jsonl"), 0.1, 60, state=state)
        frozen = await freezes.freeze("users", 30, 1, "test", "cutover of users", lease_seconds=5)
        store.change_routes(users_to("service"), "test", "cutover", {"users": str(frozen["lease"])})
        recorded = state.read()
        assert recorded.owner_of("users") == "service"
        assert recorded.live_lease("users") is not None
        freezes.thaw("users", "test", "done")
        assert state.read().live_lease("users") is None

    asyncio.run(scenario())


def test_a_recorded_freeze_holds_writes_after_a_restart_until_its_lease_ends(
    state: StateFile, tmp_path: Path
) -> None:
    async def scenario() -> None:
        audit = AuditLog(tmp_path / "audit.jsonl")
        before = Freezes(audit, 0.05, 60, state=state)
        frozen = await before.freeze(
            "forum", 30, 1, "a killed command", "cutover", lease_seconds=0.5
        )
        after = Freezes(audit, 0.05, 60, state=state)  # the restarted proxy
        assert after.restore() == ["forum"]
        write = find_workspace().migration().stage(0).table.route("forum.start_thread")
        assert after.frozen_context(write, "POST") == "forum"
        await asyncio.sleep(0.7)  # nobody renews it: its holder is gone
        assert after.frozen_context(write, "POST") is None
        assert state.read().live_lease("forum") is None
        with pytest.raises(NoSuchLease):
            after.renew("forum", str(frozen["lease"]))

    asyncio.run(scenario())


def test_a_lease_that_ended_while_no_proxy_ran_is_cleared_at_the_next_start(
    state: StateFile, tmp_path: Path
) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")

    async def freeze() -> None:
        before = Freezes(audit, 0.05, 60, state=state)
        await before.freeze("users", 30, 1, "a killed command", "cutover", lease_seconds=0.3)

    asyncio.run(freeze())  # then a power cut: the proxy's loop (and its timers) are gone
    assert state.read().contexts["users"].freeze is not None
    time.sleep(0.4)  # nothing runs while the lease ends
    after = Freezes(audit, 0.05, 60, state=state)  # the restarted proxy
    assert after.restore() == []
    assert state.read().contexts["users"].freeze is None  # not left for nginx to see
    assert after.describe()["frozen"] == []


def test_a_renewed_lease_outlives_its_first_term(state: StateFile, tmp_path: Path) -> None:
    async def scenario() -> None:
        freezes = Freezes(AuditLog(tmp_path / "audit.jsonl"), 0.05, 60, state=state)
        frozen = await freezes.freeze("polls", 30, 1, "test", "cutover", lease_seconds=0.4)
        for _ in range(4):
            await asyncio.sleep(0.2)
            freezes.renew("polls", str(frozen["lease"]))
        lease = state.read().live_lease("polls")
        assert lease is not None and lease.expires_at > time.time()
        assert freezes.describe()["frozen"]

    asyncio.run(scenario())
