"""`strangler seed`, `strangler db ...` and `strangler routes ...`: the workspace's monolith
data, its databases' schemas, and its routes (the inventory, each stage's table, and exports
for the gateways teams run).

Wiring only: the workspace file says what exists, the data path runs alembic, the gateways
package renders exports. A failure is one line and a non-zero exit. This module must never
hold a schema, a route or an export of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from strangler.cli.run_commands import print_seeded, seed_progress
from strangler.runtime.home import Home

console = Console(highlight=False, soft_wrap=True)
db_app = typer.Typer(help="Schemas: run any database's alembic migrations.", no_args_is_help=True)
routes_app = typer.Typer(
    help="The routes: the inventory, each stage's table, exports.", no_args_is_help=True
)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error[/]: {message}")
    return typer.Exit(1)


def seed_command(
    scale: float = typer.Option(1.0, help="Seed size (the forum: 1.0 = 1,000 users)."),
    seed_value: int = typer.Option(42, "--seed", help="Same seed, same rows."),
) -> None:
    """Migrate the monolith's database and fill it with the workspace's seed data."""
    from strangler.runtime.system import seed_if_empty

    home = Home.here()
    if home.workspace.spec.monolith.seed is None:
        raise _fail(f"{home.workspace.file} names no seed hook ([monolith] seed)")
    if scale <= 0:
        raise _fail(f"--scale {scale} must be positive")
    with seed_progress() as report:
        result = seed_if_empty(home, scale, seed_value, report)
    if result is None:
        console.print("the monolith's database holds data already: nothing seeded")
        return
    print_seeded(result)


@db_app.command("upgrade")
def db_upgrade(name: str = typer.Argument("monolith"), revision: str = "head") -> None:
    """Upgrade database NAME (the monolith's or a context's) to REVISION."""
    _change_schema("upgrade", name, revision)


@db_app.command("downgrade")
def db_downgrade(name: str = typer.Argument("monolith"), revision: str = "base") -> None:
    """Downgrade database NAME to REVISION (base removes every table)."""
    _change_schema("downgrade", name, revision)


def _change_schema(verb: str, name: str, revision: str) -> None:
    from alembic.util.exc import CommandError

    from strangler.datapath import schemas

    home = Home.here()
    change = schemas.upgrade if verb == "upgrade" else schemas.downgrade
    try:
        change(name, home.database_url(name), revision, home.workspace)
    except (ValueError, KeyError, CommandError, schemas.SchemaError) as error:
        raise _fail(str(error).splitlines()[0]) from error
    console.print(f"{name}: {verb}d to {revision}")


@routes_app.command("discover")
def routes_discover(
    output: Path | None = typer.Option(None, help="Write the routes here instead of stdout."),
) -> None:
    """List every endpoint of the monolith's URL map as `[[routes]]` of a workspace file."""
    from strangler.workspace.discover import discover_routes, inventory_text

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


@routes_app.command("show")
def routes_show(
    stage: int | None = typer.Option(None, help="A stage's table (default: the one served)."),
) -> None:
    """Print a route table in the proxy's file format: the one the durable state holds (what
    the proxy serves), or stage N's as the workspace file renders it."""
    from strangler.state import StateFile
    from strangler.workspace.stages import StageError, render_table
    from strangler_proxy.table import TableError, validate_document

    home = Home.here()
    migration = home.workspace.migration()
    try:
        if stage is None:
            recorded = StateFile(home.state_file).read()
            if recorded.routes is None:
                typer.echo(migration.stage(recorded.stage).table_text(), nl=False)
                return
            table = validate_document(recorded.routes, home.workspace.context_names)
            typer.echo(render_table(table), nl=False)
            return
        typer.echo(migration.stage(stage).table_text(), nl=False)
    except (StageError, TableError) as error:
        raise _fail(str(error)) from error


@routes_app.command("export")
def routes_export(
    export_format: str = typer.Option(
        ..., "--format", help="nginx, envoy, gateway-api or aws-http-api"
    ),
    stage: int | None = typer.Option(None, help="Stage N's table (default: the one served)."),
    output: Path = typer.Option(Path("export"), help="The folder to write the files into."),
    upstream: list[str] = typer.Option(
        [], help="NAME=URL where the target reaches an upstream (default: this system's)."
    ),
) -> None:
    """Write what a team deploys for a route table, and LOWERING.md: every feature of the
    table the target cannot express, and what the export does instead."""
    from strangler.gateways.exports import FORMATS, export
    from strangler.state import StateFile
    from strangler.workspace.stages import StageError
    from strangler_proxy.table import validate_document

    if export_format not in FORMATS:
        raise _fail(f"--format {export_format!r} is not one of {', '.join(FORMATS)}")
    home = Home.here()
    migration = home.workspace.migration()
    try:
        recorded = StateFile(home.state_file).read()
        if stage is None and recorded.routes is not None:
            table = validate_document(recorded.routes, home.workspace.context_names)
        else:
            table = migration.stage(recorded.stage if stage is None else stage).table
    except StageError as error:
        raise _fail(str(error)) from error
    upstreams = _upstreams(home, upstream)
    made = export(table, export_format, upstreams)
    written = made.write(output)
    console.print(f"wrote {len(written)} files to {output}; what {export_format} cannot express"
                  f" is in {output / 'LOWERING.md'} ({len(made.lowering)} features)")  # fmt: skip


def _upstreams(home: Home, given: list[str]) -> dict[str, str]:
    from strangler.runtime.run_record import read_run

    found: dict[str, str] = {}
    record = read_run(home.run_file)
    names = ("monolith", *home.workspace.context_names)
    for name in names:
        if record is not None and name in record.ports:
            found[name] = record.url_of(name)
        else:
            found[name] = f"http://{name}.internal:8000"
    for item in given:
        name, separator, url = item.partition("=")
        if not separator or not url.startswith(("http://", "https://")):
            raise _fail(f"--upstream {item!r} is not NAME=http(s)://...")
        found[name] = url
    return found


export_app = typer.Typer(
    help="Deployable exports of a context: `aws` writes a serverless context's SAM template.",
    no_args_is_help=True,
)


@export_app.command("aws")
def export_aws(
    context: str = typer.Option(..., "--context", help="A context declared serverless."),
    output: Path = typer.Option(Path("export"), help="The folder to write the files into."),
) -> None:
    """Write a serverless context's AWS SAM template (functions, HTTP API routes, the table with
    its stream, the bucket, the stream's event source mapping, least-privilege roles) and
    LOWERING.md. Deploy it with `sam build && sam deploy --guided` (docs/serverless.md)."""
    from strangler.gateways.sam_template import NotServerless, export_sam
    from strangler.serverless.emulator import table_definition
    from strangler.workspace import find_workspace

    workspace = find_workspace()
    if context not in workspace.contexts:
        raise _fail(f"no context {context!r}; have {', '.join(workspace.context_names)}")
    try:
        definition = (
            table_definition(workspace, context)
            if workspace.contexts[context].serverless is not None
            else None
        )
        made = export_sam(workspace, context, definition)
    except (NotServerless, ValueError) as error:
        raise _fail(str(error)) from error
    written = made.write(output)
    console.print(f"wrote {len(written)} files to {output}; what the template cannot say as the"
                  f" workspace does is in {output / 'LOWERING.md'}")  # fmt: skip
