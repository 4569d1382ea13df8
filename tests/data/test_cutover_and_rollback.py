"""Specification: cutover and rollback under a steady load, through the real proxy.

Writes and reads run through the proxy, the monolith, the forum service and the sync (all real
processes) while the forum's data moves to the service and back. No request fails outside the
freeze window (in fact none fails: frozen writes wait for the thaw), and every write that got a
201 is in the owner's database and, through the feed, in the replica's. A move that verify
refuses changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from sqlalchemy import text

from strangler.datapath import cutover, status, verify
from strangler.datapath.contexts import Direction, Owner
from strangler.datapath.link import Link
from tests.data import processes
from tests.data.system import Answer, SteadyLoad, System, running_system
from tests.data.workload import assert_same_rows

THREADS = 6


def _forum_load(system: System) -> SteadyLoad:
    headers = {"Authorization": f"Bearer {system.token(3)}"}
    proxy = system.proxy_url

    def write(client: httpx.Client, number: int) -> httpx.Response:
        thread = number % THREADS + 1
        body = {"body": f"load {number}"}
        return client.post(f"{proxy}/api/threads/{thread}/posts", json=body, headers=headers)

    def read(client: httpx.Client, number: int) -> httpx.Response:
        return client.get(f"{proxy}/api/threads/{number % THREADS + 1}")

    return SteadyLoad(write, read).start()


def _freeze_windows(system: System) -> list[tuple[float, float]]:
    entries = system.admin._call("GET", "/audit", params={"limit": 1000})["entries"]
    moments = [
        datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp()
        for entry in entries
        if entry["action"] in ("freeze", "thaw")
    ]
    return list(zip(moments[::2], moments[1::2], strict=True))


def _assert_only_frozen_requests_failed(
    answers: list[Answer], windows: list[tuple[float, float]]
) -> None:
    assert windows, "no freeze was audited"
    failed = [answer for answer in answers if answer.status >= 300]
    outside = [
        answer
        for answer in failed
        if not any(
            answer.started <= thawed and answer.ended >= frozen for frozen, thawed in windows
        )
    ]
    assert not outside, f"requests failed outside the freeze window: {outside[:5]}"
    assert not failed, f"frozen writes should wait, not fail: {failed[:5]}"


def _posts_in(engine_owner: Link, side: str) -> dict[int, str]:
    engine = engine_owner.monolith if side == "monolith" else engine_owner.service
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT id, body FROM posts")).all())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def system(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One system per backend for this module; each test first moves the forum where it needs
    it, so none depends on another having run."""
    with running_system(backend, tmp_path_factory.mktemp("forum-system"), ("forum",)) as running:
        yield running


def _owned_by(system: System, owner: Owner) -> Link:
    link = system.links["forum"]
    if status.describe(link).state.owner is not owner:
        move = cutover.cutover if owner is Owner.SERVICE else cutover.rollback
        move(link, system.admin, max_freeze_seconds=20)
    return link


def test_a_cutover_under_steady_load_fails_nothing_outside_its_freeze_and_loses_no_write(
    system: System,
) -> None:
    link = _owned_by(system, Owner.MONOLITH)
    load = _forum_load(system)
    load.wait_for(30)
    report = cutover.cutover(link, system.admin, max_freeze_seconds=20)
    load.wait_for(30)
    answers = load.stop()
    processes.caught_up(link)
    windows = _freeze_windows(system)
    described = status.describe(link)
    service, monolith = _posts_in(link, "service"), _posts_in(link, "monolith")
    assert_same_rows(link, Direction.REVERSE)
    _assert_only_frozen_requests_failed(answers, windows)
    assert report.owner is Owner.SERVICE and described.state.owner is Owner.SERVICE
    assert report.leaked_entries == 0 and 0 < report.freeze_seconds < 20
    assert described.capturing == ["forum-authors forward", "forum reverse"]
    created = load.created()
    lost = sorted(created - service.keys())
    assert not lost, f"writes lost by the service: {lost[:5]}"
    assert created <= monolith.keys(), "the reverse feed lost writes"


def _refused_rollback_changes_nothing(
    system: System, link: Link, load: SteadyLoad, corrupt: int
) -> None:
    """A rollback that verify refuses leaves the service the owner, its feed running and writes
    flowing; once repaired, the rollback can go ahead."""
    processes.caught_up(link)
    with link.monolith.begin() as connection:
        connection.execute(
            text("UPDATE posts SET body = 'corrupted' WHERE id = :id"), {"id": corrupt}
        )
    with pytest.raises(cutover.MoveRefused, match="differences"):
        cutover.rollback(link, system.admin, max_freeze_seconds=20)
    assert system.admin.owner_of("forum") is Owner.SERVICE and not system.admin.freezes()
    assert status.describe(link).state.owner is Owner.SERVICE
    load.wait_for(20)  # writes still go to the service, and reach the monolith
    processes.caught_up(link)
    verify.repair(link, verify.verify(link, Direction.REVERSE, chunk_rows=100))


def test_a_rollback_right_after_cutover_keeps_every_write_made_on_the_service_side(
    system: System,
) -> None:
    link = _owned_by(system, Owner.MONOLITH)
    cutover.cutover(link, system.admin, max_freeze_seconds=20)
    load = _forum_load(system)
    load.wait_for(30)
    on_service = load.created()
    _refused_rollback_changes_nothing(system, link, load, corrupt=min(on_service))
    report = cutover.rollback(link, system.admin, max_freeze_seconds=20)
    load.wait_for(30)
    answers = load.stop()
    processes.caught_up(link)
    windows = _freeze_windows(system)
    routes = system.admin.owner_of("forum")
    monolith = _posts_in(link, "monolith")
    assert_same_rows(link, Direction.FORWARD)
    _assert_only_frozen_requests_failed(answers, windows)
    assert report.owner is Owner.MONOLITH and routes is Owner.MONOLITH
    assert on_service and on_service <= monolith.keys(), "service-side writes were lost"
    assert load.created() <= monolith.keys()
    assert all(monolith[post].startswith("load ") for post in on_service)
