"""The load comparison: every architecture, the same workload, the same machine, one run.

    comparison = run_comparison(scenario.profile("short"), scenario, Path("report"))

It seeds one home, then measures, in order: the monolith alone (no proxy), the monolith
behind the proxy (stage 0), and each stage of the migration up to the full split (stage 5),
moving the data forward between them exactly as `strangler stage goto` does. Each architecture
gets the same server worker budget (the monolith's gunicorn workers plus the services' uvicorn
workers: each running service gets one, the monolith the rest). Once started, it is first
watched with no traffic (the background window: what its polling costs), then the profile's
limit search, reference load and isolation experiment run in one locust run
(`loadtests.locustfile`), alone or as a master with worker processes; locust's own CSV
statistics and HTML report are kept in `locust/`. A sampler reads the CPU and memory of every
process of the architecture (workers included) and of locust's own processes, so each window's
figures come with what they cost. The systems run with tracing off (`OTEL_SDK_DISABLED=true`):
the figures are the architectures', not their tracing's. An architecture that fails is recorded
with its problem and the run goes on. This module must never judge the figures:
`strangler.compare.analysis` and `strangler.compare.report` do.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import psutil
from sqlalchemy.engine import make_url

from strangler.compare.database_processes import DatabaseProcesses
from strangler.compare.load import process_tree
from strangler.compare.results import (
    EMULATOR_ROLE,
    FUNCTIONS_ROLE,
    Architecture,
    Comparison,
    Settings,
    Window,
    endpoint_from_json,
)
from strangler.compare.sampler import Sampler
from strangler.compare.workload import PLAN_VARIABLE, WINDOWS_VARIABLE, Plan, Profile, Scenario
from strangler.conductor.gates import GateFailed
from strangler.conductor.prepare import advance, prepare
from strangler.conductor.settings import LOOSE_P95_RATIO, GateSettings
from strangler.runtime.home import Home
from strangler.runtime.plan import POLLER_SUFFIX, Budget, Topology
from strangler.runtime.processes import free_port
from strangler.runtime.system import RunningSystem, start
from strangler.runtime.topology import stage_topology
from strangler.serverless.emulator import EMULATOR
from strangler.workspace import Workspace, find_workspace

TRACING_OFF = "OTEL_SDK_DISABLED"
# Progress: (architecture key, what it is doing, windows done, windows in all)
Progress = Callable[[str, str, int, int], None]


@dataclass(frozen=True)
class Candidate:
    """An architecture to measure."""

    key: str
    title: str
    stage: int
    direct: bool = False


def candidates() -> list[Candidate]:
    """The monolith alone, then every stage of the migration, in order."""
    migration = find_workspace().migration()
    found = [Candidate("direct", "monolith direct (no proxy)", 0, direct=True)]
    for stage in migration.stages:
        found.append(Candidate(f"stage-{stage.number}", f"stage {stage.number}: {stage.title}",
                               stage.number))  # fmt: skip
    return found


def locustfile(workspace: Workspace) -> Path:
    """The workspace's locustfile (`load.locustfile` of its strangler.toml)."""
    named = workspace.spec.load.locustfile
    if named is None:
        raise ValueError(f"{workspace.file}: [load] names no locustfile to compare with")
    return workspace.root / named


def split_budget(topology: Topology, budget: int) -> tuple[Budget, dict[str, int]]:
    """Share `budget` server workers: one per running service, the rest to the monolith."""
    services = {context: 1 for context in topology.services}
    workers = dict(services)
    monolith = max(1, budget - len(services)) if topology.monolith_runs else 0
    if monolith:
        workers = {"monolith": monolith, **workers}
    return Budget(monolith_workers=max(1, monolith), service_workers=1), workers


FUNCTION_WORKER = "function_worker"  # in the command line of the proxy's function workers


def role_of(name: str) -> str:
    """What a supervised process is, for the CPU split: proxy, monolith, a service, sync,
    events, the emulator, or functions (a context's stream poller)."""
    if name in ("proxy", "monolith", *find_workspace().context_names):
        return name
    if name == EMULATOR:
        return EMULATOR_ROLE
    if name.endswith(POLLER_SUFFIX):
        return FUNCTIONS_ROLE
    return "sync" if name.endswith("-sync") else "events"


def member_role(role: str, command_line: list[str]) -> str:
    """The role of one process of a supervised process's tree: the proxy's function workers
    are the functions', not the proxy's."""
    if role == "proxy" and any(FUNCTION_WORKER in part for part in command_line):
        return FUNCTIONS_ROLE
    return role


