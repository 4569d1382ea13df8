"""A running system as the conductor sees it: through its supervisor's run record.

`strangler up` (in another terminal, or a thread of the demo) supervises the processes and
writes `run.json`; a migration command attaches to it, checks that the system answering is
really this folder's (its proxy says the folder's system id), asks for processes by writing the
migration state, and waits here until the supervisor has applied that state's revision with
every process healthy. This module must never start or stop a process.
"""

from __future__ import annotations

import time

import httpx

from strangler.gateways.nginx_control import PlaneNotApplied, read_applied, wait_applied
from strangler.runtime.home import Home
from strangler.runtime.plan import NGINX
from strangler.runtime.run_record import RunRecord, read_run, supervisor_alive
from strangler.runtime.supervisor import unhealthy_report


class NotRunning(RuntimeError):
    """Migration commands need this folder's system running (`strangler up`)."""


class SystemGone(RuntimeError):
    """The supervisor stopped, or the processes did not become healthy in time."""


class Supervised:
    """The system a home's supervisor runs, read from its run record."""

    def __init__(self, home: Home, record: RunRecord) -> None:
        self.home = home
        self.record = record

    @classmethod
    def attach(cls, home: Home) -> Supervised:
        """This folder's running system, or NotRunning saying why not."""
        record = read_run(home.run_file)
        if record is None or not supervisor_alive(record):
            raise NotRunning(
                "nothing is running from this folder: start it with `strangler up` "
                "(in another terminal), then run this again"
            )
        found = cls(home, record)
        found.check_identity()
        return found

    def check_identity(self, patience: float = 30.0) -> None:
        """Refuse a proxy that answers for another folder's system (its port was taken); wait
        up to `patience` seconds for one the supervisor is restarting."""
        deadline = time.monotonic() + patience
        while True:
            try:
                answer = httpx.get(
                    f"{self.record.admin_url}/_admin/identity",
                    headers={"Authorization": f"Bearer {self.home.admin_token()}"},
                    timeout=5,
                )
                break
            except httpx.HTTPError as error:
                record = read_run(self.home.run_file)
                if time.monotonic() > deadline or record is None or not supervisor_alive(record):
                    raise NotRunning(f"this folder's proxy does not answer: {error}") from error
                self.record = record
                time.sleep(0.5)
        system = answer.json().get("system") if answer.status_code == 200 else None
        if system != self.home.system_id():
            raise NotRunning(
                f"the proxy at {self.record.admin_url} is not this folder's system "
                f"(it answered {answer.status_code}); stop whatever holds its ports"
            )

    @property
    def public_url(self) -> str:
        return self.record.public_url

    @property
    def admin_url(self) -> str:
        return self.record.admin_url

    def url_of(self, name: str) -> str:
        return self.record.url_of(name)

    def health_url_of(self, name: str) -> str:
        return self.record.processes[name].health_url

    def log_of(self, name: str) -> str:
        found = self.record.processes.get(name)
        return found.log if found else str(self.home.logs / f"{name}.log")

    def await_plane(self, revision: int, timeout: float) -> None:
        """Under nginx, wait for its control loop's acknowledgement of state `revision`
        (`nginx_control.wait_applied`); the Python proxy in front applies every state itself."""
        record = read_run(self.home.run_file) or self.record
        if record.data_plane != "nginx":
            return
        folder = self.home.root / NGINX
        try:
            wait_applied(lambda: read_applied(folder), revision, timeout)
        except PlaneNotApplied as error:
            raise SystemGone(str(error)) from error

    def settle(self, revision: int, timeout: float) -> None:
        """Wait until the supervisor applied state `revision` and every process is healthy."""
        deadline = time.monotonic() + timeout
        while True:
            record = read_run(self.home.run_file)
            if record is None or not supervisor_alive(record):
                raise SystemGone("the supervisor stopped; start it again with `strangler up`")
            if record.applied_revision >= revision and record.is_settled:
                self.record = record
                return
            if time.monotonic() > deadline:
                raise SystemGone(f"processes did not become healthy: {unhealthy_report(record)}")
            time.sleep(0.2)
