"""What the traffic gates share: a context's routes as the proxy serves them, changed together.

This module must never touch a database.
"""

from __future__ import annotations

from typing import Any

from strangler_proxy.client import ProxyAdmin
from strangler_proxy.table import SAFE_METHODS


def read_routes(admin: ProxyAdmin, context: str) -> list[dict[str, Any]]:
    """The context's routes that serve only safe methods (the ones shadow and canary take)."""
    return [
        route
        for route in admin.route_list()
        if route.get("context") == context and set(route["methods"]) <= SAFE_METHODS
    ]


def set_mode(
    admin: ProxyAdmin, routes: list[dict[str, Any]], changes: dict[str, Any], why: str
) -> None:
    """The same change to every route, in one table version."""
    if routes:
        admin.change_routes({route["name"]: dict(changes) for route in routes}, why)


def reads_back_to_the_monolith(admin: ProxyAdmin, context: str, why: str) -> str:
    """Every read route of a context whose data the monolith still owns back to the monolith
    (routes already there stay; a context whose data moved is its cutover's to give back)."""
    owner = admin.owner_of(context)
    if owner is not None and owner.value == "service":
        return "its data is the service's: its cutover gives the routes back"
    moved = [route for route in read_routes(admin, context) if route.get("mode") != "monolith"]
    set_mode(admin, moved, {"mode": "monolith", "analysis": None, "canary_percent": 0}, why)
    return f"{len(moved)} read routes back to the monolith" if moved else "none was away"