def run_comparison(
    profile: Profile,
    scenario: Scenario,
    output: Path,
    only: list[str] | None = None,
    progress: Progress = lambda key, doing, done, total: None,
    use_environment: bool = False,
    hop_latency_ms: float = 0.0,
) -> Comparison:
    """Measure every architecture (or the keys in `only`) and return what was measured.

    The systems run from `output/home`: fresh SQLite files there, or, with
    `use_environment`, the databases the environment names (seeded and migrated stage by
    stage: never point it at data you care about)."""
    for previous in ("home", "logs", "locust"):
        if not use_environment or previous != "home":
            shutil.rmtree(output / previous, ignore_errors=True)
    (output / "logs").mkdir(parents=True)
    (output / "locust").mkdir()
    home = Home(output / "home", reads_environment=use_environment)
    measured = asdict(profile)
    settings = Settings(
        profile=measured.pop("name"),
        **measured,
        hot_endpoint=scenario.hot_endpoint,
        mix=scenario.mix(),
        hot_name=scenario.hot_name,
        hop_latency_ms=hop_latency_ms,
    )
    comparison = Comparison(settings, machine(home), time.time())
    chosen = [found for found in candidates() if only is None or found.key in only]
    gates = GateSettings(max_p95_ratio=LOOSE_P95_RATIO)
    with _tracing_off():
        _measure_all(chosen, comparison, home, profile, scenario, output, progress, gates)
    comparison.seconds = time.time() - comparison.started_at
    return comparison


@contextlib.contextmanager
def _tracing_off() -> Iterator[None]:
    """Every process started meanwhile runs with tracing off (they inherit the environment)."""
    before = os.environ.get(TRACING_OFF)
    os.environ[TRACING_OFF] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TRACING_OFF, None)
        else:
            os.environ[TRACING_OFF] = before


def _measure_all(
    chosen: list[Candidate],
    comparison: Comparison,
    home: Home,
    profile: Profile,
    scenario: Scenario,
    output: Path,
    progress: Progress,
    gates: GateSettings,
) -> None:
    for index, candidate in enumerate(chosen):
        progress(candidate.key, "preparing the data", 0, 0)
        try:
            # Nothing to do when the system measured before moved the data here already.
            prepare(home, candidate.stage, scale=profile.scale, gates=gates)
        except GateFailed as failure:
            # The data cannot reach this stage, so no later one can be measured either.
            unmeasured = _architecture(candidate, profile)[0]
            unmeasured.problems.append(f"preparing stage {candidate.stage}: {failure.what}")
            comparison.architectures.append(unmeasured)
            break
        following = chosen[index + 1] if index + 1 < len(chosen) else None
        comparison.architectures.append(
            measure(candidate, home, profile, scenario, output, progress,
                    _next_stage(candidate, following), gates)
        )  # fmt: skip


def _next_stage(measured: Candidate, following: Candidate | None) -> int | None:
    """The stage the system just measured moves its data on to once its load is over, or None.

    Moving in the measured system (after its windows, so no figure sees the move) saves the
    start and stop of a whole system per stage that `prepare` would pay: about 100 s of the
    demo's five minutes. The monolith alone has no proxy to move anything through."""
    if following is None or measured.direct or following.direct:
        return None
    return following.stage if following.stage > measured.stage else None


def _architecture(candidate: Candidate, profile: Profile) -> tuple[Architecture, Budget]:
    """The architecture's record, not yet measured, and the worker budget it runs with."""
    topology = stage_topology(find_workspace().migration(), candidate.stage, candidate.direct)
    budget, workers = split_budget(topology, profile.worker_budget)
    stage = None if candidate.direct else candidate.stage
    return Architecture(candidate.key, candidate.title, stage, workers, {}), budget


def database_urls(home: Home) -> list[str]:
    """Every database a system of this home may use: the monolith's, each context's, the bus."""
    names = ("monolith", *home.workspace.context_names, "bus")
    return [home.database_url(name) for name in names]


def machine(home: Home) -> dict[str, object]:
    """What the figures were measured on."""
    database = make_url(home.database_url("monolith")).get_backend_name()
    databases = DatabaseProcesses(database_urls(home))
    try:
        database_cpu = databases.describe()
    finally:
        databases.close()
    return {
        "cpus": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "locust": version("locust"),
        "database": database,
        "bus": make_url(home.database_url("bus")).get_backend_name(),
        "database_cpu": database_cpu,
    }


