"""A crash at any moment of a move loses nothing: kill the system at every gate boundary and
at every step inside the write freeze, restart it, run the interrupted command again, and
every acknowledged write is still there, once, on the one side that owns it.

Each scenario runs the real `strangler up` and `strangler extract` / `rollback` processes on a
folder of its own, under a steady load of reads and writes through the public port. The
command is stopped on purpose at named points (`STRANGLER_PAUSE_AT`, `strangler.conductor
.faults`), then one of these crashes happens:

- everything: the supervisor, every process it runs (and their workers) and the command are
  SIGKILLed at once, as when a machine loses power; `strangler up` is started again;
- the supervisor: `strangler up` and the command are SIGKILLed, their children survive; the new
  `strangler up` adopts them (the proxy keeps its pid: no outage);
- the proxy: only the proxy is SIGKILLed; the supervisor restarts it and the paused command
  goes on (the freeze, the routes and the owners come back from the durable state); under
  `--data-plane nginx` (tests/e2e/test_nginx_crash_safety.py), nginx or its control loop alone,
  the same way;
- the command: only the command is SIGKILLed inside its freeze; the freeze ends by itself
  within its lease and writes flow again.

After each crash the command is run again until it finishes. At the end: the load's every
acknowledged write reads back, none was acknowledged twice (ids handed out by both sides),
writes to the moved context succeed, and `strangler check` passes (one owner per context, both
copies equal, no freeze left).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from loadtests.steady import SteadyLoad, verify
from strangler.cli.demo import freeze_windows
from strangler.runtime.processes import free_port
from strangler.runtime.run_record import read_run
from strangler.state import StateFile
from tests.support.command_line import environment, strangler
from tests.support.databases import fresh_database

pytestmark = pytest.mark.slow

GATES = {
    "STRANGLER_GATE_SHADOW_MIN_COMPARED": "10",
    "STRANGLER_GATE_CANARY_STEPS": "[100]",
    "STRANGLER_GATE_CANARY_MIN_REQUESTS": "2",
    "STRANGLER_GATE_MAX_P95_RATIO": "1000",  # a loaded CI machine is no measure of a service
    "STRANGLER_GATE_FREEZE_LEASE_SECONDS": "3",
}
# Every gate boundary of extracting users, and every step of its cutover.
EXTRACT = [
    "passed:capture", "passed:backfill", "started:sync", "passed:sync", "passed:verify",
    "started:service", "passed:service", "passed:shadow", "passed:canary", "started:cutover",
    "step:catch up", "step:freeze", "step:drain", "step:verify", "step:switch feeds",
    "step:flip routes", "step:finish", "passed:cutover",
]  # fmt: skip
# The rollback of users: the undo of its cutover (every step), then of the gates before it.
ROLLBACK = [
    "started:cutover", "step:freeze", "step:drain", "step:verify", "step:switch feeds",
    "step:flip routes", "step:finish", "passed:cutover", "passed:canary", "started:service",
    "passed:service", "passed:sync", "passed:capture",
]  # fmt: skip
# Inside the freeze, where a crash matters most.
FROZEN = ["step:drain", "step:switch feeds", "step:flip routes", "step:finish"]
# For the crashes that leave part of the system running: a few gate boundaries and the freeze.
SOME = ["passed:backfill", "passed:service", "started:cutover", *FROZEN, "passed:cutover"]


@dataclass
class System:
    """A folder's `strangler up`, restartable."""

    folder: Path
    port: int
    env: Mapping[str, str]
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    arguments: tuple[str, ...] = ()  # more of `strangler up`'s options

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start `strangler up` (its output appended to up.log) and wait for its `ready`."""
        log = self.folder / "up.log"
        seen = log.read_text() if log.exists() else ""
        with log.open("a") as written:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "strangler", "up", "--port", str(self.port),
                 "--scale", "0.02", *self.arguments],
                cwd=self.folder, env=environment(self.folder, self.env), text=True,
                stdout=written, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            fresh = log.read_text()[len(seen) :]
            if any(line.startswith("ready") for line in fresh.splitlines()):
                self.output = fresh.splitlines()
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("strangler up did not become ready:\n" + log.read_text()[-4000:])

    def log(self) -> str:
        return (self.folder / "up.log").read_text()

    def pid_of(self, name: str) -> int:
        """The pid of process `name` once it runs, healthy (a restart may be under way)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            record = read_run(self.folder / ".strangler" / "run.json")
            found = record.processes.get(name) if record else None
            if found is not None and found.state == "healthy" and psutil.pid_exists(found.pid):
                return found.pid
            time.sleep(0.1)
        raise AssertionError(f"{name} did not run healthy again")

    def kill_everything(self) -> None:
        """The supervisor, its processes and their workers, at once (a power cut)."""
        assert self.process is not None
        tree = psutil.Process(self.process.pid).children(recursive=True)
        for found in [psutil.Process(self.process.pid), *tree]:
            with contextlib.suppress(psutil.Error):
                found.kill()
        self.process.wait(timeout=10)
        psutil.wait_procs(tree, timeout=10)

    def kill_supervisor(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.communicate(timeout=120)
        strangler(self.folder, "down")


@contextmanager
def running(folder: Path, env: Mapping[str, str], *arguments: str) -> Iterator[System]:
    system = System(folder, free_port(), {**GATES, **env}, arguments=arguments)
    system.start()
    try:
        yield system
    finally:
        system.stop()


def command(system: System, *arguments: str, pause_at: str | None = None) -> subprocess.Popen[str]:
    extra = {**system.env, **({"STRANGLER_PAUSE_AT": pause_at} if pause_at else {})}
    return subprocess.Popen(
        [sys.executable, "-m", "strangler", *arguments], cwd=system.folder,
        env=environment(system.folder, extra), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def pause_point(system: System, process: subprocess.Popen[str]) -> str | None:
    """Wait until the command pauses (the point it paused at) or exits (None)."""
    marker = system.folder / ".strangler" / "paused"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if marker.exists():
            text = marker.read_text()
            if text.endswith("\n") and text.count("\n") >= 2:
                return text.splitlines()[0]
        if process.poll() is not None:
            return None
        time.sleep(0.05)
    raise AssertionError("the command neither paused nor finished")


def resume(system: System) -> None:
    (system.folder / ".strangler" / "paused").unlink(missing_ok=True)


def finish(system: System, *arguments: str) -> None:
    """Run the command again until it completes (a resumed move may need one more run when
    its gate failed on the crash it met)."""
    for _ in range(3):
        done = command(system, *arguments)
        output = done.communicate(timeout=600)[0]
        if done.returncode == 0:
            return
    raise AssertionError(
        f"`strangler {' '.join(arguments)}` did not finish:\n{output}\n"
        f"strangler up said:\n{system.log()[-3000:]}"
    )


def writes_flow(system: System) -> None:
    """A write to users succeeds within the freeze's lease (no wedged freeze)."""
    deadline = time.monotonic() + 30
    name = f"probe_{time.monotonic_ns() % 10**12}"
    body = {"username": name, "email": f"{name}@example.org", "password": "probe-password",
            "display_name": "Probe"}  # fmt: skip
    while time.monotonic() < deadline:
        try:
            answer = httpx.post(f"{system.url}/api/users", json=body, timeout=10)
            if answer.status_code in (201, 409):  # 409: an earlier try was applied
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("writes to users still fail well after the crash")


def crash(system: System, kind: str, process: subprocess.Popen[str]) -> None:
    """One crash of `kind` while the command is paused; the system is serving again after."""
    if kind in ("proxy", "nginx", "nginx-control"):
        os.kill(system.pid_of(kind), signal.SIGKILL)
        time.sleep(0.5)
        resume(system)  # the command goes on against the restarted process
        return
    process.kill()
    process.communicate(timeout=30)
    resume(system)
    if kind == "command":
        return
    proxy = system.pid_of("proxy")
    if kind == "everything":
        system.kill_everything()
    else:
        system.kill_supervisor()
    system.start()
    if kind == "supervisor":
        assert system.pid_of("proxy") == proxy, "the new supervisor restarted the proxy"
        assert "adopted proxy" in system.log()


def walk(
    system: System, verb: str, points: list[str], kind: str, context: str = "users",
    options: tuple[str, ...] = (),
) -> None:  # fmt: skip
    """`strangler <verb> CONTEXT [OPTIONS]`, crashed at each of `points` in turn (a command
    that fails after a crash is run again, as a person would), then finished."""
    remaining, crashed, attempts = list(points), [], 0
    process: subprocess.Popen[str] | None = None
    while remaining and attempts < 3 * len(points):
        if process is None or process.poll() is not None:
            process = command(system, verb, context, *options, pause_at=",".join(remaining))
            attempts += 1
        point = pause_point(system, process)
        if point is None:
            output = process.communicate()[0]
            if process.returncode == 0:
                break  # the move finished: the points left come before where it resumed
            assert "Traceback" not in output, output
            continue
        crash(system, kind, process)
        crashed.append(point)
        if process.poll() is not None:  # its freeze, if any, died with it: writes must flow
            writes_flow(system)
        remaining = remaining[remaining.index(point) + 1 :]
    assert len(crashed) >= len(points) // 2, f"crashed only at {crashed}"
    if process is not None and process.poll() is None:
        process.communicate(timeout=600)  # a command that outlived the crash goes on to its end
    if process is None or process.returncode != 0:
        finish(system, verb, context, *options)  # (again on top of a finished move: refused)


def assert_nothing_lost(system: System, load: SteadyLoad, stage: int) -> None:
    state = StateFile(system.folder / ".strangler" / "migration.json").read()
    assert state.stage == stage and state.moving is None
    owner = "service" if stage else "monolith"
    assert state.owner_of("users") == owner
    checked = strangler(system.folder, "check", env=system.env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = verify(load.ledger, system.url)
    assert found.is_complete, found.missing[:10]
    assert not load.ledger.duplicates


def scenario(folder: Path, env: Mapping[str, str], kind: str, extract: list[str],
             back: list[str]) -> None:  # fmt: skip
    with running(folder, env) as system:
        load = SteadyLoad(system.url, rate=8)
        load.start()
        try:
            walk(system, "extract", extract, kind)
            writes_flow(system)
            walk(system, "rollback", back, kind)
            writes_flow(system)
        finally:
            load.stop()
        assert_nothing_lost(system, load, stage=0)
        # The load's failures all fell in freezes or in the crashes themselves: none after.
        windows = freeze_windows(StateFile(folder / ".strangler" / "migration.json").read())
        assert load.ledger.outcomes and windows


def test_a_power_cut_at_every_step_of_an_extraction_and_its_rollback_loses_nothing(
    tmp_path: Path,
) -> None:
    scenario(tmp_path, {}, "everything", EXTRACT, ROLLBACK)


@pytest.mark.parametrize("kind", ["supervisor", "proxy"])
def test_a_crash_of_one_part_inside_the_freeze_and_around_it_loses_nothing(
    tmp_path: Path, kind: str
) -> None:
    scenario(tmp_path, {}, kind, SOME, FROZEN)


def test_a_command_killed_inside_its_freeze_leaves_no_freeze_and_loses_nothing(
    tmp_path: Path,
) -> None:
    scenario(tmp_path, {}, "command", FROZEN, FROZEN)


@pytest.mark.postgres
def test_on_postgresql_a_crash_inside_the_freeze_loses_nothing(tmp_path: Path) -> None:
    with (
        fresh_database("postgres", tmp_path, "monolith") as monolith,
        fresh_database("postgres", tmp_path, "users") as users,
    ):
        env = {"MONOLITH_DATABASE_URL": monolith, "USERS_DATABASE_URL": users}
        scenario(tmp_path, env, "everything", FROZEN, FROZEN)
