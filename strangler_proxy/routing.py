"""Matching a canonical request path and method to the route that governs it.

A `Router` is compiled once per table version and never changes, so a table swap is one
reference assignment and in-flight requests keep the router they started with. Most specific
wins: compared segment by segment from the left, a literal segment beats a segment that mixes
literal text and a parameter, which beats a bare parameter; then explicit methods beat `*`.
`HEAD` is served by the route that lists `GET`. Matching ignores case and the trailing slash
(`paths.CanonicalPath.match_key`). Inactive routes never match. Unmatched requests go to the
table's `unmatched` upstream (the monolith unless the table says otherwise). This module must
never perform I/O nor look at anything but method and path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strangler_proxy.table import Route, RouteTable

_PARAMETER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


@dataclass(frozen=True)
class _Candidate:
    pattern: re.Pattern[str]
    methods: frozenset[str]
    route: Route
    specificity: tuple[int, ...]


def _segment_rank(segment: str) -> int:
    if not _PARAMETER.search(segment):
        return 2
    return 0 if _PARAMETER.fullmatch(segment) else 1


def _compile(route: Route) -> _Candidate:
    template = route.path.rstrip("/").lower() or "/"
    pieces = []
    position = 0
    for found in _PARAMETER.finditer(template):
        pieces.append(re.escape(template[position : found.start()]))
        pieces.append("[^/]+")
        position = found.end()
    pieces.append(re.escape(template[position:]))
    segments = [segment for segment in template.split("/") if segment]
    methods = frozenset(route.methods)
    specificity = (*(_segment_rank(segment) for segment in segments), int("*" not in methods))
    return _Candidate(re.compile("".join(pieces)), methods, route, specificity)


class Router:
    """The compiled, immutable matcher of one table version."""

    def __init__(self, table: RouteTable) -> None:
        self.table = table
        by_depth: dict[int, list[_Candidate]] = {}
        for route in table.routes:
            if not route.active:
                continue
            candidate = _compile(route)
            depth = len(candidate.specificity) - 1
            by_depth.setdefault(depth, []).append(candidate)
        for candidates in by_depth.values():
            candidates.sort(key=lambda candidate: candidate.specificity, reverse=True)
        self._by_depth = by_depth

    def match(self, method: str, match_key: str) -> Route | None:
        """The active route for this method and canonical match key, or None (the monolith)."""
        depth = match_key.count("/") if match_key != "/" else 0
        candidates = self._by_depth.get(depth)
        if not candidates:
            return None
        for candidate in candidates:
            if not candidate.pattern.fullmatch(match_key):
                continue
            methods = candidate.methods
            if method in methods or "*" in methods or (method == "HEAD" and "GET" in methods):
                return candidate.route
        return None
