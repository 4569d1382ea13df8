"""`strangler demo`: the whole migration and a short load comparison, unattended.

In a folder of its own (SQLite, nothing to install, nothing configured elsewhere touched) it
seeds the monolith, starts stage 0, puts a light steady load on it, walks every stage with the
same gates as `strangler stage goto` and checks each one as `strangler check` does, then reads
back every write the load made, stops everything and runs the short comparison. It ends with
where the report is and one screen of figures, and leaves no process behind. This module must
never hold a gate's work or a measurement's: it strings the parts together and shows them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from strangler.cli.demo_summary import show_summary
from strangler.cli.interrupts import StopRequested, stop_on_signals
from strangler.cli.progress import printer
from strangler.cli.run_commands import Refused, chosen_data_plane
from strangler.conductor.check import check
from strangler.conductor.conductor import Conductor
from strangler.conductor.gates import GateFailed
from strangler.conductor.lock import exclusive
from strangler.conductor.moves import goto
from strangler.conductor.settings import LOOSE_P95_RATIO, GateSettings
from strangler.runtime.home import Home
from strangler.runtime.processes import free_port
from strangler.runtime.run_record import read_run, supervisor_alive
from strangler.runtime.system import in_background, seed_if_empty
from strangler.state import MigrationState
from strangler.workspace.hooks import BackgroundLoad, FreezeWindow, LoadReport


@dataclass
class StageFigures:
    stage: int
    title: str
    seconds: float
    checks_passed: int
    checks: int


@dataclass
class DemoResult:
    folder: Path
    stages: list[StageFigures] = field(default_factory=list)
    load: LoadReport | None = None
    freezes: list[FreezeWindow] = field(default_factory=list)
    state: MigrationState = field(default_factory=MigrationState)
    report: Path | None = None
    comparison_note: str = ""
    seconds: float = 0.0


def demo_home(folder: Path) -> Home:
    return Home(folder / ".strangler", reads_environment=False)


def run_demo(
    folder: Path,
    scale: float,
    rate: float,
    port: int | None,
    console: Console,
    data_plane: str = "python",
) -> DemoResult:
    """The whole demo; raises on the first failed gate (everything is stopped by then)."""
    started = time.monotonic()
    result = DemoResult(folder)
    home = _fresh(folder)
    with console.status("seeding the monolith"):
        seeded = seed_if_empty(home, scale)
    if seeded is not None:
        console.print(f"seeded {seeded.total_rows:,} rows in {seeded.seconds:.1f}s")
    migration = home.workspace.migration()
    public_port = port or _preferred_port()
    with (
        exclusive(home.lock_file),
        in_background(home, port=public_port, data_plane=data_plane) as system,
    ):
        console.print(
            f"stage 0 runs at [bold]{system.public_url}[/]; follow it from another terminal"
            f" with `cd {folder} && {_strangler_command()} status`"
        )
        load = _background_load(home, system.public_url, rate)
        if load is not None:
            load.start()
        try:
            gates = GateSettings(max_p95_ratio=LOOSE_P95_RATIO)
            conductor = Conductor.attach(home, settings=gates)
            _walk(conductor, migration.last, result, console)
        finally:
            if load is not None:
                load.stop()
        result.state = conductor.state
        result.freezes = freeze_windows(conductor.state)
        if load is not None:
            with console.status("reading back every write the load made"):
                result.load = load.report(result.freezes)
    result.report, result.comparison_note = run_short_comparison(folder / "report", console)
    result.seconds = time.monotonic() - started
    return result


def _fresh(folder: Path) -> Home:
    """The demo's own home, emptied (refused while a demo runs from it)."""
    home = demo_home(folder)
    record = read_run(home.run_file)
    if record is not None and supervisor_alive(record):
        raise RuntimeError(f"a demo is already running from {folder} ({record.public_url})")
    shutil.rmtree(home.root, ignore_errors=True)
    shutil.rmtree(folder / "report", ignore_errors=True)
    return home


def _strangler_command() -> str:
    """How another terminal runs this very `strangler`: by its full path when it is not on
    that terminal's PATH (a virtualenv that was never activated)."""
    here = Path(sys.executable).parent / "strangler"
    found = shutil.which("strangler")
    if found and Path(found).resolve() == here.resolve():
        return "strangler"
    return str(here) if here.exists() else "strangler"


