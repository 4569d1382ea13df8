"""Polls extracted to functions, end to end, with crashes: nothing acknowledged is lost.

One `strangler up` on the bundled example (whose workspace file extracts polls as a service),
every process real (the AWS emulator among them, durable on its writes file), under a steady
load of reads and writes in every context, votes and new polls included:

- users is extracted as a service (stage 1); then `strangler extract polls --target
  serverless` takes polls to functions instead (the choice kept in the durable state, which
  every process reads with the file), the whole system killed
  at once (a power cut: the supervisor, every process, the emulator, the command) at points of
  that extraction: after the backfill, and inside the freeze at the switch of feeds and the
  flip; `strangler up` and the command are run again each time;
- at stage 2 the polls functions answer the contract's polls tests through the public port,
  and `strangler check` passes (the items and the monolith's rows agree);
- the rollback of polls, killed the same way inside its freeze, gives every write made on the
  functions back to the monolith;
- at the end every acknowledged write of the load reads back, once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests.steady import SteadyLoad, verify
from strangler.state import StateFile
from tests.e2e.test_crash_safety import System, finish, running, walk, writes_flow
from tests.support.command_line import strangler

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).parents[2]
EXTRACT = ["passed:backfill", "step:switch feeds", "step:flip routes"]
ROLLBACK = ["step:switch feeds", "step:finish"]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with running(tmp_path_factory.mktemp("serverless"), {}) as found:
        yield found


def state_of(system: System) -> tuple[int, str | None]:
    state = StateFile(system.folder / ".strangler" / "migration.json").read()
    assert state.moving is None
    return state.stage, state.owner_of("polls")


def checked(system: System) -> None:
    found = strangler(system.folder, "check", env=system.env)
    assert found.returncode == 0, found.stdout + found.stderr


def contract_polls(system: System) -> None:
    """The contract's polls tests, through the public port."""
    env = {
        **os.environ,
        "STRANGLER_CONTRACT_URL": system.url,
        "STRANGLER_CONTRACT_TOKEN_SECRET": (
            system.folder / ".strangler" / "token-secret"
        ).read_text().strip(),
    }
    suite = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/contract/test_polls.py", "-q", "-p",
         "no:cacheprovider", "-k", "monolith-sqlite", "-x"],
        cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert suite.returncode == 0, suite.stdout[-4000:] + suite.stderr[-2000:]


def test_polls_moves_to_functions_and_back_through_power_cuts_losing_nothing(
    system: System,
) -> None:
    going = SteadyLoad(system.url, rate=8)
    going.start()
    try:
        finish(system, "extract", "users")
        walk(system, "extract", EXTRACT, "everything", "polls", ("--target", "serverless"))
        writes_flow(system)
    finally:
        going.stop()
    state = StateFile(system.folder / ".strangler" / "migration.json").read()
    assert state.targets == {"polls": "serverless"}
    assert state_of(system) == (2, "service")
    running = set(json.loads((system.folder / ".strangler" / "run.json").read_text())["processes"])
    assert {"aws-emulator", "polls-sync", "polls-stream-poller"} <= running
    assert "polls" not in running  # its functions run in the proxy's workers, not a service
    checked(system)
    contract_polls(system)  # on a quiet system: it counts on ids no one else takes meanwhile
    back = SteadyLoad(system.url, rate=8, seed=11)
    back.start()
    try:
        walk(system, "rollback", ROLLBACK, "everything", context="polls")
        writes_flow(system)
    finally:
        back.stop()
    assert state_of(system) == (1, "monolith")
    checked(system)
    for load in (going, back):
        found = verify(load.ledger, system.url)
        assert found.is_complete, found.missing[:10]
        assert not load.ledger.duplicates
        assert "poll" in {kind for kind, _ in load.ledger.writes}
