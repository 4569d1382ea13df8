"""The supervisor: keeps exactly the processes of the desired topology running, and says so.

Each `reconcile` compares what should run (`plan` of the topology a `desired` callable returns:
the migration state for `strangler up`, a fixed stage for the `system` API) with what runs;
it stops processes no longer wanted (or whose command changed), starts missing ones, notices
which became healthy, restarts crashed ones with a growing pause, and writes `run.json`. It
never blocks on a slow process: health is probed once per tick with a short timeout. Every
child leads its own process group, so stopping one stops its workers too, and `stop_all`
leaves no process and no bound port behind. This module must never change the migration state.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from strangler.runtime.plan import Budget, Places, ProcessSpec, Topology, plan
from strangler.runtime.processes import ManagedProcess, answers, free_port, start
from strangler.runtime.runstate import ProcessRecord, RunRecord, started_at, write_run

# What `desired` returns: the revision it reflects, the stage, and the topology to run.
Desired = Callable[[], tuple[int, int, Topology]]
MAX_RESTART_PAUSE = 10.0


@dataclass
class _Child:
    spec: ProcessSpec
    process: ManagedProcess
    record: ProcessRecord
    next_restart: float = 0.0


class Supervisor:
    """Runs the processes of one system from one home folder."""

    def __init__(
        self,
        places: Places,
        run_file: Path,
        logs: Path,
        public_port: int,
        desired: Desired,
        budget: Budget = Budget(),
        front: str = "proxy",
        notify: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.places = places
        self.run_file = run_file
        self.logs = logs
        self.desired = desired
        self.budget = budget
        self.notify = notify
        self.ports: dict[str, int] = {front: public_port}
        self.children: dict[str, _Child] = {}
        self.public_url = f"http://127.0.0.1:{public_port}"
        self.record = RunRecord(
            supervisor_pid=os.getpid(),
            supervisor_started_at=started_at(os.getpid()),
            public_url=self.public_url,
            stage=0,
        )
        self._http = httpx.Client(timeout=1.0)

    def port_of(self, name: str) -> int:
        """The port of process `name`, chosen once per supervisor and then kept."""
        if name not in self.ports:
            self.ports[name] = free_port()
        return self.ports[name]

    def reconcile(self) -> RunRecord:
        """One pass: make the running processes match the desired topology; record the result."""
        revision, stage, topology = self.desired()
        specs = plan(topology, self.places, self.port_of, self.budget)
        wanted = {spec.name: spec for spec in specs}
        for name in [name for name in reversed(list(self.children)) if name not in wanted]:
            self._stop(name, "no longer needed")
        for spec in specs:
            child = self.children.get(spec.name)
            if child is not None and (child.spec.argv, child.spec.env) != (spec.argv, spec.env):
                self._stop(spec.name, "its configuration changed")
                child = None
            if child is None:
                self._start(spec)
            else:
                self._watch(child)
        self.record.stage = stage
        self.record.ports = dict(self.ports)
        self.record.wanted = list(wanted)
        self.record.processes = {name: child.record for name, child in self.children.items()}
        if self.record.is_settled:
            self.record.applied_revision = revision
        write_run(self.run_file, self.record)
        return self.record

    def settle(self, timeout: float = 120.0, poll: float = 0.1) -> RunRecord:
        """Reconcile until every wanted process is healthy; ProcessFailed-like error if not."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.reconcile()
            if record.is_settled:
                return record
            if time.monotonic() > deadline:
                raise SystemNotReady(unhealthy_report(record))
            time.sleep(poll)

    def run(self, should_stop: Callable[[], bool], tick: float = 0.2) -> None:
        """Reconcile every `tick` seconds until `should_stop()`."""
        while not should_stop():
            self.reconcile()
            time.sleep(tick)

    def stop_all(self) -> None:
        """Stop every process: all are asked at once, then each is waited for (and killed if it
        lingers), so stopping takes as long as the slowest, not the sum; record that."""
        for child in self.children.values():
            child.process.signal(signal.SIGTERM)
        for name in reversed(list(self.children)):
            self._stop(name, "stopping")
        self.record.processes = {}
        self.record.wanted = []
        write_run(self.run_file, self.record)
        self._http.close()

    @property
    def pids(self) -> dict[str, int]:
        return {name: child.process.popen.pid for name, child in self.children.items()}

    def _start(self, spec: ProcessSpec, restarts: int = 0) -> None:
        log_path = self.logs / f"{spec.name}.log"
        process = start(spec.name, spec.argv, spec.env, spec.health_url, log_path)
        record = ProcessRecord(
            name=spec.name,
            pid=process.popen.pid,
            started_at=started_at(process.popen.pid),
            port=spec.port,
            url=spec.url,
            health_url=spec.health_url,
            log=str(log_path),
            restarts=restarts,
        )
        self.children[spec.name] = _Child(spec, process, record)

    def _watch(self, child: _Child) -> None:
        record = child.record
        if not child.process.is_running:
            if record.state != "failed":
                code = child.process.popen.returncode
                pause = min(MAX_RESTART_PAUSE, 2.0**record.restarts)
                record.state, record.detail = "failed", f"exited with {code}; log: {record.log}"
                child.next_restart = time.monotonic() + pause
                self.notify(f"{record.name} exited with {code}; restarting in {pause:.0f}s")
            elif time.monotonic() >= child.next_restart:
                child.process.stop()
                self._start(child.spec, record.restarts + 1)
            return
        if record.state != "healthy" and self._answers(record.health_url):
            record.state, record.detail = "healthy", None

    def _answers(self, url: str) -> bool:
        return answers(url, self._http)

    def _stop(self, name: str, reason: str) -> None:
        child = self.children.pop(name)
        child.process.stop()
        if reason != "stopping":
            self.notify(f"stopped {name}: {reason}")


class SystemNotReady(RuntimeError):
    """Some wanted process did not become healthy in time."""


def unhealthy_report(record: RunRecord) -> str:
    """Which wanted processes are not healthy, and where their logs are."""
    lines = []
    for name in record.wanted:
        process = record.processes.get(name)
        if process is None:
            lines.append(f"{name}: not started")
        elif process.state != "healthy":
            lines.append(f"{name}: {process.state}; {process.detail or 'log: ' + process.log}")
    return "; ".join(lines) or "every process is healthy"
