"""A crash at any moment of a move loses nothing under `strangler up --data-plane nginx` either.

The scenarios of tests/e2e/test_crash_safety.py (the real `strangler up`, `extract` and
`rollback` of users, paused at named points, under a steady load of reads and writes through
the public port, here nginx), with the crashes the nginx plane adds:

- a power cut (everything SIGKILLed at once, `strangler up` started again) at every step
  inside the write freeze of the extraction and of its rollback;
- nginx alone SIGKILLed (the supervisor restarts it; it renders from the durable state before
  it accepts a request) at gate boundaries and inside the freeze;
- the control loop alone SIGKILLed inside the freeze (nginx keeps serving the configuration in
  force; the restarted loop renders, reloads and acknowledges the current revision).

After the extraction and after the rollback: one owner of users, every write route of users
in the durable table sent to it, nginx's acknowledged configuration with nothing left under
migration, and a write through nginx answered by the owner (nginx's access log says which
upstream served it). At the end: every acknowledged write reads back, none twice, and
`strangler check` passes. Once more with the databases on PostgreSQL (the control loop killed
inside the extraction's freeze, nginx inside the rollback's; skipped, with the reason, unless
STRANGLER_TEST_POSTGRES_URL names a server). Skipped where nginx is not installed (`.ci/run`
installs it).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from loadtests.steady import SteadyLoad
from strangler.gateways.nginx_control import nginx_targets, read_applied
from strangler.gateways.nginx_plane import NginxNotInstalled, find_nginx
from strangler.state import StateFile
from strangler_proxy.table import RouteTable
from tests.e2e.test_crash_safety import (
    FROZEN,
    System,
    assert_nothing_lost,
    running,
    walk,
    writes_flow,
)
from tests.support.databases import fresh_database

pytestmark = pytest.mark.slow

SAFE = {"GET", "HEAD", "OPTIONS"}
# nginx's restart pause grows with each crash before it runs steady (1, 2, 4, 8, 10 s, its
# port closed meanwhile): a few gate boundaries and the freeze's steps, not all of SOME.
# On PostgreSQL: inside the freeze, before and after the routes flip.
MID_CUTOVER = ["step:drain", "step:flip routes"]
NGINX_POINTS = ["passed:backfill", "started:cutover", "step:drain", "step:flip routes",
                "passed:cutover"]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def nginx_binary() -> str:
    try:
        return find_nginx()
    except NginxNotInstalled as missing:
        pytest.skip(f"{missing} (.ci/run installs it)")


def assert_one_owner(system: System, owner: str) -> None:
    """users is owned by `owner` alone, its every write route goes there in the durable table
    and in the nginx configuration in force, and a write through nginx is answered there."""
    home = system.folder / ".strangler"
    state = StateFile(home / "migration.json").read()
    assert state.moving is None and state.owner_of("users") == owner
    assert state.routes is not None
    writes = [
        route
        for route in RouteTable.model_validate(state.routes).routes
        if route.context == "users" and set(route.methods) - SAFE
    ]
    assert writes and {route.mode.value for route in writes} == {owner}, [
        (route.name, route.mode) for route in writes
    ]
    deadline = time.monotonic() + 30
    while True:  # nginx applied this state (or a later one): nothing under migration
        applied = read_applied(home / "nginx")
        if applied is not None and applied.revision >= state.revision:
            break
        assert time.monotonic() < deadline, f"nginx applied {applied}, state {state.revision}"
        time.sleep(0.1)
    assert applied.migrating == []
    request_id = f"owner-probe-{time.monotonic_ns()}"
    name = f"owner_{time.monotonic_ns() % 10**12}"
    answer = httpx.post(
        f"{system.url}/api/users",
        json={"username": name, "email": f"{name}@example.org", "password": "probe-password",
              "display_name": "Owner probe"},
        headers={"X-Request-ID": request_id}, timeout=10,
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    upstream = "users" if owner == "service" else "monolith"
    assert nginx_targets(home / "nginx", [request_id]) == {request_id: upstream}


def scenario(
    folder: Path,
    kind: str,
    extract: list[str],
    back: list[str],
    env: Mapping[str, str] | None = None,
    kind_back: str | None = None,
) -> None:
    """Extract users crashing `kind` at `extract`'s points, roll it back crashing `kind_back`
    (the same unless told) at `back`'s; one owner after each, nothing lost at the end."""
    with running(folder, env or {}, "--data-plane", "nginx") as system:
        load = SteadyLoad(system.url, rate=8)
        load.start()
        try:
            walk(system, "extract", extract, kind)
            writes_flow(system)
            assert_one_owner(system, "service")
            walk(system, "rollback", back, kind_back or kind)
            writes_flow(system)
            assert_one_owner(system, "monolith")
        finally:
            load.stop()
        assert_nothing_lost(system, load, stage=0)
        print(
            f"{kind} crashes under nginx: {len(load.ledger.outcomes)} requests,"
            f" {len(load.ledger.failures())} failed (in freezes and crashes), none lost"
        )


def test_a_power_cut_inside_the_freeze_under_nginx_loses_nothing(tmp_path: Path) -> None:
    scenario(tmp_path, "everything", FROZEN, FROZEN)


def test_nginx_killed_around_and_inside_the_freeze_loses_nothing(tmp_path: Path) -> None:
    scenario(tmp_path, "nginx", NGINX_POINTS, ["step:drain", "step:flip routes"])


def test_the_control_loop_killed_inside_the_freeze_loses_nothing(tmp_path: Path) -> None:
    scenario(tmp_path, "nginx-control", FROZEN, ["step:switch feeds", "step:finish"])


@pytest.mark.postgres
def test_on_postgresql_the_control_loop_and_nginx_killed_mid_cutover_lose_nothing(
    tmp_path: Path,
) -> None:
    """The monolith's and the users service's databases on PostgreSQL: the control loop killed
    at the extraction's drain and flip of the routes, nginx at the rollback's (the SQLite
    scenarios above cover every step of the freeze)."""
    with (
        fresh_database("postgres", tmp_path, "nginx_finish_monolith") as monolith,
        fresh_database("postgres", tmp_path, "nginx_finish_users") as users,
    ):
        env = {"MONOLITH_DATABASE_URL": monolith, "USERS_DATABASE_URL": users}
        scenario(tmp_path, "nginx-control", MID_CUTOVER, MID_CUTOVER, env, kind_back="nginx")
