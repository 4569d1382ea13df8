"""`strangler`: the command line that wires the parts together and supervises processes.

It holds no domain logic: every command calls into monolith/, migrations/, strangler_proxy/
or loadtests/ and only decides what runs where.
"""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import SecretStr
from rich.console import Console

from monolith.seed import seed
from strangler.cli import compare_commands, demo, migration_commands, report_commands, run_commands
from strangler.cli.data_commands import data_app
from strangler.cli.run_commands import print_seeded, seed_progress
from strangler.datapath import schemas
from strangler.plumbing.database import make_engine
from strangler.runtime.workspace import Workspace

app = typer.Typer(
    help="Migrate the forum monolith to services, step by step.", no_args_is_help=True
)
db_app = typer.Typer(help="Schemas: run any database's alembic migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
routes_app = typer.Typer(help="The proxy's route table.", no_args_is_help=True)
app.add_typer(routes_app, name="routes")
app.add_typer(data_app, name="data")
console = Console()

app.command()(run_commands.up)
app.command()(run_commands.down)
app.command()(run_commands.status)
migration_commands.register(app)
app.command()(demo.demo)
app.command()(compare_commands.compare)
app.command()(report_commands.report)
app.command("diff-reports")(report_commands.diff_reports)


@app.command("seed")
def seed_command(
    scale: float = typer.Option(1.0, help="1.0 = 1,000 users, 2,000 threads, 16,000 posts."),
    seed_value: int = typer.Option(42, "--seed", help="Same seed, same rows."),
) -> None:
    """Migrate the monolith's database and fill it with deterministic seed data."""
    database_url = Workspace.here().database_url("monolith")
    schemas.upgrade("monolith", database_url)
    with seed_progress() as report:
        result = seed(make_engine(database_url), scale, seed_value, progress=report)
    print_seeded(result)


@db_app.command("upgrade")
def db_upgrade(name: str = typer.Argument("monolith"), revision: str = "head") -> None:
    """Upgrade database NAME (monolith, users, forum, polls, search) to REVISION."""
    schemas.upgrade(name, Workspace.here().database_url(name), revision)
    console.print(f"{name}: upgraded to {revision}")


@db_app.command("downgrade")
def db_downgrade(name: str = typer.Argument("monolith"), revision: str = "base") -> None:
    """Downgrade database NAME to REVISION (base removes every table)."""
    schemas.downgrade(name, Workspace.here().database_url(name), revision)
    console.print(f"{name}: downgraded to {revision}")


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
