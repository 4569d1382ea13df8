"""The stages of a workspace's migration, each with the route table it serves.

Stage 0 serves everything from the monolith; each later stage extracts one context (its routes
move to its service, which owns its data once its tables moved) or retires the monolith (then
every path, even one no route knows, is answered by a service, and a wrong method on a known
path by the service that knows the path). A stage's table is rendered from the workspace's
route inventory, so it can never disagree with the registry. This module must never start a
process or touch a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import tomli_w

from strangler_proxy.table import MONOLITH, RouteTable, table_document, validate_document

if TYPE_CHECKING:
    from strangler.workspace import Workspace
    from strangler.workspace.model import ContextSpec

STAGE_ZERO = ("all monolith", "The proxy stands in front of the monolith and changes nothing.")


class StageError(ValueError):
    """A stage that does not exist, or a context no stage extracts."""


@dataclass(frozen=True)
class Stage:
    """One stage, resolved: what runs where, and its route table."""

    number: int
    title: str
    summary: str
    extracts: str | None
    services: tuple[str, ...]  # contexts extracted so far that run as services, in order
    services_own: tuple[str, ...]  # contexts whose tables moved (to a service or to functions)
    monolith_serves: bool
    table: RouteTable
    serverless: tuple[str, ...] = ()  # contexts extracted so far that run as functions

    @property
    def extracted(self) -> tuple[str, ...]:
        """Every context extracted so far, however it runs."""
        return self.services + self.serverless

    @property
    def label(self) -> str:
        return f"stage {self.number}: {self.title}"

    def table_text(self) -> str:
        """The table as the proxy's TOML file format."""
        return render_table(self.table)


@dataclass(frozen=True)
class Migration:
    """The stages in order, and what each context needs."""

    contexts: dict[str, ContextSpec]
    stages: tuple[Stage, ...]
    # Targets chosen other than the workspace file says (the durable state's `targets`).
    targets: Mapping[str, str] = field(default_factory=dict)
    workspace: Workspace | None = field(default=None, repr=False, compare=False)

    def retargeted(self, targets: Mapping[str, str]) -> Migration:
        """The same migration with these contexts extracted as these targets (the state's
        choices), re-rendered; itself when nothing changes."""
        if dict(targets) == dict(self.targets) or self.workspace is None:
            return self
        return build_migration(self.workspace, targets)

    def stage(self, number: int) -> Stage:
        if not 0 <= number < len(self.stages):
            raise StageError(f"there is no stage {number}; stages are 0..{self.last}")
        return self.stages[number]

    @property
    def last(self) -> int:
        return len(self.stages) - 1

    def stage_extracting(self, context: str) -> Stage:
        """The stage at which `context` is extracted."""
        for stage in self.stages:
            if stage.extracts == context:
                return stage
        known = [stage.extracts for stage in self.stages if stage.extracts]
        raise StageError(f"no stage extracts {context!r}; contexts: {', '.join(known)}")

    @cached_property
    def retiring_stage(self) -> Stage | None:
        return next((stage for stage in self.stages if not stage.monolith_serves), None)

    @cached_property
    def serverless(self) -> frozenset[str]:
        """Contexts some stage extracts to functions."""
        return frozenset(c for stage in self.stages for c in stage.serverless)

    def unjudged_routes(self, context: str) -> set[str]:
        return {skip.route for skip in self.contexts[context].shadow_skips}


