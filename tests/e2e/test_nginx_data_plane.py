"""`strangler up --data-plane nginx`, end to end: nginx (Debian's) on the public port in front
of the Python proxy, every process real, on loopback.

- the routes at rest go straight to their upstream (the contract through nginx, at every
  stage: tests/e2e/test_nginx_every_stage.py);
- a route changed through the admin API shows through nginx at once (re-rendered from the
  durable state and reloaded), and no request fails across repeated reloads under load;
- nginx or its control loop killed with SIGKILL comes back serving the durable state's routes,
  including a change made while it was down;
- extracting users through the nginx plane under a steady load of reads and writes fails no
  write outside the freeze and loses none.

Which side answered a request is read from nginx's JSON access log (`target`), by request id.
Skipped, with the reason, where nginx is not installed (`.ci/run` installs it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from loadtests.steady import SteadyLoad, verify
from strangler.cli.demo import freeze_windows
from strangler.gateways.nginx_control import read_applied
from strangler.gateways.nginx_plane import NginxNotInstalled, find_nginx
from strangler.state import StateFile
from strangler_proxy.client import ProxyAdmin
from tests.e2e.test_crash_safety import System, running
from tests.support.closed_loop import ClosedLoop, Request
from tests.support.command_line import environment, strangler

pytestmark = pytest.mark.slow

ROUTE = "users.get_user"


@pytest.fixture(scope="module", autouse=True)
def nginx_binary() -> str:
    try:
        return find_nginx()
    except NginxNotInstalled as missing:
        pytest.skip(f"{missing} (.ci/run installs it)")


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with running(tmp_path_factory.mktemp("nginx-up"), {}, "--data-plane", "nginx") as found:
        yield found


def home(system: System) -> Path:
    return system.folder / ".strangler"


def admin(system: System) -> ProxyAdmin:
    record = json.loads((home(system) / "run.json").read_text())
    port = record["ports"]["proxy-admin"]
    return ProxyAdmin(f"http://127.0.0.1:{port}", (home(system) / "admin-token").read_text())


def set_mode(system: System, mode: str) -> int:
    """Change ROUTE's mode through the admin API; the state revision that recorded it."""
    with admin(system) as proxy:
        proxy.change_routes({ROUTE: {"mode": mode}}, f"test: {mode}")
    return StateFile(home(system) / "migration.json").read().revision


def applied_revision(system: System) -> int:
    found = read_applied(home(system) / "nginx")
    return -1 if found is None else found.revision


