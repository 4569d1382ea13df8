"""The console in a real browser: Debian's Chromium driven by Playwright.

A small real system runs for the module: two real upstreams (`tests/proxy/upstream_app.py`, each
answering with its own name, so a shadowed read always differs), the real proxy serving the
forum's stage 0 from a migration state, and the real console, with the run record a supervisor
would write. The tests sign in, watch a route change made through the admin API appear without
a reload, see a shadow diff, and run a gate from a button; any console error fails them.
Chromium is Debian's (`apt-get install chromium`, as `.ci/run` does); never a downloaded one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from strangler.runtime.home import Home
from strangler.runtime.launch import console_command, console_environment, proxy_environment
from strangler.runtime.processes import ManagedProcess, free_port, start
from strangler.runtime.run_record import ProcessRecord, RunRecord, started_at, write_run
from strangler.runtime.system import initialize_state
from strangler.workspace import find_workspace
from strangler_proxy.client import ProxyAdmin
from tests.support.browser import errors_of, launched, needs_chromium

UPSTREAM_APP = Path(__file__).parents[1] / "proxy" / "upstream_app.py"
DOCS = Path(__file__).parents[2] / "docs"

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = needs_chromium()


@dataclass
class System:
    home: Home
    proxy_url: str
    console_url: str
    admin_token: str
    processes: list[ManagedProcess]


def _started(
    name: str, argv: list[str], env: dict[str, str], port: int, logs: Path, health: str
) -> tuple[ManagedProcess, ProcessRecord]:
    process = start(name, argv, env, f"http://127.0.0.1:{port}{health}", logs / f"{name}.log")
    process.wait_healthy(60)
    record = ProcessRecord(
        name=name, pid=process.pid, started_at=started_at(process.pid), port=port,
        url=f"http://127.0.0.1:{port}", health_url=f"http://127.0.0.1:{port}{health}",
        log=str(logs / f"{name}.log"), state="healthy",
    )  # fmt: skip
    return process, record


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    folder = tmp_path_factory.mktemp("console-system")
    workspace = find_workspace()
    home = Home(folder / ".strangler", workspace, reads_environment=False)
    logs = home.logs
    initialize_state(home)
    processes: list[ManagedProcess] = []
    records: dict[str, ProcessRecord] = {}
    try:
        ports: dict[str, int] = {}
        for name in ("monolith", "users"):
            ports[name] = free_port()
            argv = [sys.executable, str(UPSTREAM_APP), str(ports[name]), name]
            process, records[name] = _started(name, argv, {}, ports[name], logs, "/healthz")
            processes.append(process)
        users = f"http://127.0.0.1:{ports['users']}"
        env = proxy_environment(
            f"http://127.0.0.1:{ports['monolith']}",
            dict.fromkeys(workspace.context_names, users),
            home.state_file, home.admin_token(), home.token_secret(), home.root,
        )  # fmt: skip
        env.update(PROXY_SYSTEM_ID=home.system_id(), PROXY_ANALYSIS_INTERVAL_SECONDS="0",
                   PROXY_SHADOW_NOISE_SAMPLE_EVERY="0")  # fmt: skip
        ports["proxy"] = free_port()
        argv = [sys.executable, "-m", "strangler_proxy", "--port", str(ports["proxy"])]
        process, records["proxy"] = _started("proxy", argv, env, ports["proxy"], logs, "/healthz")
        processes.append(process)
        ports["console"] = free_port()
        env = {
            **console_environment(workspace, home.root, home.admin_token()),
            "CONSOLE_REFRESH_SECONDS": "0.5",
        }
        process, records["console"] = _started(
            "console", console_command(ports["console"]), env, ports["console"], logs, "/healthz"
        )
        processes.append(process)
        # What a supervisor would record; this test process stands in for it.
        write_run(
            home.run_file,
            RunRecord(
                supervisor_pid=os.getpid(), supervisor_started_at=started_at(os.getpid()),
                public_url=records["proxy"].url, stage=0, ports=ports, processes=records,
                wanted=list(records),
            ),
        )  # fmt: skip
        yield System(home, records["proxy"].url, records["console"].url, home.admin_token(),
                     processes)  # fmt: skip
    finally:
        for process in reversed(processes):
            process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as found:
        yield found


@pytest.fixture
def page(browser: Any, system: System) -> Iterator[Any]:
    """A signed-in page; the test fails on any error the page's console reports."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    opened = context.new_page()
    errors = errors_of(opened)
    opened.goto(system.console_url + "/")
    opened.fill("#token", system.admin_token)
    opened.click("button[type=submit]")
    opened.wait_for_selector("#headline:has-text('stage 0')")
    yield opened
    context.close()
    assert errors == [], f"the console reported errors: {errors}"


def test_signing_in_needs_the_admin_token(browser: Any, system: System) -> None:
    context = browser.new_context()
    opened = context.new_page()
    opened.goto(system.console_url + "/")
    assert opened.url.endswith("/signin")
    opened.fill("#token", "not the token")
    opened.click("button[type=submit]")
    opened.wait_for_selector("#failed:visible")
    assert context.cookies() == []
    opened.fill("#token", system.admin_token)
    opened.click("button[type=submit]")
    opened.wait_for_selector("#headline:has-text('stage 0')")
    (cookie,) = context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    context.close()


def test_a_route_changed_through_the_admin_api_shows_without_a_reload(
    page: Any, system: System
) -> None:
    page.evaluate("window.sameDocument = true")
    mode = page.locator('[data-route-mode="users.get_user"]')
    assert mode.inner_text() == "monolith"
    with ProxyAdmin(system.proxy_url, system.admin_token) as admin:
        admin.change_routes({"users.get_user": {"mode": "shadow"}}, "console test: shadow it")
    page.wait_for_selector('[data-route-mode="users.get_user"]:has-text("shadow")')
    assert page.evaluate("window.sameDocument") is True  # the same page, never reloaded
    page.wait_for_selector("#decisions:has-text('console test: shadow it')")


def test_a_shadowed_read_that_differs_shows_side_by_side(page: Any, system: System) -> None:
    with ProxyAdmin(system.proxy_url, system.admin_token) as admin:
        admin.change_routes({"users.get_user": {"mode": "shadow"}}, "console test: shadow")
    with httpx.Client(base_url=system.proxy_url) as client:
        for _ in range(3):
            assert client.get("/api/users/1").json()["answered_by"] == "monolith"
    diff = page.wait_for_selector('[data-testid="shadow-diff"]', timeout=15_000)
    text = diff.inner_text()
    assert '"answered_by": "monolith"' in text and '"answered_by": "users"' in text
    assert page.locator("#shadow").inner_text().count("users.get_user") == 1
    page.screenshot(path=str(DOCS / "console.png"), full_page=True)


def test_a_gate_runs_from_a_button_and_its_output_streams_in(page: Any, system: System) -> None:
    page.click("#action-continue")
    page.wait_for_selector("#action-status:has-text('strangler extract users')")
    page.wait_for_selector('[data-gate="schema"].passed', timeout=60_000)
    page.wait_for_selector("#action-output:has-text('migrate the users database')")
    ended = "#action-status:has-text('exited with'), #action-status:has-text('done')"
    page.wait_for_selector(ended, timeout=120_000)
