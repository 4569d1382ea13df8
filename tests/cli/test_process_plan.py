"""The process plan: what each stage runs, and how the processes find each other."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from strangler.runtime.plan import (
    AT_ONCE,
    BACKOFF,
    Places,
    ProcessSpec,
    RestartPolicy,
    Topology,
    plan,
)
from strangler.runtime.topology import stage_topology, topology
from strangler.state import MigrationState, Moving
from strangler.workspace import find_workspace

PORTS: dict[str, int] = {}


def port_of(name: str) -> int:
    return PORTS.setdefault(name, 20000 + len(PORTS))


def places(tmp_path: Path) -> Places:
    urls = {name: f"sqlite:///{tmp_path}/{name}.sqlite3" for name in
            ("monolith", "users", "polls", "forum", "search", "bus")}  # fmt: skip
    return Places(find_workspace(), urls, "secret-0123456789abcdef", "admin", "system-1",
                  tmp_path)  # fmt: skip


def names_at(stage: int, tmp_path: Path) -> list[str]:
    found = plan(stage_topology(find_workspace().migration(), stage), places(tmp_path), port_of)
    return [spec.name for spec in found]


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (0, ["monolith", "proxy", "console"]),
        (1, ["monolith", "users", "users-sync", "proxy", "console"]),
        (
            2,
            ["monolith", "users", "polls", "polls-relay", "polls-consumer", "users-sync",
             "polls-sync", "proxy", "console"],
        ),
        (
            3,
            ["monolith", "users", "polls", "forum", "polls-relay", "users-relay",
             "polls-consumer", "forum-consumer", "users-sync", "polls-sync", "forum-sync",
             "proxy", "console"],
        ),
        (
            5,
            ["users", "polls", "forum", "search", "forum-relay", "polls-relay", "users-relay",
             "polls-consumer", "forum-consumer", "search-consumer", "users-sync", "polls-sync",
             "forum-sync", "proxy", "console"],
        ),
    ],
)  # fmt: skip
def test_each_stage_runs_its_services_their_event_processes_and_the_syncs_of_moved_data(
    stage: int, expected: list[str], tmp_path: Path
) -> None:
    assert names_at(stage, tmp_path) == expected


def test_a_system_nobody_watches_runs_no_console(tmp_path: Path) -> None:
    """The load comparison's measured systems count every process: the console is none of
    the architecture's, and the systems that only move data for it need none either."""
    quiet = dataclasses.replace(places(tmp_path), console=False)
    found = plan(stage_topology(find_workspace().migration(), 3), quiet, port_of)
    names = [spec.name for spec in found]
    assert "console" not in names
    assert names == [name for name in names_at(3, tmp_path) if name != "console"]


def spec(specs: list[ProcessSpec], name: str) -> ProcessSpec:
    return next(found for found in specs if found.name == name)


def test_the_proxy_knows_every_service_from_the_start_and_the_forum_knows_users(
    tmp_path: Path,
) -> None:
    specs = plan(stage_topology(find_workspace().migration(), 3), places(tmp_path), port_of)
    proxy = spec(specs, "proxy")
    assert json.loads(proxy.env["PROXY_UPSTREAMS"]) == {
        context: f"http://127.0.0.1:{port_of(context)}"
        for context in ("users", "polls", "forum", "search")
    }
    assert proxy.env["PROXY_STATE_PATH"] == str(tmp_path / "migration.json")
    assert proxy.env["PROXY_SYSTEM_ID"] == "system-1"
    assert spec(specs, "forum").env["FORUM_USERS_URL"] == f"http://127.0.0.1:{port_of('users')}"
    consumer = spec(specs, "forum-consumer")
    assert consumer.env["FORUM_EVENT_METRICS_PORT"] == str(consumer.port)
    assert consumer.health_url.endswith("/metrics")


def test_the_monolith_alone_runs_on_the_public_entry(tmp_path: Path) -> None:
    specs = plan(Topology(has_proxy=False), places(tmp_path), port_of)
    assert [found.name for found in specs] == ["monolith"]


def test_a_transition_runs_the_moving_service_before_its_stage_does() -> None:
    migration = find_workspace().migration()
    state = MigrationState(
        stage=1, moving=Moving(from_stage=1, to_stage=2, started_at="now", runs_service=True)
    )
    assert topology(migration, state).services == ("users", "polls")
    retiring = MigrationState(
        stage=4, moving=Moving(from_stage=4, to_stage=5, started_at="now", monolith_runs=False)
    )
    assert not topology(migration, retiring).monolith_runs


def test_under_nginx_it_fronts_the_proxy_and_both_parts_read_the_same_durable_state(
    tmp_path: Path,
) -> None:
    found = plan(
        stage_topology(find_workspace().migration(), 1),
        dataclasses.replace(places(tmp_path), data_plane="nginx"),
        port_of,
    )
    names = [spec.name for spec in found]
    assert names[-4:] == ["proxy", "nginx", "nginx-control", "console"]
    nginx, control = (
        next(s for s in found if s.name == name) for name in ("nginx", "nginx-control")
    )
    assert nginx.argv[-1] == "serve" and control.argv[-1] == "control"
    assert nginx.env == control.env
    assert nginx.env["STRANGLER_GATEWAY_LISTEN_PORT"] == str(port_of("nginx")) == str(nginx.port)
    assert nginx.env["STRANGLER_PLANE_PROXY_URL"] == f"http://127.0.0.1:{port_of('proxy')}"
    assert nginx.env["STRANGLER_PLANE_STATE_PATH"] == str(tmp_path / "migration.json")
    upstreams = json.loads(nginx.env["STRANGLER_PLANE_UPSTREAMS"])
    assert set(upstreams) == {"monolith", "users", "polls", "forum", "search"}
    assert control.health_url == f"http://127.0.0.1:{port_of('nginx-control')}/healthz"


def test_the_proxy_trusts_nginx_to_name_the_client_under_nginx_only(tmp_path: Path) -> None:
    migration = find_workspace().migration()
    python = plan(stage_topology(migration, 1), places(tmp_path), port_of)
    nginx = plan(
        stage_topology(migration, 1),
        dataclasses.replace(places(tmp_path), data_plane="nginx"),
        port_of,
    )
    proxy_under = {spec.name: spec for spec in nginx}["proxy"]
    assert json.loads(proxy_under.env["PROXY_TRUSTED_PROXIES"]) == ["127.0.0.1/32"]
    assert "PROXY_TRUSTED_PROXIES" not in {spec.name: spec for spec in python}["proxy"].env


def test_nginx_restarts_at_once_and_everything_else_backs_off(tmp_path: Path) -> None:
    found = plan(
        stage_topology(find_workspace().migration(), 1),
        dataclasses.replace(places(tmp_path), data_plane="nginx"),
        port_of,
    )
    policies = {spec.name: spec.restart for spec in found}
    assert policies.pop("nginx") == AT_ONCE
    assert set(policies.values()) == {BACKOFF}


@pytest.mark.parametrize(
    ("policy", "pauses"),
    [
        (BACKOFF, [1, 2, 4, 8, 10, 10]),
        (AT_ONCE, [0, 0, 0, 0, 0, 0.25, 0.5, 0.5]),
        (RestartPolicy(immediate=1, first=2, longest=3), [0, 2, 3, 3]),
    ],
)
def test_the_pause_before_a_restart_follows_the_policy(
    policy: RestartPolicy, pauses: list[float]
) -> None:
    assert [policy.pause(crashes) for crashes in range(len(pauses))] == pauses
