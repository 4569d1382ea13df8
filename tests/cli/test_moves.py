"""Moves between stages, as logic: gates run in order and each is recorded before the next; a
failed gate stops the move and the same command resumes after the last passed one; a rollback
undoes every passed (and the started) gate, last first; moves that make no sense are refused.
The gates, the runtime and the proxy are small in-memory fakes; the durable state is real."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from strangler.conductor.conductor import Conductor
from strangler.conductor.events import Event, GatePassed, GateSkipped, GateStopped, MoveFinished
from strangler.conductor.gates.base import Gate, GateFailed
from strangler.conductor.moves import Refused, extract, goto, rollback
from strangler.conductor.settings import GateSettings
from strangler.runtime.home import Home
from strangler.state import StateFile
from strangler.workspace import find_workspace
from strangler.workspace.stages import StageError


class FakeRuntime:
    """A supervisor that runs whatever is asked at once."""

    public_url = "http://127.0.0.1:1"
    admin_url = "http://127.0.0.1:2"

    def __init__(self) -> None:
        self.settled: list[int] = []

    def url_of(self, name: str) -> str:
        return f"http://{name}"

    def health_url_of(self, name: str) -> str:
        return f"http://{name}/healthz"

    def log_of(self, name: str) -> str:
        return f"{name}.log"

    def settle(self, revision: int, timeout: float) -> None:
        self.settled.append(revision)

    def await_plane(self, revision: int, timeout: float) -> None:
        """The Python proxy in front: every state is applied as it is written."""


@dataclass
class FakeDataPlane:
    """The proxy's admin API: the tables it was asked to serve."""

    served: list[str] = field(default_factory=list)

    def replace_table(self, text: str, reason: str) -> int:
        self.served.append(reason)
        return len(self.served)

    def close(self) -> None: ...

    def __enter__(self) -> FakeDataPlane:
        return self

    def __exit__(self, *exc: object) -> None: ...


@dataclass
class Step:
    """A gate that records its runs and undos in a shared journal, and fails while told to."""

    name: str
    journal: list[str]
    failing: set[str]
    failing_undo: set[str]

    @property
    def title(self) -> str:
        return f"do {self.name}"

    @property
    def undo_title(self) -> str:
        return f"undo {self.name}"

    def run(self) -> str:
        self.journal.append(f"run {self.name}")
        if self.name in self.failing:
            raise GateFailed(f"{self.name} refused", "fix it and run again")
        return "done"

    def undo(self) -> str:
        self.journal.append(f"undo {self.name}")
        if self.name in self.failing_undo:
            raise GateFailed(f"{self.name} would not undo", "look at its log")
        return "undone"


@dataclass
class Rig:
    conductor: Conductor
    journal: list[str]
    failing: set[str]
    failing_undo: set[str]
    events: list[Event]
    plane: FakeDataPlane

    @property
    def state(self) -> Any:
        return self.conductor.refresh()