def measure(
    candidate: Candidate,
    home: Home,
    profile: Profile,
    scenario: Scenario,
    output: Path,
    progress: Progress,
    then_move_to: int | None = None,
    gates: GateSettings | None = None,
) -> Architecture:
    """Start one architecture, run the profile's load against it, then (with `then_move_to`)
    move its data on to that stage in place, and stop it. A move that fails is left to the
    next `prepare`, which resumes or undoes it."""
    began = time.time()
    found, budget = _architecture(candidate, profile)
    progress(candidate.key, "starting", 0, 0)
    try:
        # No console: it is no part of the architecture, and its polling would be counted.
        with start(home, candidate.stage, budget, direct=candidate.direct, console=False) as system:
            found.processes = {name: role_of(name) for name in system.pids()}
            found.windows = _load(system, candidate, home, profile, scenario, output, progress)
            found.seconds = time.time() - began
            if then_move_to is not None:
                progress(candidate.key, f"moving the data to stage {then_move_to}", 0, 0)
                _move_in_place(system, home, then_move_to, gates, output, candidate.key)
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as error:
        found.problems.append(f"{type(error).__name__}: {error}")
    found.seconds = found.seconds or time.time() - began
    return found


def _move_in_place(
    system: RunningSystem,
    home: Home,
    stage: int,
    gates: GateSettings | None,
    output: Path,
    key: str,
) -> None:
    """Move the measured system's data on to `stage`, and say how it went in `logs/moves.txt`.

    A move that fails here is no figure of this architecture: the next `prepare` resumes or
    undoes it, and reports a gate that fails again."""
    began = time.monotonic()
    try:
        advance(system, home, stage, gates=gates)
        outcome = f"moved in place in {time.monotonic() - began:.1f} s"
    except Exception as failed:
        reason = f"{type(failed).__name__}: {failed}"
        outcome = f"not moved in place ({reason}): left to the next preparation"
    with (output / "logs" / "moves.txt").open("a", encoding="utf-8") as moves:
        moves.write(f"{key} -> stage {stage}: {outcome}\n")


