"""The record of a running system, `.strangler/run.json`: who supervises it and what runs.

The supervisor (`strangler up`, the demo, the `system` API) writes it after every change, with
each process's pid, start time, port and log, so that `strangler down`, `status`, `check` and
`extract` from another terminal can find and reach them. Only the supervisor writes it, always
atomically (a new file renamed over the old); anyone may read it. A pid is trusted only with
its start time, so a recycled pid is never mistaken for ours. This module must never start a
process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Literal

import psutil
from pydantic import BaseModel, ValidationError

ProcessState = Literal["starting", "healthy", "failed"]
DataPlaneName = Literal["python", "nginx"]
ADMIN = "proxy-admin"  # the name of the proxy's admin port among the recorded ports


class ProcessRecord(BaseModel):
    """One supervised process as the supervisor last saw it."""

    name: str
    pid: int
    started_at: float
    port: int
    url: str
    health_url: str
    log: str
    fingerprint: str = ""  # of its command and environment (`supervisor.fingerprint`)
    state: ProcessState = "starting"
    detail: str | None = None
    restarts: int = 0


class RunRecord(BaseModel):
    """What `run.json` holds."""

    supervisor_pid: int
    supervisor_started_at: float
    public_url: str
    stage: int
    # Who serves the public port: the Python proxy, or nginx in front of it (docs/proxy.md).
    data_plane: DataPlaneName = "python"
    applied_revision: int = -1
    ports: dict[str, int] = {}
    processes: dict[str, ProcessRecord] = {}
    wanted: list[str] = []

    @property
    def is_settled(self) -> bool:
        """Every wanted process runs and is healthy."""
        return all(
            name in self.processes and self.processes[name].state == "healthy"
            for name in self.wanted
        )

    def url_of(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def admin_url(self) -> str:
        """Where the proxy's admin API answers: its own loopback port, else the public one."""
        return self.url_of(ADMIN) if ADMIN in self.ports else self.public_url


def read_run(path: Path) -> RunRecord | None:
    """The record, or None when nothing was recorded (or the file is not a record)."""
    try:
        return RunRecord.model_validate_json(path.read_text())
    except (OSError, ValidationError):
        return None


def write_run(path: Path, record: RunRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(record.model_dump_json(indent=2))
    partial.replace(path)


def started_at(pid: int) -> float:
    """When process `pid` started (its identity together with the pid)."""
    return float(psutil.Process(pid).create_time())


def is_alive(pid: int, started: float) -> bool:
    """Whether the process that started as `pid` at `started` still runs (a zombie does not)."""
    try:
        process = psutil.Process(pid)
        return (
            abs(process.create_time() - started) < 0.01 and process.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def supervisor_alive(record: RunRecord) -> bool:
    return is_alive(record.supervisor_pid, record.supervisor_started_at)


def stop_recorded(record: ProcessRecord, grace: float = 10.0) -> bool:
    """Stop a process someone else started (and its process group); True if it was running."""
    if not is_alive(record.pid, record.started_at):
        return False
    _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and is_alive(record.pid, record.started_at):
        time.sleep(0.05)
    _signal_group(record.pid, signal.SIGKILL)
    return True


def stop_leftovers(*records: RunRecord) -> list[str]:
    """Stop every process these records name that still runs (a supervisor was killed, or
    was too slow to stop them); the names of those that were running."""
    recorded: dict[str, ProcessRecord] = {}
    for record in records:
        recorded.update(record.processes)
    return [process.name for process in recorded.values() if stop_recorded(process)]


def _signal_group(pid: int, signum: int) -> None:
    # Each supervised process leads its own group (start_new_session), workers included.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
