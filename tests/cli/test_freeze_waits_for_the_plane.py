"""A write freeze waits for the data plane in front, as logic: under nginx, a context's writes
are frozen at the Python proxy only once nginx acknowledged a state revision that sends the
context there; no acknowledgement in time is a failed gate with nothing frozen. The runtime and
the plane's acknowledgements are in-memory fakes; the durable state is real."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates.base import GateFailed
from strangler.conductor.gates.cutover import Cutover
from strangler.conductor.settings import GateSettings
from strangler.gateways.nginx_control import Applied, PlaneNotApplied, migrating, wait_applied
from strangler.runtime.home import Home
from strangler.runtime.supervised import SystemGone
from strangler.state import ContextState, Lease, MigrationState, Moving, now
from strangler.workspace import find_workspace
from tests.cli.test_moves import FakeRuntime


class PlaneRuntime(FakeRuntime):
    """A runtime whose nginx acknowledges revisions up to `acknowledged` (None: never)."""

    def __init__(self, acknowledged: int | None) -> None:
        super().__init__()
        self.acknowledged = acknowledged
        self.awaited: list[int] = []

    def await_plane(self, revision: int, timeout: float) -> None:
        self.awaited.append(revision)
        if self.acknowledged is None or self.acknowledged < revision:
            raise SystemGone(f"nginx has not applied the migration state's revision {revision}")


def applied(revision: int) -> Applied:
    return Applied(revision=revision, routes_version=1, migrating=[], nginx_pid=1, at=0.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_wait_ends_at_the_first_acknowledgement_of_that_revision_or_a_later_one() -> None:
    answers = iter([None, applied(3), applied(6)])
    clock = Clock()
    found = wait_applied(lambda: next(answers), 5, timeout=10, sleep=clock.sleep, clock=clock)
    assert found.revision == 6


def test_no_acknowledgement_in_time_says_what_the_plane_applied() -> None:
    clock = Clock()
    with pytest.raises(PlaneNotApplied, match=r"revision 7 within 2 s .*applied revision 4"):
        wait_applied(lambda: applied(4), 7, timeout=2, sleep=clock.sleep, clock=clock)
    assert clock.now >= 2


def test_a_context_is_under_migration_from_its_move_recorded_and_while_a_freeze_is() -> None:
    migration = find_workspace().migration()
    state = MigrationState(moving=Moving(from_stage=0, to_stage=1, started_at=now()))
    assert migrating(state, migration) == {"users"}
    state = MigrationState(moving=Moving(from_stage=2, to_stage=1, started_at=now()))
    assert migrating(state, migration) == {"polls"}  # a move back gives polls back
    lease = Lease(id="a", holder="t", reason="r", started_at=0, expires_at=1, max_until=1,
                  seconds=1)  # fmt: skip
    state = MigrationState(contexts={"forum": ContextState(freeze=lease)})
    assert migrating(state, migration) == {"forum"}
    assert migrating(MigrationState(), migration) == set()


def conductor(tmp_path: Path, runtime: PlaneRuntime) -> Conductor:
    home = Home(tmp_path / ".strangler", find_workspace())
    return Conductor(home, home.workspace.migration(), runtime, GateSettings())


def test_the_freeze_waits_for_the_revision_that_recorded_the_move(tmp_path: Path) -> None:
    runtime = PlaneRuntime(acknowledged=None)
    found = conductor(tmp_path, runtime)
    found.begin(0, 1)
    revision = found.update(lambda state: state.record("a later change")).revision
    runtime.acknowledged = revision
    found.through_proxy("users")
    assert runtime.awaited == [revision]


def test_a_cutover_nginx_never_acknowledges_fails_before_anything_is_frozen(
    tmp_path: Path,
) -> None:
    runtime = PlaneRuntime(acknowledged=None)
    found = conductor(tmp_path, runtime)
    found.begin(0, 1)
    with pytest.raises(GateFailed, match=r"nginx has not applied .*users's writes were not frozen"):
        Cutover(found, "users").run()
    state = found.refresh()
    assert state.freezes == [] and state.live_lease("users") is None


def test_no_freeze_is_waited_for_without_a_move_of_that_context(tmp_path: Path) -> None:
    runtime = PlaneRuntime(acknowledged=10**6)
    found = conductor(tmp_path, runtime)
    with pytest.raises(GateFailed, match="no move of users is recorded"):
        found.through_proxy("users")
    found.begin(0, 1)
    with pytest.raises(GateFailed, match="no move of polls is recorded"):
        found.through_proxy("polls")
    assert runtime.awaited == []
