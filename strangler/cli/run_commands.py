"""`strangler up` and `strangler down`: run a home's system in the foreground, stop it.

`up` is the supervisor: it seeds a fresh folder, starts what the migration state needs, prints
the URL once everything is healthy, then keeps the processes matching the state that migration
commands (in other terminals) change, until Ctrl-C, SIGTERM or `strangler down`. Either way it
stops every process it started. This module must never move data or change the migration state.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from contextlib import AbstractContextManager
from pathlib import Path

import typer
from rich.console import Console

from strangler.cli.bars import table_bars
from strangler.cli.interrupts import StopRequested, ignore_signals, stop_on_signals
from strangler.cli.status_screen import render
from strangler.conductor.gates import GateFailed
from strangler.conductor.inspection import as_document, inspect
from strangler.conductor.state import read_state
from strangler.runtime.home import Home
from strangler.runtime.plan import Budget, Topology
from strangler.runtime.runstate import is_alive, read_run, stop_leftovers, supervisor_alive
from strangler.runtime.supervisor import Supervisor, SystemNotReady, unhealthy_report
from strangler.runtime.system import SeedProgress, prepare, seed_if_empty, supervise
from strangler.workspace import WorkspaceError
from strangler.workspace.hooks import SeedReport
from strangler.workspace.stages import StageError

console = Console(highlight=False, soft_wrap=True)


def seed_progress() -> AbstractContextManager[SeedProgress]:
    """A progress bar per table while seeding; yields the callback the seed hook reports to."""
    return table_bars(console, "seeding", transient=True)


def print_seeded(result: SeedReport) -> None:
    console.print(
        f"seeded {result.total_rows:,} rows in {result.seconds:.2f}s "
        f"([bold]{result.total_rows / max(result.seconds, 1e-9):,.0f} rows/s[/])"
        + (f"; {result.note}" if getattr(result, "note", "") else "")
    )


def seed_with_progress(home: Home, scale: float, seed_value: int = 42) -> None:
    """Migrate the monolith's database and seed it if it is empty, showing progress."""
    with seed_progress() as report:
        result = seed_if_empty(home, scale, seed_value, report)
    if result is not None:
        print_seeded(result)


def refuse_if_running(home: Home) -> None:
    """Refuse a second supervisor; stop what a killed one left behind (its ports are ours)."""
    record = read_run(home.run_file)
    if record is not None and supervisor_alive(record):
        console.print(
            f"[red]this folder's system is already running[/] at {record.public_url} "
            f"(pid {record.supervisor_pid}); `strangler down` stops it"
        )
        raise typer.Exit(1)
    if record is not None and (leftovers := stop_leftovers(record)):
        console.print(f"stopped what an earlier run left behind: {', '.join(leftovers)}")


def settle_with_progress(supervisor: Supervisor, timeout: float = 180.0) -> None:
    """Reconcile until everything is healthy, showing which processes are still starting."""
    deadline = time.monotonic() + timeout
    with console.status("starting") as status:
        while True:
            record = supervisor.reconcile()
            if record.is_settled:
                return
            waiting = [
                name
                for name in record.wanted
                if name not in record.processes or record.processes[name].state != "healthy"
            ]
            ready = len(record.wanted) - len(waiting)
            status.update(
                f"starting: {ready}/{len(record.wanted)} healthy; waiting for {', '.join(waiting)}"
            )
            if time.monotonic() > deadline:
                raise SystemNotReady(unhealthy_report(record))
            time.sleep(0.1)


