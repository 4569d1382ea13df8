"""`strangler status` as one screen: the stage, the routes, the processes, the data.

Renders a `SystemView` with rich: which stage and what is under way; per route its target,
mode, canary percentage, shadow comparisons and data owner; per process its health, pid, port
and lag; per context who serves it, who owns its data, and how far its feed lags. This module
must never gather facts itself (that is `inspection`).
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from strangler.conductor.inspection import ProcessView, RouteView, SystemView
from strangler.serverless.emulator import EMULATOR, EMULATOR_NOTE

MODE_STYLES = {"monolith": "blue", "shadow": "magenta", "canary": "yellow", "service": "green"}


def render(view: SystemView) -> RenderableType:
    parts: list[RenderableType] = [_headline(view)]
    if view.routes:
        parts.append(_routes(view))
    if view.processes:
        parts.append(_processes(view.processes))
    parts.append(_contexts(view))
    for problem in view.problems:
        parts.append(Text(f"! {problem}", style="red"))
    return Group(*parts)


def _headline(view: SystemView) -> RenderableType:
    lines = [f"[bold]stage {view.stage}[/]: {view.title}"]
    if view.is_running:
        front = "nginx in front of the Python proxy; " if view.data_plane == "nginx" else ""
        lines.append(
            f"serving at [bold]{view.url}[/] ({front}route table version {view.table_version})"
        )
    moving = view.state.moving
    if moving is not None:
        passed = ", ".join(moving.passed) or "nothing yet"
        lines.append(
            f"[yellow]under way[/]: stage {moving.from_stage} -> {moving.to_stage}; "
            f"gates passed: {passed} (run the same command again to resume)"
        )
    return Panel("\n".join(lines), title="strangler status", expand=False)


def _routes(view: SystemView) -> Table:
    table = Table(title="routes (the table in force)", title_justify="left")
    for column in ("route", "methods", "path", "target", "mode", "shadow", "data owner"):
        table.add_column(column, overflow="fold")
    shown = [route for route in view.routes if route.methods != ["*"]]
    for route in shown:
        table.add_row(
            route.name,
            ",".join(route.methods),
            route.path,
            route.context if route.mode != "monolith" else "monolith",
            _mode(route),
            _shadow(route),
            route.data_owner,
        )
    hidden = len(view.routes) - len(shown)
    if hidden:
        table.caption = f"+ {hidden} any-method routes to the same services"
    if view.unmatched and view.unmatched != "monolith":
        table.caption = (table.caption or "") + f"; unmatched paths go to {view.unmatched}"
    return table


def _mode(route: RouteView) -> Text:
    label = f"canary {route.canary_percent:g}%" if route.mode == "canary" else route.mode
    return Text(label, style=MODE_STYLES.get(route.mode, ""))


def _shadow(route: RouteView) -> str:
    if route.mismatch_rate is None:
        return "-"
    return f"{route.compared} compared, {route.mismatch_rate:.1%} differ"


def _processes(processes: list[ProcessView]) -> Table:
    table = Table(title="processes", title_justify="left")
    for column in ("process", "health", "pid", "port", "lag", "restarts"):
        table.add_column(column, overflow="fold")
    for process in processes:
        health = (
            Text("healthy", style="green")
            if process.is_healthy
            else Text("running, not healthy" if process.is_running else "not running", style="red")
        )
        lags = ", ".join(f"{name} {value:g}" for name, value in process.lags.items()) or "-"
        name = f"{process.name} ({EMULATOR_NOTE})" if process.name == EMULATOR else process.name
        table.add_row(
            name, health, str(process.pid), str(process.port), lags, str(process.restarts)
        )
    return table


def _contexts(view: SystemView) -> Table:
    table = Table(title="data", title_justify="left")
    for column in ("context", "served by", "data owner", "sync", "lag", "last write freeze"):
        table.add_column(column, overflow="fold")
    for context in view.contexts:
        lag = (
            "-"
            if context.lag_entries is None
            else f"{context.lag_entries} changes, {context.lag_seconds or 0:.2f}s"
        )
        freeze = context.last_freeze_seconds
        frozen = "-" if freeze is None else f"{freeze * 1000:.0f} ms"
        table.add_row(
            context.context, context.served_by, context.data_owner, context.sync, lag, frozen
        )
    return table
