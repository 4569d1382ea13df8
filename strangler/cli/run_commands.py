"""`strangler up` and `strangler down`: run a home's system in the foreground, stop it.

`up` is the supervisor: it checks its arguments and its port before it writes anything, seeds
a fresh folder, starts what the migration state needs (adopting the healthy processes a crashed
`up` left running), prints the URL once everything is healthy, then keeps the processes matching
the state that migration commands (in other terminals) change, until Ctrl-C, SIGTERM or
`strangler down`. Either way it stops every process it started. This module must never move
data or change the migration state.
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
from pydantic import ValidationError
from rich.console import Console
from rich.measure import Measurement

from strangler.cli.bars import table_bars
from strangler.cli.interrupts import StopRequested, ignore_signals, stop_on_signals
from strangler.cli.progress import printer
from strangler.cli.status_screen import render
from strangler.conductor.gates import GateFailed
from strangler.conductor.inspection import SystemView, as_document, inspect
from strangler.conductor.prepare import prepare
from strangler.gateways.nginx_plane import NginxNotInstalled, find_nginx
from strangler.gateways.settings import GatewaySettings
from strangler.runtime.discovery import keep_targets, pinned_ports
from strangler.runtime.home import Home
from strangler.runtime.plan import CONSOLE, DATA_PLANES, NGINX, PROXY, Budget, Topology
from strangler.runtime.processes import holder_of
from strangler.runtime.run_record import (
    RunRecord,
    is_alive,
    read_run,
    stop_leftovers,
    supervisor_alive,
)
from strangler.runtime.supervisor import Supervisor, SystemNotReady, unhealthy_report
from strangler.runtime.system import SeedProgress, initialize_state, seed_if_empty, supervise
from strangler.state import StateError, StateFile
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


class Refused(ValueError):
    """`up` cannot start as asked; nothing was written or started."""


def refuse_if_running(home: Home) -> RunRecord | None:
    """Refuse a second supervisor; the record of a dead one, whose processes to adopt."""
    record = read_run(home.run_file)
    if record is not None and supervisor_alive(record):
        raise Refused(
            f"this folder's system is already running at {record.public_url} "
            f"(pid {record.supervisor_pid}); `strangler down` stops it"
        )
    return record


def refuse_taken_port(port: int, left: RunRecord | None, front: str) -> None:
    """Refuse a public port another process holds (unless it is this folder's own front, left
    by a supervisor that died: it is adopted)."""
    if not 0 < port < 65536:
        raise Refused(f"--port {port} is not a TCP port (1 to 65535)")
    holder = holder_of(port)
    if holder is None:
        return
    ours = left is not None and front in left.processes and left.ports.get(front) == port
    if ours and left is not None and is_alive(left.processes[front].pid,
                                              left.processes[front].started_at):  # fmt: skip
        return
    raise Refused(f"port {port} is taken by {holder}; stop it, or choose another with --port")


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
    pin_ports: bool = typer.Option(
        False,
        "--pin-ports",
        help="Every process on a fixed port: the public port + 1, + 2... in a stable order.",
    ),
    prometheus_targets: Path | None = typer.Option(
        None,
        "--prometheus-targets",
        help="Keep a Prometheus file-based discovery file (file_sd_configs) of every process here.",
    ),
    data_plane: str | None = typer.Option(
        None,
        "--data-plane",
        help="Who serves the public port: python (the proxy) or nginx (in front of the proxy);"
        " default: [system] data_plane of strangler.toml, else python.",
    ),
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
        plane = chosen_data_plane(home, data_plane, no_proxy)
        running_stage, left = _ready(home, port, stage, no_proxy, scale, plane)
        supervisor = _supervisor(
            home, port, no_proxy, Budget(workers, service_workers), left, plane
        )
        if pin_ports:
            supervisor.ports.update(pinned_ports(home.workspace, port, supervisor.ports))
        targets = prometheus_targets.resolve() if prometheus_targets else None
        settle_with_progress(supervisor)
        migration = home.workspace.migration()
        front = "monolith alone" if no_proxy else migration.stage(running_stage).label
        if plane == "nginx":
            front += "; nginx in front of the Python proxy"
        console.print(
            f"[green]ready[/] {supervisor.public_url}  ({front}; "
            f"logs in {_relative(home.logs)}; Ctrl-C or `strangler down` stops)"
        )
        if CONSOLE in supervisor.ports:
            console.print(
                f"console  http://127.0.0.1:{supervisor.ports[CONSOLE]}  (sign in with the admin"
                f" token in {_relative(home.root / 'admin-token')} or PROXY_ADMIN_TOKEN)"
            )
        supervisor.run(should_stop=keep_targets(supervisor, targets))
    except StopRequested:
        pass
    except Refused as error:
        console.print(f"[red]error[/]: {error}")
        raise typer.Exit(1) from error
    except (SystemNotReady, StageError, WorkspaceError, StateError, FileNotFoundError,
            ValueError) as error:  # fmt: skip
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


def chosen_data_plane(home: Home, flag: str | None, no_proxy: bool) -> str:
    """The data plane the flag names, else the workspace's; for nginx, the binary must be
    there before anything starts (NginxNotInstalled says how to install it)."""
    plane = flag or home.workspace.spec.system.data_plane
    if plane not in DATA_PLANES:
        raise Refused(f"--data-plane {plane} is not one of {', '.join(DATA_PLANES)}")
    if plane == "nginx":
        if no_proxy:
            raise Refused("--no-proxy serves the monolith alone: it takes no --data-plane nginx")
        try:
            find_nginx()
        except NginxNotInstalled as missing:
            raise Refused(str(missing)) from missing
        try:
            GatewaySettings()  # the plane's processes read them: a bad one stops nothing later
        except ValidationError as error:
            first = error.errors()[0]
            name = "STRANGLER_GATEWAY_" + "_".join(map(str, first["loc"])).upper()
            raise Refused(f"{name}: {first['msg']}") from error
    return plane


def _ready(
    home: Home, port: int, stage: int | None, no_proxy: bool, scale: float, plane: str
) -> tuple[int, RunRecord | None]:
    """Check every argument and the port first; then seed a fresh folder and move its data to
    `stage` if asked. The stage it is at now, and what a dead supervisor left to adopt."""
    migration = home.workspace.migration()  # a broken workspace file stops here, naming its line
    if stage is not None:
        migration.stage(stage)
    if scale <= 0:
        raise Refused(f"--scale {scale} must be positive")
    left = refuse_if_running(home)
    if left is not None and not no_proxy and left.data_plane != plane and left.processes:
        # The processes a dead supervisor left serve the other data plane: start afresh.
        stop_leftovers(left)
        left = None
    refuse_taken_port(port, left, "monolith" if no_proxy else NGINX if plane == "nginx" else PROXY)
    state = StateFile(home.state_file).read()
    if no_proxy and state.stage != 0:
        raise StageError(f"--no-proxy runs stage 0 only; this folder is at stage {state.stage}")
    seed_with_progress(home, scale)
    if stage is not None and (stage != state.stage or state.moving is not None):
        if left is not None:
            stop_leftovers(left)
            left = None
        console.print(f"moving this folder's data to stage {stage} first")
        prepare(home, stage, listen=printer(console))
    if not no_proxy:
        initialize_state(home)
    return StateFile(home.state_file).read().stage, left


def _supervisor(
    home: Home, port: int, no_proxy: bool, budget: Budget, left: RunRecord | None, plane: str
) -> Supervisor:
    def notify(message: str) -> None:
        console.print(f"[yellow]{message}[/]")

    if not no_proxy:
        return supervise(home, port, budget, notify, adopt=left, data_plane=plane)
    return Supervisor(
        home.places(), home.run_file, home.logs, port,
        lambda: (0, 0, Topology(has_proxy=False)), budget, "monolith", notify, adopt=left,
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
        return
    show_status(view, console)


def show_status(view: SystemView, out: Console) -> None:
    """The status screen on `out`, never cut: off a terminal (a pipe, a log) as wide as its
    widest line; in a terminal, cells fold rather than cut."""
    screen = render(view)
    if out.is_terminal:
        out.print(screen)
        return
    measuring = Console(width=1000)
    needed = Measurement.get(measuring, measuring.options, screen).maximum
    Console(highlight=False, width=max(out.width, needed), file=out.file).print(screen)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
