"""The whole migration, driven through the `strangler` command line, under a steady load.

One `strangler up` runs the system; `strangler stage goto N` moves it to every stage (and, on
SQLite, back down to stage 2, so the forum is rolled back with everything written to it while
it was a service), and `strangler check` must pass at every stage reached. A steady load of
reads and writes in every context runs throughout; at the end every write it saw acknowledged
must read back, no request may have failed outside a write-freeze window, and `strangler down`
must leave no process and no bound port. Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psutil
import pytest

from loadtests.steady import SteadyLoad, verify
from strangler.cli.demo import freeze_windows
from strangler.runtime.processes import free_port
from strangler.state import MigrationState
from tests.support.command_line import strangler, strangler_up
from tests.support.databases import fresh_database

pytestmark = pytest.mark.slow
DATABASES = ("monolith", "users", "polls", "forum", "search")
# Quick gates: a small seed needs fewer comparisons to be judged (the defaults are for people).
QUICK_GATES = {
    "STRANGLER_GATE_SHADOW_MIN_COMPARED": "20",
    "STRANGLER_GATE_CANARY_STEPS": "[50, 100]",
    "STRANGLER_GATE_CANARY_MIN_REQUESTS": "3",
    # Tests never judge wall-clock speed: a loaded CI machine is no measure of a service.
    "STRANGLER_GATE_MAX_P95_RATIO": "1000",
}
# Every stage in turn; on one backend also back to stage 2 (the rollbacks cost CI time, and the
# data path's own tests roll back under load on both).
# Idle relays, consumers and syncs look for work every 0.2 s instead of 0.05 s: a quarter of
# their idle CPU, on a machine the whole suite shares; still far inside every staleness bound.
CALMER_POLLING = {
    "SYNC_POLL_SECONDS": "0.2",
    **{f"{context.upper()}_EVENT_POLL_SECONDS": "0.2" for context in ("users", "polls", "forum",
                                                                    "search")},
}  # fmt: skip
JOURNEYS = {"sqlite": (1, 2, 3, 4, 5, 4, 3, 2), "postgres": (1, 2, 3, 4, 5)}


@pytest.fixture
def databases(backend: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Every database of the system on the backend under test, as the variables that name them."""
    with ExitStack() as stack:
        urls = {name: stack.enter_context(fresh_database(backend, tmp_path, name))
                for name in (*DATABASES, "bus")}  # fmt: skip
        variables = {f"{name.upper()}_DATABASE_URL": urls[name] for name in DATABASES}
        yield {**variables, "STRANGLER_BUS_URL": urls["bus"]}


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_whole_migration_under_load_fails_nothing_and_loses_no_write(
    backend: str, tmp_path: Path, databases: dict[str, str]
) -> None:
    env = {**databases, **QUICK_GATES, **CALMER_POLLING}
    with strangler_up(tmp_path, free_port(), "--scale", "0.02", env=env) as up:
        load = SteadyLoad(up.url, rate=10)
        load.start()
        try:
            for stage in JOURNEYS[backend]:
                moved = strangler(tmp_path, "stage", "goto", str(stage), env=env)
                assert moved.returncode == 0, moved.stdout + moved.stderr
                checked = strangler(tmp_path, "check", env=env)
                assert checked.returncode == 0, f"stage {stage}:\n{checked.stdout}"
        finally:
            load.stop()
        verification = verify(load.ledger, up.url)
        state = MigrationState.model_validate(
            json.loads((tmp_path / ".strangler" / "migration.json").read_text())
        )
        pids, ports = up.every_pid(), list(up.record().ports.values())
        stopped = strangler(tmp_path, "down", env=env)
        assert stopped.returncode == 0, stopped.stdout
        assert up.process.wait(timeout=60) == 0
    failures = load.ledger.failures()
    unexplained = load.ledger.unexplained_failures(freeze_windows(state))
    print(  # the figures the issue asks for, shown with `pytest -s`
        f"\n{backend}: {len(load.ledger.outcomes)} requests, {len(failures)} failed "
        f"({len(unexplained)} outside a write freeze), {verification.checked} of "
        f"{verification.acknowledged} acknowledged writes read back, "
        f"{len(state.freezes)} freezes"
    )
    assert not unexplained, unexplained[:5]
    assert verification.is_complete, verification.missing[:5]
    assert verification.acknowledged > 50
    assert [window.context for window in state.freezes][:3] == ["users", "polls", "forum"]
    assert all(is_gone(pid) for pid in pids)
    assert all(port_is_free(port) for port in ports)
    # The cutover wrote the polls' pages where the polls service serves them, not in the
    # folder the commands ran from.
    assert not (tmp_path / "polls-results").exists()
    assert any((tmp_path / ".strangler" / "polls-results").glob("*.html"))
