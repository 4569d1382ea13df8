"""The supervisor: keeps exactly the processes of the desired topology running, and says so.

Each `reconcile` compares what should run (`plan` of the topology a `desired` callable returns:
the migration state for `strangler up`, a fixed stage for the `system` API) with what runs;
it stops processes no longer wanted (or whose command changed), starts missing ones, notices
which became healthy, restarts crashed ones after the pause of their `RestartPolicy` (at once
for nginx, a growing pause for the rest), and writes `run.json`. It never blocks on a slow
process: health is probed once per tick with a short timeout. Every child leads its own
process group, so stopping one stops its workers too, and `stop_all` leaves no process and no
bound port behind. A supervisor started after one that died adopts the processes it left:
each one still alive, answering, and started with exactly the command and environment the
plan gives now keeps running (a crashed `strangler up` costs no outage); the others are
stopped and started afresh. This module must never change the migration state.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from strangler.runtime.plan import Budget, Places, ProcessSpec, Topology, plan
from strangler.runtime.processes import (
    AdoptedProcess,
    ManagedProcess,
    answers,
    free_port,
    start,
)
from strangler.runtime.run_record import (
    ProcessRecord,
    RunRecord,
    is_alive,
    started_at,
    stop_recorded,
    write_run,
)

# What `desired` returns: the revision it reflects, the stage, and the topology to run.
Desired = Callable[[], tuple[int, int, Topology]]
# A process healthy this long counts as recovered: its next crash is its first again.
STEADY_SECONDS = 30.0


def fingerprint(spec: ProcessSpec) -> str:
    """What a process was started with (command, added environment, port): an adopted process
    must match the plan exactly."""
    described = json.dumps([list(spec.argv), sorted(spec.env.items()), spec.port])
    return hashlib.sha256(described.encode()).hexdigest()[:32]


@dataclass
class _Child:
    spec: ProcessSpec
    process: ManagedProcess | AdoptedProcess
    record: ProcessRecord
    next_restart: float = 0.0
    healthy_since: float | None = None  # monotonic
    crashes: int = 0  # in a row, without a healthy spell of STEADY_SECONDS between them


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
        adopt: RunRecord | None = None,
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
            data_plane="nginx" if places.data_plane == "nginx" else "python",
        )
        self._http = httpx.Client(timeout=1.0)
        self._orphans: dict[str, ProcessRecord] = {}
        self._has_settled = False  # once every process ran healthy, starts are news
        if adopt is not None:
            # Keep the ports the processes to adopt listen on (their environments name them).
            self.ports = {**adopt.ports, front: public_port}
            self._orphans = {
                name: found
                for name, found in adopt.processes.items()
                if is_alive(found.pid, found.started_at)
            }

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
        if self._orphans:
            self._adopt(wanted)
        for name in [name for name in reversed(list(self.children)) if name not in wanted]:
            self._stop(name, "the migration no longer needs it")
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
            self._has_settled = True
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
        return {name: child.process.pid for name, child in self.children.items()}

    def _adopt(self, wanted: dict[str, ProcessSpec]) -> None:
        """Take over the processes a dead supervisor left that the plan still wants, exactly
        as they are and answering; stop every other one it left."""
        for name, found in self._orphans.items():
            spec = wanted.get(name)
            matches = spec is not None and found.fingerprint == fingerprint(spec)
            if matches and spec is not None and self._answers(found.health_url):
                process = AdoptedProcess(name, found.pid, found.started_at, Path(found.log))
                record = found.model_copy(update={"state": "healthy", "detail": None})
                self.children[name] = _Child(spec, process, record)
                self.notify(f"adopted {name} (pid {found.pid}), still running")
            else:
                stop_recorded(found)
                self.notify(f"stopped {name} (pid {found.pid}) an earlier run left")
        self._orphans = {}

    def _start(self, spec: ProcessSpec, restarts: int = 0, crashes: int = 0) -> None:
        if self._has_settled and not restarts:
            self.notify(f"started {spec.name}: the migration needs it")
        log_path = self.logs / f"{spec.name}.log"
        process = start(spec.name, spec.argv, spec.env, spec.health_url, log_path)
        record = ProcessRecord(
            name=spec.name,
            pid=process.pid,
            started_at=started_at(process.pid),
            fingerprint=fingerprint(spec),
            port=spec.port,
            url=spec.url,
            health_url=spec.health_url,
            log=str(log_path),
            restarts=restarts,
        )
        self.children[spec.name] = _Child(spec, process, record, crashes=crashes)

    def _watch(self, child: _Child) -> None:
        record = child.record
        if not child.process.is_running:
            if record.state != "failed":
                self._crashed(child)
            if time.monotonic() >= child.next_restart:  # in the same pass when no pause
                child.process.stop()
                self._start(child.spec, record.restarts + 1, child.crashes)
            return
        if record.state != "healthy" and self._answers(record.health_url):
            record.state, record.detail = "healthy", None
            child.healthy_since = time.monotonic()

    def _crashed(self, child: _Child) -> None:
        """Record a crash and when to restart (the process's `RestartPolicy`)."""
        record = child.record
        code = child.process.returncode
        steady = child.healthy_since is not None and (
            time.monotonic() - child.healthy_since >= STEADY_SECONDS
        )
        child.crashes = 0 if steady else child.crashes
        pause = child.spec.restart.pause(child.crashes)
        child.crashes += 1
        record.state, record.detail = "failed", f"exited with {code}; log: {record.log}"
        # Workers a killed master left behind (nginx's, gunicorn's) would go on serving
        # what it served: stop its whole group now, not at the restart.
        child.process.stop()
        child.next_restart = time.monotonic() + pause
        when = f"in {pause:.2g}s" if pause else "now"
        self.notify(f"{record.name} exited with {code}; restarting {when}")

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
