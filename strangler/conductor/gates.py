"""Gates: the steps of a migration move, each of which must pass before the next one runs.

A gate does its work and checks its result; when the check fails it raises `GateFailed` with
what failed and what to do about it. `run_gates` runs them in order, skips the ones the state
already records as passed (so an interrupted or failed move resumes where it stopped), records
each one it passes, and stops at the first that fails. This module must never know what any
gate does.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console


class GateFailed(RuntimeError):
    """A gate's check did not pass: `what` happened, and `todo` is what the person should do."""

    def __init__(self, what: str, todo: str) -> None:
        super().__init__(f"{what}; {todo}")
        self.what = what
        self.todo = todo


@dataclass(frozen=True)
class Gate:
    """One step: a short name (recorded when passed), what it does, and the work itself."""

    name: str
    title: str
    run: Callable[[], str | None]  # returns a short result to show, e.g. "1,204 rows"


@dataclass(frozen=True)
class Passed:
    gate: str
    seconds: float
    result: str | None


def run_gates(
    gates: Sequence[Gate],
    passed: Sequence[str],
    mark_passed: Callable[[str], None],
    console: Console,
    failure_log: Path,
) -> list[Passed]:
    """Run each gate not yet passed, in order; raise the first GateFailed after saying so.
    Anything else a gate raises becomes a GateFailed too, its traceback appended to
    `failure_log`."""
    done: list[Passed] = []
    for gate in gates:
        if gate.name in passed:
            console.print(f"  [dim]✓ {gate.title} (passed before)[/]")
            continue
        started = time.monotonic()
        try:
            result = gate.run()
        except GateFailed as failure:
            console.print(f"  [red]✗ {gate.title}[/]: {failure.what}")
            raise
        except Exception as error:  # any gate's surprise is this gate's failure, told plainly
            _log(failure_log, gate)
            console.print(f"  [red]✗ {gate.title}[/]: {type(error).__name__}: {error}")
            raise GateFailed(
                f"{gate.title} failed: {type(error).__name__}: {error}",
                f"run the same command again (the traceback is in {failure_log})",
            ) from error
        seconds = time.monotonic() - started
        mark_passed(gate.name)
        shown = f": {result}" if result else ""
        console.print(f"  [green]✓[/] {gate.title}{shown} [dim]({seconds:.1f}s)[/]")
        done.append(Passed(gate.name, seconds, result))
    return done


def _log(path: Path, gate: Gate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log:
        log.write(f"{datetime.now(UTC).isoformat()} gate {gate.name} failed:\n")
        log.write(traceback.format_exc())


def wait_until(condition: Callable[[], bool], timeout: float, poll: float = 0.2) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
