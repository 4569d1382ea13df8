"""`strangler init`, `strangler new service` and `strangler check --config`: a project's own
Flask app, described by a workspace file, and services scaffolded for it.

Wiring only: `strangler.scaffold` reads the app and writes the files, `strangler.workspace`
and the data path check them. Errors are one line (or one per problem, each with its line) and
a non-zero exit, never a stack trace.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine, MetaData, create_engine

from strangler.datapath.contexts import check_tables
from strangler.plumbing.database import make_engine
from strangler.runtime.home import Home
from strangler.scaffold import alembic_ini
from strangler.scaffold.discovery import DiscoveryError, discover
from strangler.scaffold.first_workspace import first_workspace
from strangler.scaffold.service import ScaffoldError, new_service
from strangler.workspace import (
    FILENAME,
    Workspace,
    WorkspaceError,
    find_workspace,
    load_workspace,
    validate,
)

console = Console(highlight=False, soft_wrap=True)
new_app = typer.Typer(help="Scaffold something new in this project.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error[/]: {message}")
    return typer.Exit(1)


def init(
    app: str = typer.Option(
        ..., "--app", help="Your Flask app: module:attribute, an app object or a factory."
    ),
    database_url: str | None = typer.Option(
        None, help="Reflect the tables of this database (for an app that declares no models)."
    ),
    database_variable: str | None = typer.Option(
        None,
        help="The variable your app reads its database URL from (default: the one that"
        " holds it now).",
    ),
    force: bool = typer.Option(False, "--force", help="Write over an existing strangler.toml."),
) -> None:
    """Write a first strangler.toml for the Flask app of this folder: its routes (every one in
    mode monolith), one context per blueprint or URL prefix, the tables each one owns, and a
    comment on every guess. Check it with `strangler check --config`."""
    root = Path.cwd()
    target = root / FILENAME
    if target.exists() and not force:
        raise _fail(f"{target} exists already: edit it, or run again with --force to replace it")
    try:
        found = discover(app, root, database_url, database_variable)
    except DiscoveryError as error:
        raise _fail(str(error)) from error
    except Exception as error:  # importing the app runs its code
        raise _fail(f"importing {app} failed: {type(error).__name__}: {error}") from error
    target.write_text(first_workspace(found), encoding="utf-8")
    workspace = load_workspace(target)
    alembic_ini.ensure_sections(workspace)
    console.print(f"wrote [bold]{target.name}[/]: {len(found.routes)} routes, all served by the"
                  " monolith")  # fmt: skip
    for name, spec in workspace.contexts.items():
        tables = ", ".join(table.monolith for table in spec.tables) or "no table"
        claimed = len(workspace.spec.routes_claimed_by(name))
        console.print(f"  context [bold]{name}[/]: {claimed} routes, {tables}")
    console.print(
        "next: read the guesses in strangler.toml, `strangler check --config`, then"
        " `strangler new service CONTEXT`"
    )


def _monolith_schema(workspace: Workspace, home: Home) -> MetaData:
    named = workspace.spec.monolith.database.metadata
    if named is not None:
        found = workspace.resolve(named)
        if not isinstance(found, MetaData):
            raise _fail(f"{named} is not a SQLAlchemy MetaData")
        return found
    engine = make_engine(home.database_url("monolith"))
    try:
        schema = MetaData()
        schema.reflect(engine)
    finally:
        engine.dispose()
    return schema


@new_app.command("service")
def service(
    context: str = typer.Argument(..., help="A context of strangler.toml that has no service."),
    package: str = typer.Option("extracted", help="The package the service goes in."),
    force: bool = typer.Option(False, "--force", help="Write over a folder that exists."),
) -> None:
    """Scaffold CONTEXT's FastAPI service from the template: app factory, settings, models of
    its tables, one handler per route (501 until written), an alembic environment whose first
    revision creates the tables, a parity test; and add it and its stage to strangler.toml."""
    if not (Path.cwd() / FILENAME).exists():
        raise _fail(f"no {FILENAME} here: write one first with `strangler init --app IMPORT`")
    try:
        home = Home.here()
        made = new_service(
            home.workspace, context, _monolith_schema(home.workspace, home), package, force
        )
    except (ScaffoldError, WorkspaceError) as error:
        raise _fail(str(error)) from error
    root = Path.cwd()
    console.print(f"scaffolded the {context} service in [bold]{made.folder.relative_to(root)}[/]:")
    for path in made.files:
        console.print(f"  {path.relative_to(root)}")
    console.print(f"  {made.revision.relative_to(root)} (creates its tables)")
    if made.alembic_sections:
        console.print(f"alembic.ini: sections {', '.join(made.alembic_sections)}")
    console.print(
        escape(f"strangler.toml: [contexts.{context}.service] and a stage that extracts it.")
        + f"\nnext: write the handlers in {(made.folder / 'api.py').relative_to(root)}, then"
        f" `strangler up` and `strangler extract {context}`"
    )


def _engine(url: str) -> Engine:
    """An engine on `url`; a SQLite file that does not exist yet is not created by a check."""
    parsed = urlparse(url)
    if parsed.scheme.startswith("sqlite") and parsed.path and not Path(parsed.path[1:]).exists():
        return create_engine("sqlite://")
    return make_engine(url)


def check_workspace_file() -> None:
    """`strangler check --config`: print every problem of strangler.toml, each with its line."""
    try:
        workspace = find_workspace()
        workspace.migration()
    except WorkspaceError as error:
        for problem in error.problems:
            console.print(f"[red]✗[/] {problem}")
        raise typer.Exit(1) from error
    home = Home.here()
    for name in ("monolith", *workspace.context_names):
        os.environ.setdefault(workspace.url_variable(name), home.database_url(name))
    problems = validate.unresolved(workspace) + validate.references(workspace)
    problems += validate.table_definitions(workspace)
    problems += validate.inventory(workspace)
    engines = {name: _engine(home.database_url(name)) for name in ("monolith",
               *workspace.context_names)}  # fmt: skip
    try:
        problems += check_tables(workspace, engines["monolith"], lambda name: engines[name])
    finally:
        for engine in engines.values():
            engine.dispose()
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    if problems:
        console.print(f"[red]{workspace.file.name}: {len(problems)} problems[/]")
        raise typer.Exit(1)
    spec = workspace.spec
    console.print(
        f"[green]{workspace.file.name} is valid[/]: {len(spec.contexts)} contexts,"
        f" {len(spec.routes)} routes as the app's URL map has them,"
        f" {len(workspace.migration().stages)} stages, every import path and table checked"
    )