def wait_applied(system: System, revision: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while applied_revision(system) < revision:
        assert time.monotonic() < deadline, f"nginx never applied revision {revision}"
        time.sleep(0.05)


def served_by(system: System, path: str = "/api/users/1") -> str:
    """Send one request through nginx; which side its access log says answered it."""
    request_id = f"probe-{time.monotonic_ns()}"
    answer = httpx.get(system.url + path, headers={"X-Request-ID": request_id}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["server"].startswith("nginx")
    log = home(system) / "nginx" / "access.log"
    deadline = time.monotonic() + 10  # the access log is flushed every second
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines() if log.exists() else []:
            entry = json.loads(line)
            if entry["request_id"] == request_id:
                return str(entry["target"])
        time.sleep(0.2)
    raise AssertionError(f"{request_id} is not in nginx's access log")


def test_the_public_port_is_nginx_and_the_record_says_so(system: System) -> None:
    record = json.loads((home(system) / "run.json").read_text())
    assert record["data_plane"] == "nginx"
    assert record["ports"]["nginx"] == system.port != record["ports"]["proxy"]
    assert {"nginx", "nginx-control", "proxy"} <= set(record["processes"])
    assert served_by(system) == "monolith"  # at rest: straight to the monolith
    status = strangler(system.folder, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["data_plane"] == "nginx"
    if hasattr(os, "SCHED_BATCH"):  # the plane yields the CPU to the applications it fronts
        master = psutil.Process(nginx_master(system))
        assert {os.sched_getscheduler(p.pid) for p in [master, *master.children()]} == {
            os.SCHED_BATCH
        }


def test_a_route_changed_through_the_admin_api_shows_through_nginx(system: System) -> None:
    wait_applied(system, set_mode(system, "shadow"))
    assert served_by(system) == "python-proxy"  # under migration: through the Python proxy
    wait_applied(system, set_mode(system, "monolith"))
    assert served_by(system) == "monolith"


def _status(answer: httpx.Response) -> int:
    return answer.status_code


def reader_and_writer(url: str) -> Request:
    """Odd workers sign up new users, even ones read a user, all through nginx."""

    def request(client: httpx.Client, number: int, count: int) -> httpx.Response:
        if number % 2:
            name = f"reload_{number}_{count}_{time.monotonic_ns() % 10**9}"
            body = {"username": name, "email": f"{name}@example.org",
                    "password": "probe-password", "display_name": "Reload"}  # fmt: skip
            return client.post(f"{url}/api/users", json=body)
        return client.get(f"{url}/api/users/1")

    return request


def test_no_request_fails_across_reloads_under_a_steady_load(system: System) -> None:
    delays = []
    with ClosedLoop(reader_and_writer(system.url), _status, workers=4) as load:
        time.sleep(1)
        for mode in ["shadow", "monolith"] * 5:
            began = time.monotonic()
            wait_applied(system, set_mode(system, mode))
            delays.append(time.monotonic() - began)
            time.sleep(0.3)
        time.sleep(1)
    assert load.failures == []
    assert set(load.answers) == {200, 201}, load.answers
    assert sum(load.answers.values()) > 50
    delays.sort()
    print(
        f"{len(delays)} reloads under load; {sum(load.answers.values())} requests, none failed,"
        f" {load.resent} resent; route change to nginx's acknowledgement:"
        f" median {delays[len(delays) // 2] * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms"
    )


def record_of(system: System) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((home(system) / "run.json").read_text())
    return found


def test_nginx_killed_comes_back_serving_the_durable_state(system: System) -> None:
    old = system.pid_of("nginx")
    os.kill(old, signal.SIGKILL)
    revision = set_mode(system, "shadow")  # while nginx is down: only the state knows
    deadline = time.monotonic() + 60
    while system.pid_of("nginx") == old:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert served_by(system) == "python-proxy"
    wait_applied(system, revision)
    assert record_of(system)["processes"]["nginx"]["restarts"] >= 1
    wait_applied(system, set_mode(system, "monolith"))
    assert served_by(system) == "monolith"


def port_closed_for(system: System, pid: int) -> float:
    """SIGKILL nginx's master; seconds from the first refused /healthz to the first answered by
    a new master (the old master's workers answer until the supervisor stops their group)."""
    os.kill(pid, signal.SIGKILL)
    first_failure, deadline = None, time.monotonic() + 60
    while time.monotonic() < deadline:
        probed = time.monotonic()
        try:
            answered = httpx.get(f"{system.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            answered = False
        if not answered and first_failure is None:
            first_failure = probed
        if answered and nginx_master(system) not in (None, pid):
            return 0.0 if first_failure is None else time.monotonic() - first_failure
        time.sleep(0.005)
    raise AssertionError("nginx did not come back")


def nginx_master(system: System) -> int | None:
    try:
        return int((home(system) / "nginx" / "nginx.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def test_nginx_killed_again_and_again_is_restarted_at_once(system: System) -> None:
    closed = []
    for _ in range(6):
        old = system.pid_of("nginx")
        closed.append(port_closed_for(system, old))
        while system.pid_of("nginx") == old:
            time.sleep(0.05)
    pauses = [
        line.split("restarting ", 1)[1]
        for line in system.log().splitlines()
        if line.startswith("nginx exited with") or " nginx exited with" in line
    ]
    # Every crash of this module's nginx (one earlier test kills it too): at once, five in a
    # row, then a quarter and a half second; the general backoff would be 1, 2, 4, 8, 10 s.
    assert len(pauses) >= 6 and pauses[:5] == ["now"] * 5, pauses
    assert set(pauses[5:]) <= {"in 0.25s", "in 0.5s"}, pauses
    print(
        "public port closed after each SIGKILL of nginx's master: "
        + ", ".join(f"{seconds * 1000:.0f} ms" for seconds in closed)
        + f" (restart pauses: {', '.join(pauses)})"
    )


def test_the_control_loop_killed_comes_back_and_applies_what_changed_meanwhile(
    system: System,
) -> None:
    old = system.pid_of("nginx-control")
    nginx = system.pid_of("nginx")
    os.kill(old, signal.SIGKILL)
    revision = set_mode(system, "shadow")
    deadline = time.monotonic() + 60
    while system.pid_of("nginx-control") == old:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    wait_applied(system, revision)
    assert served_by(system) == "python-proxy"
    assert system.pid_of("nginx") == nginx  # reloaded, never restarted
    wait_applied(system, set_mode(system, "monolith"))
    assert served_by(system) == "monolith"


def test_a_restarted_up_adopts_nginx_its_control_loop_and_the_proxy(system: System) -> None:
    names = ("nginx", "nginx-control", "proxy")
    pids = {name: system.pid_of(name) for name in names}
    system.kill_supervisor()
    assert served_by(system) == "monolith"  # no supervisor: nginx serves on
    system.start()
    assert {name: system.pid_of(name) for name in names} == pids
    assert "adopted nginx " in system.log() and "adopted nginx-control " in system.log()
    wait_applied(system, set_mode(system, "shadow"))
    assert served_by(system) == "python-proxy"
    wait_applied(system, set_mode(system, "monolith"))


def test_extracting_users_through_nginx_under_load_fails_no_write_outside_the_freeze(
    tmp_path: Path,
) -> None:
    with running(tmp_path, {}, "--data-plane", "nginx") as found:
        load = SteadyLoad(found.url, rate=8)
        load.start()
        try:
            extract = subprocess.run(
                [sys.executable, "-m", "strangler", "extract", "users"], cwd=tmp_path,
                env=environment(tmp_path, found.env), capture_output=True, text=True,
                timeout=600,
            )  # fmt: skip
        finally:
            load.stop()
        assert extract.returncode == 0, extract.stdout[-3000:] + found.log()[-3000:]
        state = StateFile(home(found) / "migration.json").read()
        assert state.stage == 1 and state.moving is None and state.owner_of("users") == "service"
        windows = freeze_windows(state)
        assert [window.context for window in windows] == ["users"]
        assert load.ledger.unexplained_failures(windows) == []
        checked = verify(load.ledger, found.url)
        assert checked.is_complete, checked.missing[:10]
        assert not load.ledger.duplicates
        assert served_by(found) == "users"  # at rest again: straight to the service
        applied = read_applied(home(found) / "nginx")
        assert applied is not None and applied.migrating == []
        checked_system = strangler(tmp_path, "check", env=found.env)
        assert checked_system.returncode == 0, checked_system.stdout
        failures = len(load.ledger.failures())
        frozen = state.freezes[-1].frozen_seconds or 0.0
        print(
            f"extract users through nginx: {len(load.ledger.outcomes)} requests,"
            f" {failures} failed (all inside the freeze), writes frozen {frozen * 1000:.0f} ms"
        )
