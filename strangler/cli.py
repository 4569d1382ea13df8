"""`strangler`: the command line that wires the parts together and supervises processes.

It holds no domain logic: every command calls into monolith/, migrations/, strangler_proxy/
or loadtests/ and only decides what runs where.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from migrations import runner
from monolith.seed import SEED_PASSWORD, has_users, seed
from plumbing.database import make_engine
from strangler.data_commands import data_app
from strangler.launch import (
    monolith_command,
    monolith_environment,
    proxy_command,
    proxy_environment,
)
from strangler.processes import ManagedProcess, ProcessFailed, free_port, start
from strangler.workspace import Workspace, stage_table

app = typer.Typer(
    help="Migrate the forum monolith to services, step by step.", no_args_is_help=True
)
db_app = typer.Typer(help="Schemas: run any database's alembic migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
routes_app = typer.Typer(help="The proxy's route table.", no_args_is_help=True)
app.add_typer(routes_app, name="routes")
app.add_typer(data_app, name="data")
console = Console()


def _seed_with_progress(database_url: str, scale: float, seed_value: int) -> None:
    with Progress(
        TextColumn("[bold]seeding[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = progress.add_task(table, total=total)
            progress.update(tasks[table], completed=done, total=max(total, done))

        result = seed(make_engine(database_url), scale, seed_value, progress=report)
    console.print(
        f"seeded {result.total_rows:,} rows in {result.seconds:.2f}s "
        f"([bold]{result.rows_per_second:,.0f} rows/s[/]); every seeded user's password is "
        f"[bold]{SEED_PASSWORD}[/]"
    )


@app.command("seed")
def seed_command(
    scale: float = typer.Option(1.0, help="1.0 = 1,000 users, 2,000 threads, 16,000 posts."),
    seed_value: int = typer.Option(42, "--seed", help="Same seed, same rows."),
) -> None:
    """Migrate the monolith's database and fill it with deterministic seed data."""
    database_url = Workspace.here().database_url("monolith")
    runner.upgrade("monolith", database_url)
    _seed_with_progress(database_url, scale, seed_value)


@db_app.command("upgrade")
def db_upgrade(name: str = typer.Argument("monolith"), revision: str = "head") -> None:
    """Upgrade database NAME (monolith, users, forum, polls, search) to REVISION."""
    runner.upgrade(name, Workspace.here().database_url(name), revision)
    console.print(f"{name}: upgraded to {revision}")


@db_app.command("downgrade")
def db_downgrade(name: str = typer.Argument("monolith"), revision: str = "base") -> None:
    """Downgrade database NAME to REVISION (base removes every table)."""
    runner.downgrade(name, Workspace.here().database_url(name), revision)
    console.print(f"{name}: downgraded to {revision}")


class StopRequested(Exception):
    """Ctrl-C or SIGTERM arrived: stop what was started, then exit cleanly."""


def _stop_on_signals() -> None:
    """From now on SIGTERM and SIGINT raise StopRequested, wherever the command is."""

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        raise StopRequested

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def _start_monolith(workspace: Workspace, port: int, workers: int) -> ManagedProcess:
    database_url = workspace.database_url("monolith")
    return start(
        "monolith",
        monolith_command(port, workers),
        monolith_environment(database_url, workspace.token_secret(), workspace.root),
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=workspace.logs / "monolith.log",
    )


def _start_proxy(workspace: Workspace, port: int, monolith_url: str, stage: int) -> ManagedProcess:
    env = proxy_environment(
        monolith_url,
        stage_table(stage),
        workspace.admin_token(),
        workspace.token_secret(),
        workspace.root,
    )
    return start(
        "proxy",
        proxy_command(port),
        env,
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=workspace.logs / "proxy.log",
    )


@app.command()
def up(
    port: int = typer.Option(8000, help="The public port."),
    stage: int = typer.Option(0, help="Migration stage: its route table is stages/stage<N>.toml."),
    no_proxy: bool = typer.Option(False, "--no-proxy", help="Serve the monolith alone."),
    workers: int = typer.Option(2, help="gunicorn workers for the monolith."),
    scale: float = typer.Option(1.0, help="Seed size on the first run."),
) -> None:
    """Run the system in the foreground from this folder until Ctrl-C or SIGTERM.

    The first run migrates and seeds the monolith's database (under ./.strangler/). At stage 0 the
    proxy serves the public port in front of the monolith; with --no-proxy the monolith does.
    """
    _stop_on_signals()
    workspace = Workspace.here()
    started: list[ManagedProcess] = []
    try:
        table = None if no_proxy else stage_table(stage)
        database_url = workspace.database_url("monolith")
        runner.upgrade("monolith", database_url)
        if not has_users(make_engine(database_url)):
            _seed_with_progress(database_url, scale, 42)
        monolith_port = port if table is None else free_port()
        started.append(_start_monolith(workspace, monolith_port, workers))
        started[-1].wait_healthy()
        if table is not None:
            started.append(
                _start_proxy(workspace, port, f"http://127.0.0.1:{monolith_port}", stage)
            )
            started[-1].wait_healthy()
        front = "monolith alone" if table is None else f"stage {stage}, proxy in front"
        console.print(
            f"[green]ready[/] http://127.0.0.1:{port}  ({front}; "
            f"logs in {_relative(workspace.logs)}; Ctrl-C stops)"
        )
        threading.Event().wait()
    except StopRequested:
        pass
    except (ProcessFailed, FileNotFoundError) as error:
        console.print(f"[red]the system did not start[/]: {error}")
        raise typer.Exit(1) from error
    finally:
        for process in reversed(started):
            process.stop()
        console.print("stopped")


@routes_app.command("discover")
def routes_discover(
    output: Path | None = typer.Option(None, help="Write the table here instead of stdout."),
) -> None:
    """Build a route table from the monolith's own URL map: every endpoint, mode monolith."""
    from monolith import create_app
    from monolith.settings import MonolithSettings
    from strangler_proxy.discover import discover_routes

    workspace = Workspace.here()
    settings = MonolithSettings(
        database_url=workspace.database_url("monolith"),
        token_secret=SecretStr(workspace.token_secret()),
    )
    table = discover_routes(create_app(settings))
    if output is None:
        typer.echo(table, nl=False)
    else:
        output.write_text(table)
        console.print(f"wrote {output}")


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
