"""`strangler`: the command line. It parses, prints and calls the toolkit's layers.

It holds no logic of its own: the conductor moves a migration, the runtime runs processes, the
data path moves data, the comparison measures. Everything it acts on is the workspace of the
current folder (its `strangler.toml`, else the bundled forum example).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from strangler.cli import (
    compare_commands,
    demo,
    migration_commands,
    report_commands,
    run_commands,
    scaffold_commands,
)
from strangler.cli.data_commands import data_app
from strangler.cli.run_commands import print_seeded, seed_progress
from strangler.datapath import schemas
from strangler.runtime.home import Home
from strangler.runtime.system import seed_if_empty
from strangler.workspace.discover import discover_routes, inventory_text

app = typer.Typer(
    help="Migrate a Flask monolith to services, step by step.", no_args_is_help=True
)
db_app = typer.Typer(help="Schemas: run any database's alembic migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
routes_app = typer.Typer(
    help="The routes: the inventory and each stage's table.", no_args_is_help=True
)
app.add_typer(routes_app, name="routes")
app.add_typer(data_app, name="data")
console = Console()

app.command()(scaffold_commands.init)
app.add_typer(scaffold_commands.new_app, name="new")
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
    scale: float = typer.Option(1.0, help="Seed size (the forum: 1.0 = 1,000 users)."),
    seed_value: int = typer.Option(42, "--seed", help="Same seed, same rows."),
) -> None:
    """Migrate the monolith's database and fill it with the workspace's seed data."""
    home = Home.here()
    if home.workspace.spec.monolith.seed is None:
        console.print(f"[red]error[/]: {home.workspace.file} names no seed hook ([monolith] seed)")
        raise typer.Exit(1)
    with seed_progress() as report:
        result = seed_if_empty(home, scale, seed_value, report)
    if result is None:
        console.print("the monolith's database holds data already: nothing seeded")
        return
    print_seeded(result)


@db_app.command("upgrade")
def db_upgrade(name: str = typer.Argument("monolith"), revision: str = "head") -> None:
    """Upgrade database NAME (the monolith's or a context's) to REVISION."""
    home = Home.here()
    schemas.upgrade(name, home.database_url(name), revision, home.workspace)
    console.print(f"{name}: upgraded to {revision}")


@db_app.command("downgrade")
def db_downgrade(name: str = typer.Argument("monolith"), revision: str = "base") -> None:
    """Downgrade database NAME to REVISION (base removes every table)."""
    home = Home.here()
    schemas.downgrade(name, home.database_url(name), revision, home.workspace)
    console.print(f"{name}: downgraded to {revision}")


@routes_app.command("discover")
def routes_discover(
    output: Path | None = typer.Option(None, help="Write the routes here instead of stdout."),
) -> None:
    """List every endpoint of the monolith's URL map as `[[routes]]` of a workspace file."""
    home = Home.here()
    workspace = home.workspace
    for name, value in {
        workspace.url_variable("monolith"): home.database_url("monolith"),
        "STRANGLER_TOKEN_SECRET": home.token_secret(),
    }.items():
        os.environ.setdefault(name, value)
    health = workspace.spec.monolith.health_path  # the system's own, not a route to move
    routes = discover_routes(workspace.resolve(workspace.spec.monolith.app))
    text = inventory_text(route for route in routes if route.path != health)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        console.print(f"wrote {output}")
