"""Route inventory: build an initial route table from a Flask app's own URL map.

Every rule of the monolith becomes one route in mode `monolith`, named after its endpoint, with
its context taken from the blueprint (`users.get_user` -> `users`), so no endpoint is forgotten
when routes later move. Werkzeug converters become `{name}` parameters. The app's operational
endpoints (`/healthz`, `/metrics`) and static files are the proxy's or nobody's and are left
out. The result is TOML text that `table.parse_table` accepts. This module must never start a
server or touch a database; building the app is the caller's factory's business.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from strangler_proxy.table import MONOLITH, parse_table

CONTEXTS = ("users", "forum", "polls", "search")
SKIPPED_ENDPOINTS = frozenset({"static", "healthz", "metrics_endpoint"})
SKIPPED_PATHS = frozenset({"/healthz", "/metrics"})
IMPLIED_METHODS = frozenset({"HEAD", "OPTIONS"})
_CONVERTER = re.compile(r"<(?:[a-zA-Z_][a-zA-Z0-9_]*(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")


class _Rule(Protocol):
    rule: str
    endpoint: str
    methods: set[str] | None


class _HasUrlMap(Protocol):
    url_map: Any


def _load(source: _HasUrlMap | Callable[[], _HasUrlMap] | str) -> _HasUrlMap:
    """Accept an app, a factory, or 'module:factory' (as gunicorn writes it, without '()')."""
    if isinstance(source, str):
        module_name, _, attribute = source.partition(":")
        target = getattr(importlib.import_module(module_name), attribute or "create_app")
        return _load(target)
    if hasattr(source, "url_map"):
        return source
    return source()  # type: ignore[operator]


def _template(rule: str) -> str:
    return _CONVERTER.sub(lambda found: "{" + found.group(1) + "}", rule)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _route_block(rule: _Rule) -> list[str]:
    methods = sorted((rule.methods or {"GET"}) - IMPLIED_METHODS)
    blueprint = rule.endpoint.split(".", 1)[0] if "." in rule.endpoint else MONOLITH
    context = blueprint if blueprint in CONTEXTS else MONOLITH
    return [
        "[[routes]]",
        f"name = {_quote(rule.endpoint)}",
        f"methods = [{', '.join(_quote(method) for method in methods)}]",
        f"path = {_quote(_template(rule.rule))}",
        f"context = {_quote(context)}",
        'mode = "monolith"',
        "",
    ]


def _rules(url_map: Any) -> Iterable[_Rule]:
    for rule in url_map.iter_rules():
        if rule.endpoint in SKIPPED_ENDPOINTS or rule.rule in SKIPPED_PATHS:
            continue
        if "<path:" in rule.rule:
            continue  # a catch-all has no single template; it stays with the monolith
        yield rule


def discover_routes(source: _HasUrlMap | Callable[[], _HasUrlMap] | str) -> str:
    """The route table TOML for every endpoint of a Flask app (or factory, or 'module:factory').

    Every route starts in mode `monolith` (stage 0: the proxy is transparent). The text is
    validated before it is returned, so what this writes always loads.
    """
    app = _load(source)
    ordered = sorted(_rules(app.url_map), key=lambda rule: (_template(rule.rule), rule.endpoint))
    lines = [
        "# Route table discovered from the monolith's URL map by `strangler routes discover`.",
        "# Each route: methods + path template -> context, mode (monolith | shadow | canary |",
        "# service), optional timeouts, fallback and shadow ignore rules. See docs/proxy.md.",
        "",
    ]
    for rule in ordered:
        lines.extend(_route_block(rule))
    text = "\n".join(lines)
    parse_table(text, "<discovered>")
    return text
