"""`strangler`: the command line. It parses, prints and calls the toolkit's layers.

It holds no logic of its own: the conductor moves a migration, the runtime runs processes, the
data path moves data, the comparison measures. Everything it acts on is the workspace of the
current folder (its `strangler.toml`, else the bundled forum example). Each command's module
is imported only when that command runs, so `strangler --help` answers at once. This module
must never import a command's module at import time.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
import typer.core

# name -> (where the command is, its one-line help for `strangler --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("strangler.cli.scaffold_commands:init",
             "Write a first strangler.toml from a Flask app's routes and tables."),
    "new": ("strangler.cli.scaffold_commands:new_app",
            "Scaffold a new service for a context, from the tested template."),
    "up": ("strangler.cli.run_commands:up", "Run this folder's system in the foreground."),
    "down": ("strangler.cli.run_commands:down", "Stop the system this folder runs."),
    "status": ("strangler.cli.run_commands:status", "One screen: routes, processes, data."),
    "extract": ("strangler.cli.migration_commands:extract",
                "Extract a context from the monolith, gate by gate."),
    "rollback": ("strangler.cli.migration_commands:rollback",
                 "Give a context back to the monolith, every write included."),
    "stage": ("strangler.cli.migration_commands:stage_app", "The stages: list, goto."),
    "check": ("strangler.cli.migration_commands:check_command",
              "Check the running system is what its stage says."),
    "demo": ("strangler.cli.demo:demo",
             "The whole migration under load, then the short comparison."),
    "compare": ("strangler.cli.compare_commands:compare",
                "The load comparison of every architecture."),
    "report": ("strangler.cli.report_commands:report", "Render a saved comparison again."),
    "diff-reports": ("strangler.cli.report_commands:diff_reports",
                     "Compare two saved comparison reports."),
    "seed": ("strangler.cli.workspace_commands:seed_command",
             "Fill the monolith's database with the workspace's seed data."),
    "db": ("strangler.cli.workspace_commands:db_app", "Schemas: alembic for any database."),
    "routes": ("strangler.cli.workspace_commands:routes_app",
               "Routes: the inventory, each stage's table, exports."),
    "export": ("strangler.cli.workspace_commands:export_app",
               "Exports of a context: `export aws` writes a serverless context's SAM template."),
    "data": ("strangler.cli.data_commands:data_app",
             "The data path by hand: backfill, verify, repair, sync, cutover."),
}  # fmt: skip


class LazyCommands(typer.core.TyperGroup):
    """A click group that imports a command's module only to run (or describe) it."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in COMMANDS:
            return None
        module_name, _, attribute = COMMANDS[name][0].partition(":")
        found: Any = getattr(importlib.import_module(module_name), attribute)
        if isinstance(found, typer.Typer):
            group = typer.main.get_group(found)
            group.name = name
            return group
        single = typer.Typer()
        single.command(name)(found)
        command = typer.main.get_command(single)
        command.name = name
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # typer's rich help would build every command to describe it; the plain one lists
        # the short help above, importing nothing.
        super(typer.core.TyperGroup, self).format_help(ctx, formatter)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, short) for name, (_, short) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = LazyCommands(
    name="strangler",
    help="Migrate a Flask monolith to services, step by step, and measure what it changes.",
    no_args_is_help=True,
)


def main() -> None:
    """The `strangler` script."""
    app()