NAMES = ["schema", "capture", "backfill", "service", "cutover"]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    journal: list[str] = []
    failing: set[str] = set()
    failing_undo: set[str] = set()
    events: list[Event] = []
    plane = FakeDataPlane()

    def gates(conductor: Conductor, stage: int) -> list[Gate]:
        return [Step(f"{name}{stage}", journal, failing, failing_undo) for name in NAMES]

    home = Home(tmp_path / ".strangler", find_workspace())
    conductor = Conductor(
        home, home.workspace.migration(), FakeRuntime(), GateSettings(), events.append,
        data_plane=lambda: plane, gates=gates,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    return Rig(conductor, journal, failing, failing_undo, events, plane)


def test_an_extraction_runs_every_gate_in_order_and_records_the_stage(rig: Rig) -> None:
    extract(rig.conductor, "users")
    assert rig.journal == [f"run {name}1" for name in NAMES]
    assert rig.state.stage == 1 and rig.state.moving is None
    assert rig.plane.served == ["stage 1"]
    assert isinstance(rig.events[-1], MoveFinished)


def test_a_failed_gate_stops_the_move_and_the_same_command_resumes_after_it(rig: Rig) -> None:
    rig.failing.add("service1")
    with pytest.raises(GateFailed, match="service1 refused"):
        extract(rig.conductor, "users")
    recorded = StateFile(rig.conductor.home.state_file).read().moving
    assert recorded is not None
    assert recorded.passed == ["schema1", "capture1", "backfill1"]
    assert recorded.started == "service1"
    assert any(isinstance(event, GateStopped) for event in rig.events)
    rig.failing.clear()
    rig.journal.clear()
    extract(rig.conductor, "users")
    assert rig.journal == ["run service1", "run cutover1"]
    skipped = [event.title for event in rig.events if isinstance(event, GateSkipped)]
    assert skipped == ["do schema1", "do capture1", "do backfill1"]


def test_rolling_back_a_half_done_extraction_undoes_the_started_gate_and_every_passed_one(
    rig: Rig,
) -> None:
    rig.failing.add("backfill1")
    with pytest.raises(GateFailed):
        extract(rig.conductor, "users")
    rig.journal.clear()
    rollback(rig.conductor, "users")
    assert rig.journal == ["undo backfill1", "undo capture1", "undo schema1"]
    assert rig.state.stage == 0 and rig.state.moving is None


def test_rolling_back_a_finished_extraction_undoes_every_gate_last_first(rig: Rig) -> None:
    extract(rig.conductor, "users")
    rig.journal.clear()
    rollback(rig.conductor, "users")
    assert rig.journal == [f"undo {name}1" for name in reversed(NAMES)]
    assert rig.state.stage == 0


def test_a_rollback_that_failed_resumes_after_its_last_undone_gate(rig: Rig) -> None:
    extract(rig.conductor, "users")
    rig.journal.clear()
    rig.failing_undo.add("service1")
    with pytest.raises(GateFailed, match="service1 would not undo"):
        rollback(rig.conductor, "users")
    rig.failing_undo.clear()
    rollback(rig.conductor, "users")
    assert rig.journal == ["undo cutover1", "undo service1", "undo service1", "undo backfill1",
                           "undo capture1", "undo schema1"]  # fmt: skip


def test_goto_chains_moves_forward_and_back(rig: Rig) -> None:
    goto(rig.conductor, 2)
    assert rig.state.stage == 2
    goto(rig.conductor, 0)
    assert rig.state.stage == 0
    assert rig.journal[-1] == "undo schema1"
    passed = [event for event in rig.events if isinstance(event, GatePassed)]
    assert len(passed) == 4 * len(NAMES)


def test_extracting_what_comes_later_is_refused_saying_what_comes_first(rig: Rig) -> None:
    with pytest.raises(Refused, match="forum is not extracted yet: it comes at stage 3"):
        extract(rig.conductor, "forum")
    assert rig.journal == []


def test_rolling_back_what_is_not_the_last_extracted_is_refused(rig: Rig) -> None:
    goto(rig.conductor, 2)
    with pytest.raises(Refused, match="users is not the last thing extracted"):
        rollback(rig.conductor, "users")


def test_another_move_under_way_is_refused_until_finished_or_rolled_back(rig: Rig) -> None:
    rig.failing.add("capture1")
    with pytest.raises(GateFailed):
        extract(rig.conductor, "users")
    with pytest.raises(Refused, match=r"the extraction of users \(stage 0 -> 1\) is under way"):
        extract(rig.conductor, "polls")


def test_extracting_twice_is_refused(rig: Rig) -> None:
    extract(rig.conductor, "users")
    with pytest.raises(Refused, match="users is extracted already"):
        extract(rig.conductor, "users")


def test_a_target_chosen_on_the_command_line_is_durable_and_extracts_as_functions(
    rig: Rig, tmp_path: Path
) -> None:
    from strangler.conductor.moves import choose_target
    from strangler.runtime.topology import topology

    extract(rig.conductor, "users")
    choose_target(rig.conductor, "polls", "serverless")
    assert rig.state.targets == {"polls": "serverless"}
    assert "polls" in rig.conductor.migration.serverless
    extract(rig.conductor, "polls")
    # Another command, started afresh, reads the choice with the workspace file.
    again = Conductor(
        rig.conductor.home, rig.conductor.home.workspace.migration(), FakeRuntime(),
        GateSettings(),
    )  # type: ignore[arg-type]  # fmt: skip
    assert again.migration.stage(2).serverless == ("polls",)
    shape = topology(rig.conductor.home.workspace.migration(), rig.state)
    assert shape.serverless == ("polls",) and "polls" not in shape.services
    with pytest.raises(Refused, match="rollback polls"):
        choose_target(rig.conductor, "polls", "service")
    rollback(rig.conductor, "polls")
    choose_target(rig.conductor, "polls", "service")  # what the file says: no choice kept
    assert rig.state.targets == {}
    assert rig.conductor.migration.stage(2).serverless == ()


def test_an_unknown_target_or_a_context_no_stage_extracts_is_refused(rig: Rig) -> None:
    from strangler.conductor.moves import choose_target

    with pytest.raises(Refused, match="one of service, serverless"):
        choose_target(rig.conductor, "polls", "lambda")
    with pytest.raises(StageError):
        choose_target(rig.conductor, "nothing", "serverless")
    assert rig.state.targets == {}