def _preferred_port() -> int:
    """8000 when it is free (the README's URLs then work), else any free port."""
    with socket.socket() as probe:
        is_taken = probe.connect_ex(("127.0.0.1", 8000)) == 0
    return free_port() if is_taken else 8000


def _walk(conductor: Conductor, last: int, result: DemoResult, console: Console) -> None:
    """Every stage in turn, each checked; a bar shows how far the migration is."""
    columns = (
        TextColumn("[bold]migration[/]"),
        BarColumn(),
        TextColumn("stage {task.completed}/{task.total}"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        bar = progress.add_task("migration", total=last)
        for stage in range(1, last + 1):
            began = time.monotonic()
            conductor.listen = printer(progress.console)
            goto(conductor, stage)
            findings = check(conductor)
            failed = [finding for finding in findings if not finding.passed]
            for finding in failed:
                progress.console.print(f"  [red]✗ {finding.check}[/]: {finding.detail}")
            result.stages.append(
                StageFigures(stage, conductor.migration.stage(stage).title,
                             time.monotonic() - began, len(findings) - len(failed), len(findings))
            )  # fmt: skip
            progress.console.print(
                f"  [green]✓[/] strangler check: {len(findings) - len(failed)}/{len(findings)}"
            )
            progress.advance(bar)


def freeze_windows(state: MigrationState) -> list[FreezeWindow]:
    """The state's write-freeze windows as the steady load's ledger wants them (epoch seconds)."""
    found = []
    for window in state.freezes:
        ended = window.ended_at or window.started_at
        found.append(FreezeWindow(window.context, _epoch(window.started_at), _epoch(ended)))
    return found


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _background_load(home: Home, url: str, rate: float) -> BackgroundLoad | None:
    """The workspace's steady load (`load.steady` of its strangler.toml), if it names one."""
    hook = home.workspace.spec.load.steady
    if hook is None:
        return None
    load: BackgroundLoad = home.workspace.resolve(hook)(url, rate=rate)
    return load


def run_short_comparison(report: Path, console: Console) -> tuple[Path | None, str]:
    """`strangler compare --profile short`: every architecture under the same short load, on
    databases of its own (never the environment's)."""
    console.print("[bold]the short load comparison[/] (every architecture, the same load)")
    command = [
        sys.executable,
        "-m",
        "strangler",
        "compare",
        "--profile",
        "short",
        "--output",
        str(report),
    ]
    finished = subprocess.run(command, check=False)
    if finished.returncode != 0:
        return None, f"the comparison failed (exit {finished.returncode}); see its output above"
    return report, "report.html, summary.md and report.json"


def demo(
    folder: Path = typer.Option(Path("strangler-demo"), help="The demo's own folder (emptied)."),
    scale: float = typer.Option(0.1, help="Seed size (1.0 = 1,000 users, 16,000 posts)."),
    rate: float = typer.Option(12.0, help="Requests per second of the steady background load."),
    port: int | None = typer.Option(None, help="Public port (default 8000 if free)."),
    data_plane: str | None = typer.Option(
        None,
        "--data-plane",
        help="Who serves the public port: python (the proxy) or nginx (in front of the proxy);"
        " default: [system] data_plane of strangler.toml, else python.",
    ),
) -> None:
    """The main job: seed, migrate stage by stage under a steady load, check every stage,
    read back every write, run the short load comparison, and show the figures."""
    stop_on_signals()
    console = Console(highlight=False, soft_wrap=True)
    try:
        plane = chosen_data_plane(demo_home(folder.resolve()), data_plane, no_proxy=False)
    except Refused as error:
        console.print(f"[red]error[/]: {error}")
        raise typer.Exit(1) from error
    try:
        result = run_demo(folder.resolve(), scale, rate, port, console, plane)
    except StopRequested:
        console.print("stopped; nothing is left running")
        raise typer.Exit(130) from None
    except GateFailed as failure:
        console.print(f"[red]the demo stopped[/]: {failure.what}")
        console.print(f"what to do: {failure.todo}; the logs are in {folder / '.strangler/logs'}")
        raise typer.Exit(1) from failure
    except (RuntimeError, OSError, httpx.HTTPError) as error:
        console.print(f"[red]the demo did not finish[/]: {type(error).__name__}: {error}")
        raise typer.Exit(1) from error
    show_summary(result, console)
    lost = result.load is not None and not result.load.is_complete
    failed = result.load is not None and result.load.unexplained_failures > 0
    if lost or failed or result.report is None:
        raise typer.Exit(1)