def build_migration(workspace: Workspace, targets: Mapping[str, str] | None = None) -> Migration:
    """Every stage of the workspace, with its rendered and validated route table; `targets`
    overrides what some contexts are extracted as (a context extracted to functions must be
    declared serverless with its table and its item mapping)."""
    spec = workspace.spec
    chosen = {s.extract: s.target for s in spec.stages if s.extract} | dict(targets or {})
    for context, target in (targets or {}).items():
        if context not in chosen or target not in ("service", "serverless"):
            raise StageError(f"no stage extracts {context!r} as a {target!r}")
        declared = spec.contexts[context].serverless
        is_declared = declared is not None and bool(declared.table and declared.items)
        if target == "serverless" and not is_declared:
            raise StageError(
                f"{context} runs as functions only with [contexts.{context}.serverless] declaring"
                " `table` and `items` in strangler.toml (docs/serverless.md)"
            )
        if target == "service" and spec.contexts[context].service is None:
            raise StageError(f"{context} has no service in strangler.toml")
    functions = {context for context, target in chosen.items() if target == "serverless"}
    known = set(spec.contexts) | {pages_upstream(c) for c in functions}
    stages = [Stage(0, *STAGE_ZERO, None, (), (), True, _table(workspace, (), None, known))]
    extracted: list[str] = []
    for number, stage in enumerate(spec.stages, start=1):
        if stage.extract is not None:
            extracted.append(stage.extract)
        owning = tuple(c for c in extracted if spec.contexts[c].moves_data)
        retired = stage.retire_monolith
        table = _table(workspace, tuple(extracted), stage.unmatched if retired else None, known)
        services = tuple(c for c in extracted if c not in functions)
        serverless = tuple(c for c in extracted if c in functions)
        stages.append(
            Stage(
                number, stage.title, stage.summary, stage.extract, services, owning,
                not retired, table, serverless,
            )
        )
    return Migration(dict(spec.contexts), tuple(stages), dict(targets or {}), workspace)


def pages_upstream(context: str) -> str:
    """The upstream of a context's static pages when it runs as functions (its bucket)."""
    return f"{context}-pages"


def _table(
    workspace: Workspace, extracted: tuple[str, ...], unmatched: str | None, known: set[str]
) -> RouteTable:
    spec = workspace.spec
    routes: list[dict[str, Any]] = []
    for route in spec.routes:
        context = spec.context_of(route) or MONOLITH
        entry: dict[str, Any] = {
            "name": route.name,
            "methods": route.methods,
            "path": route.path,
            "context": context,
            "mode": "service" if context in extracted else "monolith",
            "fallback": route.fallback.value,
        }
        if context in extracted:
            entry["data_owner"] = "service"
        if f"{context}-pages" in known and _serves_pages(workspace, context, route.path):
            entry["upstream"] = pages_upstream(context)
        for timeout in ("connect_timeout", "read_timeout"):
            if getattr(route, timeout) is not None:
                entry[timeout] = getattr(route, timeout)
        if route.shadow_ignore:
            entry["shadow_ignore"] = [rule.model_dump() for rule in route.shadow_ignore]
        routes.append(entry)
    if unmatched is not None:
        routes.extend(_other_methods(routes))
    document = {
        "unmatched": unmatched or MONOLITH,
        "shadow_ignore": [rule.model_dump() for rule in spec.shadow_ignore],
        "routes": routes,
    }
    return validate_document(document, known)


def _serves_pages(workspace: Workspace, context: str, path: str) -> bool:
    declared = workspace.spec.contexts[context].serverless
    return declared is not None and declared.pages_route_path == path


def _other_methods(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Once the monolith retires: any other method on a known path goes to the service that
    knows the path, so the contract's 405 (with `Allow`) comes from it."""
    first: dict[str, dict[str, Any]] = {}
    for route in sorted(routes, key=lambda route: "GET" not in route["methods"]):
        first.setdefault(route["path"], route)  # named after the path's read, where it has one
    return [
        {
            "name": f"{route['name']}.other_methods",
            "methods": ["*"],
            "path": path,
            "context": route["context"],
            "mode": "service",
            "data_owner": "service",
        }
        for path, route in first.items()
    ]


def render_table(table: RouteTable) -> str:
    """A table as TOML text that `strangler_proxy.table.parse_table` reads back unchanged."""
    return tomli_w.dumps(_without_nulls(table_document(table)))


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value
