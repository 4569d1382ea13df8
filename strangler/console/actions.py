"""The console's buttons: each runs the command the command line offers for it, as a process.

Continue, roll back, promote, check and verify are `strangler stage goto N`, `strangler extract
CONTEXT`, `strangler rollback CONTEXT`, `strangler check` and `strangler data verify CONTEXT`,
run in the system's folder, so the migration's lock, its durable state and its crash safety
apply exactly as in a terminal; their output is kept line by line for the page. Pause
interrupts the command running (Ctrl-C, as in a terminal): the gates it passed stay passed and
continue resumes after them. One command runs at a time. `command_for` is the pure choice of
a command from where the migration stands. This module must never change the migration state
itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from strangler.state import MigrationState
from strangler.workspace.stages import Migration

ActionName = Literal["continue", "rollback", "promote", "check", "verify"]
ACTIONS: tuple[str, ...] = ("continue", "rollback", "promote", "check", "verify", "pause")
MAX_LINES = 2000


class ActionRefused(ValueError):
    """The action makes no sense now; the message says why."""


def command_for(
    action: str,
    state: MigrationState,
    migration: Migration,
    stage: int | None = None,
    context: str | None = None,
) -> list[str]:
    """The `strangler` arguments that do `action` from where the migration stands."""
    last = migration.stages[-1].number
    moving = state.moving
    if action == "continue":
        if moving is not None:
            return ["stage", "goto", str(moving.to_stage)]
        if state.stage >= last:
            raise ActionRefused(f"the migration is at its last stage ({last})")
        following = migration.stage(state.stage + 1)
        if following.extracts is not None:
            return ["extract", following.extracts]
        return ["stage", "goto", str(following.number)]
    if action == "rollback":
        ahead = max(moving.from_stage, moving.to_stage) if moving is not None else state.stage
        if ahead == 0:
            raise ActionRefused("stage 0 has nothing to roll back")
        extracted = migration.stage(ahead).extracts
        if extracted is not None:
            return ["rollback", extracted]
        return ["stage", "goto", str(ahead - 1)]
    if action == "promote":
        wanted = last if stage is None else stage
        migration.stage(wanted)  # a stage that does not exist is refused here
        if moving is None and wanted == state.stage:
            raise ActionRefused(f"the migration is at stage {wanted} already")
        return ["stage", "goto", str(wanted)]
    if action == "check":
        return ["check"]
    if action == "verify":
        if context is None or context not in migration.contexts:
            raise ActionRefused("verify needs one of the workspace's contexts")
        return ["data", "verify", context]
    raise ActionRefused(f"there is no action {action!r}; the actions are {', '.join(ACTIONS)}")


@dataclass
class Run:
    """One command the console ran (or runs): its arguments, output and end."""

    number: int
    action: str
    argv: list[str]
    actor: str
    started_at: float
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_LINES))
    exit_code: int | None = None
    paused: bool = False

    def describe(self, since_line: int = 0) -> dict[str, Any]:
        return {
            "number": self.number,
            "action": self.action,
            "command": "strangler " + " ".join(self.argv),
            "actor": self.actor,
            "started_at": self.started_at,
            "running": self.exit_code is None,
            "exit_code": self.exit_code,
            "paused": self.paused,
            "lines": list(self.lines),
        }


class Runner:
    """Runs the console's commands in the system's folder, one at a time."""

    def __init__(self, folder: Path, program: Sequence[str] | None = None) -> None:
        self.folder = folder
        self.program = list(program or [sys.executable, "-m", "strangler"])
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self.current: Run | None = None
        self._count = 0

    @property
    def is_running(self) -> bool:
        return self.current is not None and self.current.exit_code is None

    def start(self, action: str, argv: list[str], actor: str) -> Run:
        """Start `strangler ARGV`; ActionRefused while another command runs."""
        with self._lock:
            if self.is_running:
                assert self.current is not None
                raise ActionRefused(
                    f"`{self.current.describe()['command']}` is running; pause it or wait"
                )
            self._count += 1
            run = Run(self._count, action, argv, actor, time.time())
            environment = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "120"}
            self._process = subprocess.Popen(
                [*self.program, *argv],
                cwd=self.folder,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
            self.current = run
        threading.Thread(target=self._follow, args=(run, self._process), daemon=True).start()
        return run

    def pause(self) -> Run:
        """Interrupt the running command as Ctrl-C would."""
        with self._lock:
            if not self.is_running or self._process is None or self.current is None:
                raise ActionRefused("no command is running")
            self.current.paused = True
            os.killpg(self._process.pid, signal.SIGINT)
            return self.current

    def _follow(self, run: Run, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            run.lines.append(line.rstrip("\n"))
        run.exit_code = process.wait()
        run.lines.append(f"(exited with {run.exit_code})")

    def stop(self) -> None:
        """Stop a command still running (the console is stopping)."""
        with self._lock:
            if self.is_running and self._process is not None:
                os.killpg(self._process.pid, signal.SIGINT)
