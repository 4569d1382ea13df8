"""Specification: every gateway tries the routes in the Python router's order, with its patterns.

`route_targets` compiles the table once for every rendering; for any method and path the first
target whose methods and regular expression match must be the route `strangler_proxy.routing`
picks. Checked on the stage tables and on generated tables with overlapping templates.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strangler.gateways.nginx_live import render_live
from strangler.gateways.targets import UnknownUpstream, route_targets
from strangler.workspace import find_workspace
from strangler_proxy.paths import UnsafePath, canonicalise
from strangler_proxy.routing import Router
from strangler_proxy.table import RouteTable, parse_table

MIGRATION = find_workspace().migration()
STAGES = [stage.number for stage in MIGRATION.stages]
CONTEXTS = ["users", "forum", "polls", "search"]
METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"]


def stage_table(stage: int) -> RouteTable:
    return MIGRATION.stage(stage).table


def chosen_by_targets(table: RouteTable, method: str, decoded_path: str) -> str | None:
    for target in route_targets(table):
        if target.methods and method not in target.methods:
            continue
        if re.fullmatch(target.path_regex(anchored=False), decoded_path.rstrip("/") or "/"):
            return target.name
    return None


def chosen_by_router(table: RouteTable, method: str, raw: str) -> str | None:
    route = Router(table).match(method, canonicalise(raw.encode()).match_key)
    return route.name if route else None


SEGMENTS = st.sampled_from(
    ["api", "API", "users", "threads", "polls", "7", "results", "3.html", "posts", "votes",
     "me", "search", "x", "a1", "%61pi", "..", "."]
)  # fmt: skip
PATHS = st.lists(SEGMENTS, min_size=0, max_size=5).map(
    lambda parts: "/" + "/".join(parts)
) | st.lists(SEGMENTS, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts) + "/")


@pytest.mark.parametrize("stage", STAGES, ids=lambda number: f"stage{number}")
@settings(max_examples=200, deadline=None)
@given(method=st.sampled_from(METHODS), raw=PATHS)
def test_stage_tables_route_every_request_as_the_python_router(
    stage: Path, method: str, raw: str
) -> None:
    table = stage_table(stage)
    try:
        decoded = canonicalise(raw.encode()).decoded
    except UnsafePath:
        return
    assert chosen_by_targets(table, method, decoded) == chosen_by_router(table, method, raw)


TEMPLATE_SEGMENTS = st.sampled_from(["api", "{a}", "{b}.html", "x{c}", "users", "7", "Results"])
ROUTES = st.lists(
    st.tuples(
        st.lists(TEMPLATE_SEGMENTS, min_size=1, max_size=3),
        st.sampled_from([["GET"], ["POST"], ["*"], ["GET", "PATCH"]]),
    ),
    min_size=1,
    max_size=8,
)


def table_of(routes: list[tuple[list[str], list[str]]]) -> RouteTable | None:
    lines = []
    for number, (segments, methods) in enumerate(routes):
        template = "/" + "/".join(
            re.sub(r"\{[a-z]\}", f"{{p{index}}}", part) for index, part in enumerate(segments)
        )
        quoted = ", ".join(f'"{method}"' for method in methods)
        lines.append(
            f'[[routes]]\nname = "r{number}"\nmethods = [{quoted}]\npath = "{template}"\n'
            'context = "users"\nmode = "service"\n'
        )
    try:
        return parse_table("\n".join(lines), known_upstreams=["users"])
    except ValueError:
        return None  # a shape claimed twice: the table is refused anyway


@settings(max_examples=300, deadline=None)
@given(routes=ROUTES, method=st.sampled_from(METHODS), raw=PATHS)
def test_overlapping_templates_route_as_the_python_router(
    routes: list[tuple[list[str], list[str]]], method: str, raw: str
) -> None:
    table = table_of(routes)
    if table is None:
        return
    try:
        decoded = canonicalise(raw.encode()).decoded
    except UnsafePath:
        return
    assert chosen_by_targets(table, method, decoded) == chosen_by_router(table, method, raw)


def test_inactive_routes_are_not_rendered() -> None:
    table = parse_table('[[routes]]\nname = "a"\nmethods = ["GET"]\npath = "/a"\nactive = false\n')
    assert route_targets(table) == []


def test_rendering_is_a_pure_function_of_its_inputs() -> None:
    table = MIGRATION.stage(3).table
    urls = {name: f"http://127.0.0.1:{9000 + n}" for n, name in enumerate(["monolith", *CONTEXTS])}
    first = render_live(table, urls, "http://127.0.0.1:8999", ["forum"])
    assert first == render_live(
        table, dict(reversed(urls.items())), "http://127.0.0.1:8999", ["forum"]
    )


def test_a_route_at_rest_needs_its_upstream_url() -> None:
    table = MIGRATION.stage(1).table
    with pytest.raises(UnknownUpstream, match="users"):
        render_live(table, {"monolith": "http://127.0.0.1:1"}, "http://127.0.0.1:2")
