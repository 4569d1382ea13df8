"""What every gate is, and the failure it raises. This module must never know what a gate does."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class GateFailed(RuntimeError):
    """A gate's check did not pass: `what` happened, and `todo` is what the person should do."""

    def __init__(self, what: str, todo: str) -> None:
        super().__init__(f"{what}; {todo}")
        self.what = what
        self.todo = todo


class Gate(Protocol):
    """One step of a move, and its undo."""

    @property
    def name(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def undo_title(self) -> str: ...

    def run(self) -> str | None:
        """Do the work and check it; a short result to show (`"1,204 rows"`)."""
        ...

    def undo(self) -> str | None:
        """Put back what `run` changed (safe when `run` never ran, or stopped half-way)."""
        ...


def wait_until(condition: Callable[[], bool], timeout: float, poll: float = 0.2) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
