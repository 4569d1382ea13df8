"""`strangler check --config`: what a workspace file says, checked against the code it names.

Beyond the file's own rules (checked on load, each problem with its line), every import path
must name something importable (apps, models, hooks, consumers, functions, load hooks:
imported, never called; a serverless context's table definition is read and checked), the
route inventory must be the monolith's URL map (every endpoint listed, with its methods and
path; none that the app lacks), and the routes `[check]` and `[probes]` name must be in the
inventory. Each problem is `file:line: where: message`. The tables against both
sides' schemas are the data path's to check (`strangler.datapath.contexts.check_tables`).
This module must never start a process or open a database (building the monolith's app to
read its URL map is the app's own business).
"""

from __future__ import annotations

from collections.abc import Iterator

from strangler.workspace import Workspace
from strangler.workspace.discover import discover_routes, load_app

Where = tuple[str | int, ...]


def _problem(workspace: Workspace, where: Where, message: str) -> str:
    return workspace.problem(where, message).problems[0]


def import_paths(workspace: Workspace) -> Iterator[tuple[Where, str]]:
    """Every import path of the file, with where it is."""
    spec = workspace.spec
    monolith = spec.monolith
    yield ("monolith", "app"), monolith.app
    for field in ("seed",):
        if value := getattr(monolith, field):
            yield ("monolith", field), value
    if monolith.database.metadata:
        yield ("monolith", "database", "metadata"), monolith.database.metadata
    for name, context in spec.contexts.items():
        service = context.service
        if service is not None:
            for field in ("app", "consumer"):
                if value := getattr(service, field):
                    yield ("contexts", name, "service", field), value
            if service.database.metadata:
                yield (
                    ("contexts", name, "service", "database", "metadata"),
                    (service.database.metadata),
                )
        for field in ("on_service_rows", "before_flip", "build"):
            if value := getattr(context.hooks, field):
                yield ("contexts", name, "hooks", field), value
        if context.serverless is not None:
            for field in ("handler", "stream_handler", "table", "items"):
                if value := getattr(context.serverless, field):
                    yield ("contexts", name, "serverless", field), value
    for field in ("plan_data", "steady"):
        if value := getattr(spec.load, field):
            yield ("load", field), value


def unresolved(workspace: Workspace) -> list[str]:
    """Import paths that name nothing importable."""
    problems = []
    for where, path in import_paths(workspace):
        try:
            workspace.resolve(path)
        except Exception as error:  # an import runs the user's code: anything may go wrong
            problems.append(
                _problem(
                    workspace,
                    where,
                    f"{path} cannot be imported: {type(error).__name__}:"
                    f" {str(error).splitlines()[0] if str(error) else ''}",
                )
            )
    return problems


def inventory(workspace: Workspace) -> list[str]:
    """The `[[routes]]` against the monolith's own URL map."""
    try:
        found = discover_routes(load_app(workspace.resolve(workspace.spec.monolith.app)))
    except Exception as error:  # building the app runs the user's code
        return [
            _problem(
                workspace,
                ("monolith", "app"),
                f"the app could not be built to read its URL map: {type(error).__name__}: {error}",
            )
        ]
    listed = {route.name: (index, route) for index, route in enumerate(workspace.spec.routes)}
    health = workspace.spec.monolith.health_path
    actual = {route.name: route for route in found if route.path != health}
    problems = []
    for name, route in actual.items():
        if name not in listed:
            problems.append(
                _problem(
                    workspace,
                    ("routes",),
                    f"the app's endpoint {name} ({'/'.join(route.methods)}"
                    f" {route.path}) is missing from the inventory (`strangler routes"
                    " discover` lists every one)",
                )
            )
            continue
        index, written = listed[name]
        if set(written.methods) != set(route.methods) or written.path != route.path:
            problems.append(
                _problem(
                    workspace,
                    ("routes", index),
                    f"{name} is {'/'.join(route.methods)}"
                    f" {route.path} in the app, not {'/'.join(written.methods)}"
                    f" {written.path}",
                )
            )
    for name, (index, _) in listed.items():
        if name not in actual:
            problems.append(
                _problem(workspace, ("routes", index), f"the app has no endpoint {name}")
            )
    return problems


TABLE_KEYS = ("TableName", "KeySchema", "AttributeDefinitions")


def table_definitions(workspace: Workspace) -> list[str]:
    """A serverless context's `table` names DynamoDB `create_table` arguments; with a stream
    handler, they enable the table's stream."""
    problems = []
    for name, context in workspace.spec.contexts.items():
        serverless = context.serverless
        if serverless is None or serverless.table is None:
            continue
        where = ("contexts", name, "serverless", "table")
        try:
            definition = workspace.resolve(serverless.table)
        except Exception:  # an import runs the user's code; `unresolved` names the error
            continue
        message = table_problem(definition, serverless.stream_handler is not None)
        if message is not None:
            problems.append(_problem(workspace, where, message))
    return problems


def table_problem(definition: object, needs_stream: bool) -> str | None:
    """What is wrong with a table definition, or None."""
    if not isinstance(definition, dict):
        return f"the table definition is a {type(definition).__name__}, not a dict"
    missing = [key for key in TABLE_KEYS if key not in definition]
    if missing:
        return f"the table definition lacks {missing} (boto3 create_table arguments)"
    stream = definition.get("StreamSpecification") or {}
    if needs_stream and not stream.get("StreamEnabled"):
        return "a stream handler needs StreamSpecification = {StreamEnabled: True, ...}"
    return None


def references(workspace: Workspace) -> list[str]:
    """Routes that `[check]` and `[probes]` name must be in the inventory."""
    names = {route.name for route in workspace.spec.routes}
    problems = []
    for index, read in enumerate(workspace.spec.check.get("reads", [])):
        if read.route is not None and read.route not in names:
            problems.append(
                _problem(workspace, ("check", "reads", index), f"no route named {read.route!r}")
            )
    sign_in = workspace.spec.probes.sign_in
    for route in sign_in.routes if sign_in else []:
        if route not in names:
            problems.append(
                _problem(workspace, ("probes", "sign_in", "routes"), f"no route named {route!r}")
            )
    return problems
