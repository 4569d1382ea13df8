"""Route inventory: every endpoint of a Flask app, from its own URL map.

Every rule becomes one route of the workspace's inventory, named after its endpoint, with its
blueprint (by which a context may claim it), so no endpoint is forgotten when routes later
move. Werkzeug converters become `{name}` parameters. The app's operational endpoints
(`/healthz`, `/metrics`) and static files are the proxy's or nobody's and are left out, and so
is a catch-all `<path:...>` rule (it has no single template; it stays with the monolith). This
module must never start a server or touch a database; building the app is the caller's
factory's business.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from strangler.workspace.model import RouteSpec

SKIPPED_ENDPOINTS = frozenset({"static", "healthz", "metrics_endpoint"})
SKIPPED_PATHS = frozenset({"/healthz", "/metrics"})
IMPLIED_METHODS = frozenset({"HEAD", "OPTIONS"})
_CONVERTER = re.compile(r"<(?:[a-zA-Z_][a-zA-Z0-9_]*(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")


class _Rule(Protocol):
    rule: str
    endpoint: str
    methods: set[str] | None


class HasUrlMap(Protocol):
    url_map: Any


def load_app(source: HasUrlMap | Callable[[], HasUrlMap]) -> HasUrlMap:
    """An app as it is, or the app a factory builds."""
    if hasattr(source, "url_map"):
        return source
    return source()


def template(rule: str) -> str:
    """A werkzeug rule as a route template: `/api/users/<int:user_id>` -> `/api/users/{user_id}`."""
    return _CONVERTER.sub(lambda found: "{" + found.group(1) + "}", rule)


def _rules(url_map: Any) -> Iterable[_Rule]:
    for rule in url_map.iter_rules():
        if rule.endpoint in SKIPPED_ENDPOINTS or rule.rule in SKIPPED_PATHS:
            continue
        if "<path:" in rule.rule:
            continue
        yield rule


def discover_routes(source: HasUrlMap | Callable[[], HasUrlMap]) -> list[RouteSpec]:
    """Every endpoint of a Flask app (or of the app a factory builds), ordered by path."""
    app = load_app(source)
    ordered = sorted(_rules(app.url_map), key=lambda rule: (template(rule.rule), rule.endpoint))
    return [
        RouteSpec(
            name=rule.endpoint,
            methods=sorted((rule.methods or {"GET"}) - IMPLIED_METHODS),
            path=template(rule.rule),
            blueprint=rule.endpoint.split(".", 1)[0] if "." in rule.endpoint else None,
        )
        for rule in ordered
    ]


def inventory_text(routes: Iterable[RouteSpec]) -> str:
    """The routes as `[[routes]]` entries of a workspace file."""
    blocks = []
    for route in routes:
        lines = [
            "[[routes]]",
            f"name = {_quote(route.name)}",
            f"methods = [{', '.join(_quote(method) for method in route.methods)}]",
            f"path = {_quote(route.path)}",
        ]
        if route.blueprint:
            lines.append(f"blueprint = {_quote(route.blueprint)}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
