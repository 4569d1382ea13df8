"""The text of the first `strangler.toml` `strangler init` writes, every guess commented.

From what `discovery` found and what `grouping` proposed: the monolith (app, database variable,
alembic folder, models, health path), one `[contexts.*]` per group of routes with its tables
(and what references cross between contexts), the `[check]` reads and `[probes]` hints that
could be guessed, and the route inventory with every route in mode monolith (no stage yet:
`strangler new service` adds each). The text is checked against the workspace model before
anyone writes it. This module must never write a file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from sqlalchemy import MetaData

from strangler.plumbing.toml_document import load_toml
from strangler.scaffold.discovery import FoundApp
from strangler.scaffold.grouping import ContextGuess, assign_tables, group_routes
from strangler.workspace.discover import inventory_text
from strangler.workspace.model import RouteSpec, WorkspaceFile

_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def quote(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def first_workspace(found: FoundApp) -> str:
    """The whole file; raises ValueError if it would not load (a bug of init's)."""
    contexts, unclaimed = group_routes(found.routes)
    unplaced = assign_tables(found.schema.metadata, contexts)
    parts = [
        _header(found),
        _monolith(found),
        *(_context(guess, contexts, found.schema.metadata) for guess in contexts),
        _leftovers(unclaimed, unplaced),
        _check(found.routes),
        _probes(contexts),
        "# The route inventory: every endpoint of the app's URL map (`strangler routes discover`"
        "\n# lists them again), each in mode monolith until a stage extracts its context.\n\n"
        + inventory_text(found.routes),
    ]
    text = "\n".join(part for part in parts if part)
    WorkspaceFile.model_validate(load_toml(text, "strangler.toml"))
    return text


def _header(found: FoundApp) -> str:
    return (
        f"# This project's workspace, written by `strangler init --app {found.import_path}`"
        f" from the\n# app's URL map and {found.schema.source}.\n"
        "# Every `guess:` is one: read it, fix what is wrong, then run"
        " `strangler check --config`.\n"
        "# `strangler new service CONTEXT` scaffolds a context's service and its stage."
        " docs/workspace.md\n# describes every field.\n"
    )


def _monolith(found: FoundApp) -> str:
    database = [f"url_variable = {quote(found.url_variable)}"]
    if found.alembic:
        database.append(f"alembic = {quote(found.alembic)}")
    if found.schema.import_path:
        database.append(f"metadata = {quote(found.schema.import_path)}")
    lines = ["[monolith]", f"app = {quote(found.import_path)}"]
    if found.variable_is_guess:
        lines.append(
            f"# guess: no environment variable holds the app's database URL now; name the one"
            f" your app\n# reads it from ({found.url_variable} is only the usual name)"
        )
    else:
        lines.append(f"# the app's database URL is the value of {found.url_variable} now")
    if found.alembic:
        lines.append(f"# your alembic environment ({found.alembic}/) migrates its schema")
    if not found.schema.import_path:
        lines.append("# no models were found: the data path reflects the tables from the database")
    lines.append(f"database = {{ {', '.join(database)} }}")
    if found.health_path is None:
        lines.append('health_path = ""  # the app answers no health path: its port is checked')
    else:
        lines.append(f"health_path = {quote(found.health_path)}")
    return "\n".join(lines) + "\n"


def _context(guess: ContextGuess, contexts: list[ContextGuess], metadata: MetaData) -> str:
    claims = []
    if guess.blueprints:
        claims.append(f"blueprints = [{', '.join(quote(name) for name in guess.blueprints)}]")
    if guess.endpoints:
        claims.append(f"endpoints = [{', '.join(quote(name) for name in guess.endpoints)}]")
    lines = [
        f"# guess: {guess.reason}; `strangler new service {guess.name}` scaffolds its service",
        f"[contexts.{guess.name}]",
        f"routes = {{ {', '.join(claims)} }}",
    ]
    if guess.tables:
        lines.append("tables = [")
        for table, reason in guess.tables.items():
            lines.append(f"    {{ monolith = {quote(table)} }},  # guess: {reason}")
        lines.append("]")
        lines.extend(_crossing(guess, contexts, metadata))
    else:
        lines.append("# no table is named like its routes: list the tables it owns, if any")
    return "\n".join(lines) + "\n"


def _crossing(guess: ContextGuess, contexts: list[ContextGuess], metadata: MetaData) -> list[str]:
    """Comments on the references between this context's tables and other tables."""
    owner = {table: other.name for other in contexts for table in other.tables}
    notes = []
    for name in guess.tables:
        for key in metadata.tables[name].foreign_keys:
            parent = key.column.table.name
            if owner.get(parent) != guess.name:
                whose = owner.get(parent, "the monolith")
                notes.append(
                    f"# {name}.{key.parent.name} references {parent} ({whose}): the service"
                    " keeps the value, without a foreign key"
                )
    for table in metadata.tables.values():
        if table.name in guess.tables:
            continue
        for key in table.foreign_keys:
            if key.column.table.name in guess.tables:
                whose = owner.get(table.name, "the monolith")
                notes.append(
                    f"# {table.name} ({whose}) references {key.column.table.name}: after"
                    " cutover the reverse feed keeps the monolith's copy, so it still holds"
                )
    return list(dict.fromkeys(notes))


def _leftovers(unclaimed: list[RouteSpec], unplaced: list[str]) -> str:
    lines = []
    if unclaimed:
        names = ", ".join(route.name for route in unclaimed)
        lines.append(f"# These routes stay the monolith's (no blueprint, no path word): {names}")
    if unplaced:
        lines.append(
            f"# These tables stay the monolith's (no context is named like them, nor"
            f" references them): {', '.join(unplaced)}"
        )
    return "\n".join(lines) + "\n" if lines else ""


def _reads(routes: Iterable[RouteSpec]) -> list[RouteSpec]:
    return [route for route in routes if "GET" in route.methods and "{" not in route.path]


def _check(routes: list[RouteSpec]) -> str:
    lines = [
        "# `strangler check`: reads through the public entry, each answered by the side the"
        " stage says.",
        "# guess: every route without parameters that answers GET, and a path no route knows",
        "[check]",
        "reads = [",
    ]
    for route in _reads(routes):
        lines.append(f"    {{ path = {quote(route.path)}, route = {quote(route.name)} }},")
    lines.append('    { path = "/no-such-page", status = 404 },')
    lines.append("]")
    return "\n".join(lines) + "\n"


def _probes(contexts: list[ContextGuess]) -> str:
    """Where the shadow and canary gates find values for each path parameter: the list route
    whose path the parameter's route extends."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for guess in contexts:
        lists = sorted(_reads(guess.routes), key=lambda route: -len(route.path))
        for route in guess.routes:
            if "GET" not in route.methods:
                continue
            for name in _PARAMETER.findall(route.path):
                if name in found:
                    continue
                prefix = route.path.split("{" + name + "}", 1)[0].rstrip("/")
                source = next((r for r in lists if prefix.endswith(r.path)), None)
                if source is None:
                    missing.append(name)
                    continue
                field = "id" if name.endswith("_id") or name == "id" else name
                found[name] = f'{name} = {{ url = {quote(source.path)}, field = "{field}" }}'
    lines = [
        "# Sample reads for the shadow and canary gates on an idle system: where each path",
        "# parameter finds existing values (items of a JSON list, or a top-level array).",
        "[probes.parameters]",
    ]
    lines.extend(f"{entry}  # guess: the list route it extends" for entry in found.values())
    absent = sorted(set(missing) - set(found))
    if absent:
        lines.append(
            f"# no list route found for {', '.join(absent)}: give values, e.g."
            f" `{absent[0]} = {{ values = [...] }}`, or a URL that lists them"
        )
    return "\n".join(lines) + "\n"
