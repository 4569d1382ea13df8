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
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from migrations import runner
from monolith.seed import SEED_PASSWORD, seed
from plumbing.database import make_engine
from strangler.launch import monolith_command, monolith_environment
from strangler.processes import ProcessFailed, start
from strangler.workspace import Workspace

app = typer.Typer(
    help="Migrate the forum monolith to services, step by step.", no_args_is_help=True
)
db_app = typer.Typer(help="Schemas: run any database's alembic migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
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


def _database_is_empty(database_url: str) -> bool:
    from sqlalchemy import func, select

    from monolith.models import User

    with make_engine(database_url).connect() as connection:
        return not connection.scalar(select(func.count()).select_from(User))


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


@app.command()
def up(
    port: int = typer.Option(8000, help="The public port."),
    workers: int = typer.Option(2, help="gunicorn workers for the monolith."),
    scale: float = typer.Option(1.0, help="Seed size on the first run."),
) -> None:
    """Run the system in the foreground from this folder until Ctrl-C.

    The first run migrates and seeds the monolith's database (under ./.strangler/).
    """
    _stop_on_signals()
    workspace = Workspace.here()
    database_url = workspace.database_url("monolith")
    started = []
    try:
        runner.upgrade("monolith", database_url)
        if _database_is_empty(database_url):
            _seed_with_progress(database_url, scale, 42)
        env = monolith_environment(database_url, workspace.token_secret(), workspace.root)
        monolith = start(
            "monolith",
            monolith_command(port, workers),
            env,
            health_url=f"http://127.0.0.1:{port}/healthz",
            log_path=workspace.logs / "monolith.log",
        )
        started.append(monolith)
        monolith.wait_healthy()
        console.print(
            f"[green]ready[/] http://127.0.0.1:{port}  "
            f"(logs in {_relative(workspace.logs)}; Ctrl-C stops)"
        )
        threading.Event().wait()
    except StopRequested:
        pass
    except ProcessFailed as error:
        console.print(f"[red]the system did not start[/]: {error}")
        raise typer.Exit(1) from error
    finally:
        for process in reversed(started):
            process.stop()
        console.print("stopped")


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