def up(
    port: int = typer.Option(8000, help="The public port."),
    stage: int | None = typer.Option(
        None, help="Stage to run; a folder elsewhere is moved there first (default: where it is)."
    ),
    no_proxy: bool = typer.Option(False, "--no-proxy", help="Serve the monolith alone (stage 0)."),
    workers: int = typer.Option(2, help="gunicorn workers for the monolith."),
    service_workers: int = typer.Option(1, help="uvicorn workers for each service."),
    scale: float = typer.Option(1.0, help="Seed size on the first run."),
) -> None:
    """Run this folder's system in the foreground until Ctrl-C, SIGTERM or `strangler down`.

    The first run migrates and seeds the monolith's database (under ./.strangler/). Then it
    starts what the stage needs (monolith, services, relays, consumers, feeds, the proxy on the
    public port), prints the URL, and follows `strangler extract` and `stage goto` from other
    terminals, starting and stopping processes as the migration moves.
    """
    stop_on_signals()
    home = Home.here()
    supervisor: Supervisor | None = None
    try:
        running_stage = _ready(home, stage, no_proxy, scale)
        supervisor = _supervisor(home, port, no_proxy, Budget(workers, service_workers))
        settle_with_progress(supervisor)
        migration = home.workspace.migration()
        front = "monolith alone" if no_proxy else migration.stage(running_stage).label
        console.print(
            f"[green]ready[/] {supervisor.public_url}  ({front}; "
            f"logs in {_relative(home.logs)}; Ctrl-C or `strangler down` stops)"
        )
        supervisor.run(should_stop=lambda: False)
    except StopRequested:
        pass
    except (SystemNotReady, StageError, WorkspaceError, FileNotFoundError, ValueError) as error:
        console.print(f"[red]the system did not start[/]: {error}")
        raise typer.Exit(1) from error
    except GateFailed as failure:
        console.print(f"[red]the data did not reach stage {stage}[/]: {failure.what}")
        console.print(f"[bold]what to do[/]: {failure.todo}")
        raise typer.Exit(1) from failure
    finally:
        ignore_signals()
        if supervisor is not None:
            supervisor.stop_all()
            console.print("stopped")


def _ready(home: Home, stage: int | None, no_proxy: bool, scale: float) -> int:
    """Seed a fresh folder, move its data to `stage` if asked; the stage it is at now."""
    refuse_if_running(home)
    home.workspace.migration()  # a broken workspace file stops here, naming its line
    state = read_state(home.state_file)
    if no_proxy and state.stage != 0:
        raise StageError(f"--no-proxy runs stage 0 only; this folder is at stage {state.stage}")
    seed_with_progress(home, scale)
    if stage is not None and (stage != state.stage or state.moving is not None):
        console.print(f"moving this folder's data to stage {stage} first")
        prepare(home, stage, console=console)
    return read_state(home.state_file).stage


def _supervisor(home: Home, port: int, no_proxy: bool, budget: Budget) -> Supervisor:
    def notify(message: str) -> None:
        console.print(f"[yellow]{message}[/]")

    if not no_proxy:
        return supervise(home, port, budget, notify)
    return Supervisor(
        home.places(), home.run_file, home.logs, port,
        lambda: (0, 0, Topology(has_proxy=False)), budget, "monolith", notify,
    )  # fmt: skip


def down(
    timeout: float = typer.Option(60.0, help="Seconds to wait for a clean stop before killing."),
) -> None:
    """Stop the system this folder runs (started by `strangler up` in another terminal)."""
    home = Home.here()
    record = read_run(home.run_file)
    is_running = record is not None and (
        supervisor_alive(record)
        or any(is_alive(process.pid, process.started_at) for process in record.processes.values())
    )
    if record is None or not is_running:
        console.print("nothing is running from this folder")
        return
    if supervisor_alive(record):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while supervisor_alive(record) and time.monotonic() < deadline:
            time.sleep(0.1)
    leftovers = stop_leftovers(record, read_run(home.run_file) or record)
    if leftovers:
        console.print(f"stopped what the supervisor left running: {', '.join(leftovers)}")
    console.print(f"stopped the system at {record.public_url}")


def status(
    as_json: bool = typer.Option(False, "--json", help="Print the facts as JSON instead."),
) -> None:
    """One screen: the stage, each route's target and mode, canary percentage, shadow mismatch
    rate, each process's health, and per context who owns the data and how far its feed lags."""
    view = inspect(home := Home.here(), home.workspace.migration())
    if as_json:
        typer.echo(json.dumps(as_document(view), indent=2))
    else:
        console.print(render(view))


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
