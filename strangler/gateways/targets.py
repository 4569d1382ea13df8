"""What every gateway rendering needs to know of a table, computed once the Python proxy's way.

Routes come out in the order the Python proxy's `Router` tries them (most specific first, table
order among equals), each with its path as a regular expression over the normalised path that
matches exactly what the router matches (case-insensitive, trailing slash ignored), the methods it
answers (HEAD wherever GET is), where it goes, and its timeouts and fallback. Upstreams are parsed
from their URLs. This module must never write a configuration format nor perform I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from strangler_proxy.table import (
    MONOLITH,
    SAFE_METHODS,
    DataOwner,
    Fallback,
    Mode,
    Route,
    RouteTable,
)

_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Characters of a template's literal text that mean something in a regular expression.
_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")


class UnknownUpstream(ValueError):
    """A route or the table's `unmatched` sends traffic to an upstream with no URL."""


@dataclass(frozen=True)
class Upstream:
    """One upstream by name, its URL taken apart."""

    name: str
    url: str
    scheme: str
    host: str
    port: int
    prefix: str  # a path the upstream's URL carries, put before every forwarded path

    @classmethod
    def parse(cls, name: str, url: str) -> Upstream:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream {name!r}: not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(
            name, url.rstrip("/"), parts.scheme, parts.hostname, port, parts.path.rstrip("/")
        )

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def upstreams_of(table: RouteTable, urls: Mapping[str, str]) -> dict[str, Upstream]:
    """Every upstream the table may send to: the file's `[upstreams]`, overridden by `urls`."""
    merged = {**table.upstreams, **urls}
    if MONOLITH not in merged:
        raise UnknownUpstream("no URL is given for the monolith")
    return {name: Upstream.parse(name, url) for name, url in sorted(merged.items())}


@dataclass(frozen=True)
class RouteTarget:
    """One active route as a gateway sees it."""

    route: Route
    order: int  # position in the router's order: lower is tried first
    methods: tuple[str, ...]  # explicit methods, HEAD added where GET is; () means every method
    segments: tuple[tuple[str, ...], ...]  # per path segment: literal and parameter pieces

    @property
    def name(self) -> str:
        return self.route.name

    @property
    def falls_back(self) -> bool:
        """Whether a failed safe request on the service is retried on the monolith."""
        route = self.route
        return (
            route.mode in (Mode.SERVICE, Mode.CANARY)
            and route.fallback is Fallback.MONOLITH
            and route.owner is DataOwner.MONOLITH
        )

    @property
    def safe_methods_only(self) -> bool:
        return bool(self.methods) and set(self.methods) <= SAFE_METHODS

    def connect_timeout(self, default: float) -> float:
        return self.route.connect_timeout or default

    def read_timeout(self, default: float) -> float:
        return self.route.read_timeout or default

    def path_regex(self, anchored: bool = True) -> str:
        """A regular expression (PCRE and RE2 alike) over the decoded path, as the router matches.

        Case-insensitive and ignoring one trailing slash, like `paths.CanonicalPath.match_key`.
        """
        pieces = []
        for segment in self.segments:
            pieces.append("/")
            for piece in segment:
                pieces.append("[^/]+" if piece.startswith("{") else _escape(piece))
        body = "".join(pieces) or ""
        regex = f"(?i){body}/?"
        return f"^{regex}$" if anchored else regex


def _escape(text: str) -> str:
    return "".join(f"\\{char}" if char in _REGEX_SPECIAL else char for char in text)


def _split_segment(segment: str) -> tuple[str, ...]:
    pieces: list[str] = []
    position = 0
    for found in _PARAMETER.finditer(segment):
        if found.start() > position:
            pieces.append(segment[position : found.start()].lower())
        pieces.append(found.group(0))
        position = found.end()
    if position < len(segment):
        pieces.append(segment[position:].lower())
    return tuple(pieces)


def _rank(segment: tuple[str, ...]) -> int:
    parameters = sum(piece.startswith("{") for piece in segment)
    if not parameters:
        return 2
    return 0 if len(segment) == 1 else 1


def route_targets(table: RouteTable) -> list[RouteTarget]:
    """The active routes in the order `strangler_proxy.routing.Router` tries them."""
    found = []
    for route in table.routes:
        if not route.active:
            continue
        template = route.path.rstrip("/") or "/"
        segments = tuple(_split_segment(part) for part in template.split("/") if part)
        if route.is_wildcard_method:
            methods: tuple[str, ...] = ()
        else:
            listed = set(route.methods) | ({"HEAD"} if "GET" in route.methods else set())
            methods = tuple(sorted(listed))
        found.append((route, methods, segments))

    def specificity(item: tuple[Route, tuple[str, ...], tuple[tuple[str, ...], ...]]) -> tuple:
        route, _, segments = item
        return (*(_rank(segment) for segment in segments), int(not route.is_wildcard_method))

    # Depths never compete (a pattern matches paths of its own depth only), so one stable sort
    # gives each depth the router's order.
    ordered = sorted(found, key=specificity, reverse=True)
    return [
        RouteTarget(route, order, methods, segments)
        for order, (route, methods, segments) in enumerate(ordered)
    ]


def at_rest(route: Route, migrating: frozenset[str] | set[str]) -> bool:
    """A route whose requests need no migration feature: one side answers, nothing watches."""
    return route.mode in (Mode.MONOLITH, Mode.SERVICE) and route.context not in migrating


def answering_upstream(route: Route) -> str:
    """The upstream answering a route at rest."""
    return route.context if route.mode is Mode.SERVICE else MONOLITH