def _load(
    system: RunningSystem,
    candidate: Candidate,
    home: Home,
    profile: Profile,
    scenario: Scenario,
    output: Path,
    progress: Progress,
) -> list[Window]:
    hook = home.workspace.spec.load.plan_data
    data = home.workspace.resolve(hook)(profile.scale, home.token_secret()) if hook else {}
    plan = Plan.for_profile(profile, scenario, data=data)
    plan_file = output / "logs" / f"plan-{candidate.key}.json"
    windows_file = output / "logs" / f"windows-{candidate.key}.jsonl"
    plan.save(plan_file)
    windows_file.unlink(missing_ok=True)
    artefacts = output / "locust" / candidate.key
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile(home.workspace)), "--headless",
            "--host", system.url, "--only-summary", "--stop-timeout", "2",
            "--csv", str(artefacts), "--html", f"{artefacts}.html"]  # fmt: skip
    if profile.generator_processes > 1:
        # A port of its own for the master, on loopback: locust's default (5557) is shared by
        # every run on the machine, and a worker would join another run's master.
        port = str(free_port())
        argv += ["--processes", str(profile.generator_processes), "--master-bind-host",
                 "127.0.0.1", "--master-bind-port", port, "--master-port", port]  # fmt: skip
    environment = {
        **os.environ,
        "PYTHONPATH": home.workspace.python_path(),
        PLAN_VARIABLE: str(plan_file),
        WINDOWS_VARIABLE: str(windows_file),
    }
    log = output / "logs" / f"locust-{candidate.key}.log"
    generators: list[int] = []
    databases = DatabaseProcesses(database_urls(home))
    sampler = Sampler(
        system=lambda: {**_system_roles(system), **databases()},
        generator=lambda: process_tree(generators[0]) if generators else [],
    )
    sampler.start()
    try:
        idle = _idle(profile.idle_seconds, candidate.key, progress, system)
        if idle:
            # A sample between the background window's end and locust's start, so nothing
            # locust does (starting, its first requests) is read into that window.
            _sampled_after(sampler, idle[1])
        with log.open("w") as written:
            # Its own session: Ctrl-C reaches this process only, which stops locust and its
            # workers.
            generator = subprocess.Popen(
                argv, env=environment, stdout=written, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        generators.append(generator.pid)
        try:
            _wait(generator, windows_file, plan, candidate.key, progress)
        finally:
            _stop_group(generator)
    finally:
        sampler.stop()
        databases.close()
    windows = [_window(line, sampler) for line in _lines(windows_file)]
    if idle:
        # Read after the sampler stopped: its samples then reach past the window's end.
        windows.insert(0, Window("idle", 0, 0, idle[0], idle[1] - idle[0], [],
                                 sampler.resources(*idle)))  # fmt: skip
    measured = [window for window in windows if window.phase not in ("search", "idle")]
    # Locust exits with 1 when any request failed: failures are figures, not a broken run.
    if generator.returncode not in (0, 1) or len(measured) < len(plan.phases):
        raise RuntimeError(
            f"locust exited with {generator.returncode} after {len(windows)} windows, "
            f"{len(measured)} of its {len(plan.phases)} phases; see {log}"
        )
    return windows


def _sampled_after(sampler: Sampler, moment: float, most_seconds: float = 10.0) -> None:
    """Wait until the sampler's thread has sampled after `moment` (a busy machine delays it)."""
    deadline = time.monotonic() + most_seconds
    while time.monotonic() < deadline:
        samples = sampler.samples
        if samples and samples[-1].at > moment:
            return
        time.sleep(0.05)


def _idle(
    seconds: float, key: str, progress: Progress, system: RunningSystem
) -> tuple[float, float] | None:
    """The background window: the started system with no traffic at all, `seconds` long,
    once it has finished booting (its start and end; the sampler running meanwhile reads what
    it cost)."""
    if seconds <= 0:
        return None
    progress(key, "no traffic (background CPU)", 0, 0)
    _booted(system)
    started = time.time()
    time.sleep(seconds)
    return started, time.time()


BOOTING_CORES = 0.25  # a process busier than this with no traffic is still starting


def _booted(system: RunningSystem, step: float = 0.25, most_seconds: float = 10.0) -> bool:
    """Wait until no process of a just-started system is still starting: none used more than
    BOOTING_CORES over one `step` (a poller uses a few percent of a core; a process importing
    its application, a whole one). gunicorn answers the health check from its first worker up
    while the others still import the app: measured from there, the demo's 1 s background
    window read that boot as 0.2-0.3 cores of "polling" in a monolith that polls nothing.
    False when something was still busy after `most_seconds` (the window then goes ahead)."""
    deadline = time.monotonic() + most_seconds
    before = _cpu_by_process(system)
    while time.monotonic() < deadline:
        time.sleep(step)
        now = _cpu_by_process(system)
        busiest = max((now[pid] - before.get(pid, 0.0) for pid in now), default=0.0)
        if busiest <= BOOTING_CORES * step:
            return True
        before = now
    return False


def _cpu_by_process(system: RunningSystem) -> dict[int, float]:
    """User+system CPU seconds of every process of the system, each on its own."""
    found = {}
    for pid in _system_roles(system):
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        found[pid] = times.user + times.system
    return found


def _wait(
    generator: subprocess.Popen[bytes], windows: Path, plan: Plan, key: str, progress: Progress
) -> None:
    deadline = time.monotonic() + plan.seconds + 60 + 5 * len(plan.phases)
    total = plan.most_windows
    while generator.poll() is None:
        written = _lines(windows)
        progress(key, _doing(written, plan), len(written), total)
        if time.monotonic() > deadline:
            raise RuntimeError(f"locust ran past its plan's {plan.seconds:.0f} s")
        time.sleep(0.25)
    done = len(_lines(windows))
    progress(key, "done", done, done)


def _doing(written: list[dict], plan: Plan) -> str:
    """What locust is at, from the windows written so far (the search decides as it goes)."""
    after = [line for line in written if line["phase"] != "search"]
    if not after:  # the search, or the reference phase's settle time just after it
        last = written[-1]["users"] if written else None
        return "searching for the limit" + (f" (last step {last} users)" if last else "")
    phase = plan.phases[min(len(after), len(plan.phases) - 1)]
    hot = f" + {phase.hot_users} hot" if phase.hot_users else ""
    return f"{phase.phase}: {phase.users} users{hot}"


def _stop_group(generator: subprocess.Popen[bytes]) -> None:
    """Stop locust with every worker process it forked (they share its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(generator.pid, signal.SIGKILL)
    generator.wait()


def _lines(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def _window(line: dict, sampler: Sampler) -> Window:
    started, seconds = line["started_at"], line["seconds"]
    return Window(
        phase=line["phase"],
        users=line["users"],
        hot_users=line["hot_users"],
        started_at=started,
        seconds=seconds,
        endpoints=[endpoint_from_json(entry) for entry in line["endpoints"]],
        resources=sampler.resources(started, started + seconds),
        users_by_kind=line.get("users_by_kind", {}),
    )


def _system_roles(system: RunningSystem) -> dict[int, str]:
    roles = {}
    for name, pid in system.pids().items():
        role = role_of(name)
        for member in process_tree(pid):
            try:
                command_line = psutil.Process(member).cmdline() if member != pid else []
            except psutil.Error:
                command_line = []
            roles[member] = member_role(role, command_line)
    return roles
