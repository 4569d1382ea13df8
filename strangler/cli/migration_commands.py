"""`strangler extract`, `rollback`, `stage goto|list` and `check`: move a running system.

Each command attaches to the system this folder runs (`strangler up`, in another terminal),
takes the migration's lock, runs its gates and prints one line per gate. A failed gate prints
what failed and what to do, and exits 1; running the same command again resumes after the last
passed gate. This module must never hold a gate's work.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from strangler.cli.progress import printer
from strangler.cli.scaffold_commands import check_workspace_file
from strangler.conductor import moves
from strangler.conductor.check import check
from strangler.conductor.conductor import Conductor
from strangler.conductor.gates import GateFailed
from strangler.conductor.lock import Busy, exclusive
from strangler.runtime.home import Home
from strangler.runtime.supervised import NotRunning
from strangler.state import StateError, StateFile
from strangler.workspace import WorkspaceError
from strangler.workspace.stages import StageError
from strangler_proxy.client import ProxyAdminError

console = Console(highlight=False, soft_wrap=True)
stage_app = typer.Typer(help="The stages of the migration.", no_args_is_help=True)


@contextmanager
def conducting() -> Iterator[Conductor]:
    """The running system under the migration's lock; a known failure is one line and exit 1."""
    home = Home.here()
    try:
        with exclusive(home.lock_file):
            yield Conductor.attach(home, printer(console))
    except GateFailed as failure:
        console.print(f"[red]stopped[/]: {failure.what}")
        console.print(f"[bold]what to do[/]: {failure.todo}")
        raise typer.Exit(1) from failure
    except (
        NotRunning, Busy, moves.Refused, StageError, WorkspaceError, StateError, ProxyAdminError
    ) as error:
        console.print(f"[red]error[/]: {error}")
        raise typer.Exit(1) from error
    except SQLAlchemyError as error:
        console.print(f"[red]error[/]: a database refused: {str(error).splitlines()[0]}")
        raise typer.Exit(1) from error
    except httpx.HTTPError as error:
        console.print(f"[red]error[/]: a process did not answer: {error}")
        raise typer.Exit(1) from error


def extract(
    context: str = typer.Argument(..., help="a context of strangler.toml"),
    target: str | None = typer.Option(
        None,
        "--target",
        help="service or serverless: what CONTEXT runs as once extracted (default: its"
        " stage's `target` in strangler.toml, else a service)",
    ),
) -> None:
    """Extract CONTEXT from the monolith, gate by gate: its database, capture, backfill,
    sync, verify, its service (or its functions and their table), shadow, canary and cutover.
    Run it again to resume."""
    with conducting() as conductor:
        if target is not None:
            moves.choose_target(conductor, context, target)
        moves.extract(conductor, context)


def rollback(context: str = typer.Argument(..., help="the context extracted last")) -> None:
    """Give CONTEXT back to the monolith (every write made on the service side comes back);
    also undoes an extraction that stopped half-way."""
    with conducting() as conductor:
        moves.rollback(conductor, context)


@stage_app.command("goto")
def stage_goto(stage: int = typer.Argument(..., help="the stage to reach")) -> None:
    """Extract or roll back, one stage at a time, until the system is at STAGE."""
    with conducting() as conductor:
        moves.goto(conductor, stage)


@stage_app.command("list")
def stage_list() -> None:
    """Every stage, what it changes, and where this folder's migration stands."""
    migration = Home.here().workspace.migration()
    current = StateFile(Home.here().state_file).read().stage
    table = Table("", "stage", "title", "what changes", "guide")
    for stage in migration.stages:
        table.add_row(
            "▶" if stage.number == current else "",
            str(stage.number),
            stage.title,
            stage.summary,
            f"docs/guide/stage-{stage.number}.md",
        )
    console.print(table)


def check_command(
    config: bool = typer.Option(
        False,
        "--config",
        help="Check strangler.toml alone, running nothing: its lines, its import paths, its"
        " routes against the app's URL map, its tables against both sides' schemas.",
    ),
) -> None:
    """Check that the running system is what its stage says: routes, processes, data owners,
    sync lag, and reads of the contract answered by the right side. Exit 1 if not."""
    if config:
        check_workspace_file()
        return
    with conducting() as conductor:
        findings = check(conductor)
    for finding in findings:
        mark = "[green]✓[/]" if finding.passed else "[red]✗[/]"
        console.print(f"{mark} {finding.check}: {finding.detail}")
    failed = [finding for finding in findings if not finding.passed]
    stage = StateFile(Home.here().state_file).read().stage
    if failed:
        console.print(f"[red]stage {stage} check failed[/]: {len(failed)} of {len(findings)}")
        raise typer.Exit(1)
    console.print(f"[green]stage {stage} checked[/]: {len(findings)} checks passed")
