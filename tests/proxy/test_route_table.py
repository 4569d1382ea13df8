"""Specification of the route table file: validation naming lines, matching, discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler.workspace import find_workspace
from strangler_proxy.routing import Router
from strangler_proxy.table import Mode, TableError, parse_table

REPO = Path(__file__).resolve().parents[2]


def problems_of(text: str) -> list[str]:
    with pytest.raises(TableError) as raised:
        parse_table(text, "t.toml", known_upstreams={"users", "forum", "polls"})
    return raised.value.problems


def test_the_stage0_table_loads_and_sends_everything_to_the_monolith() -> None:
    table = parse_table(find_workspace().migration().stage(0).table_text())
    assert table.routes
    assert {route.mode for route in table.routes} == {Mode.MONOLITH}


def test_a_toml_syntax_error_names_its_line() -> None:
    [problem] = problems_of('[[routes]]\nname = "a"\nmethods = = ["GET"]\npath = "/a"\n')
    assert problem.startswith("t.toml:3: not valid TOML")


def test_a_table_cut_short_names_its_last_line() -> None:
    [problem] = problems_of('[[routes]]\nname = "a"\nmethods = ["GET"\n')
    assert problem.startswith("t.toml:3: not valid TOML")


def test_an_unknown_field_names_its_line() -> None:
    text = '[[routes]]\nname = "a"\nmethods = ["GET"]\npath = "/a"\ncolour = "red"\n'
    [problem] = problems_of(text)
    assert problem.startswith("t.toml:5:") and "colour" in problem


def test_a_bad_mode_and_a_bad_percentage_are_each_reported_with_their_line() -> None:
    text = (
        '[[routes]]\nname = "a"\nmethods = ["GET"]\npath = "/a"\ncontext = "users"\n'
        'mode = "sometimes"\n\n'
        '[[routes]]\nname = "b"\nmethods = ["GET"]\npath = "/b"\ncontext = "users"\n'
        'mode = "canary"\ncanary_percent = 150\n'
    )
    found = problems_of(text)
    assert any(p.startswith("t.toml:6:") and "mode" in p for p in found)
    assert any(p.startswith("t.toml:14:") and "canary_percent" in p for p in found)


def test_writes_cannot_be_canaried() -> None:
    text = (
        '[[routes]]\nname = "a"\nmethods = ["GET", "POST"]\npath = "/a"\ncontext = "users"\n'
        'mode = "canary"\ncanary_percent = 5\n'
    )
    [problem] = problems_of(text)
    assert problem.startswith("t.toml:1:") and "writes move at cutover" in problem


def test_a_route_to_a_context_without_an_upstream_url_is_refused() -> None:
    text = (
        '[[routes]]\nname = "a"\nmethods = ["GET"]\npath = "/a"\ncontext = "billing"\n'
        'mode = "service"\n'
    )
    [problem] = problems_of(text)
    assert problem.startswith("t.toml:5:") and "billing" in problem


def test_unmatched_paths_need_an_upstream_url_too() -> None:
    text = '# retired monolith\nunmatched = "billing"\n'
    [problem] = problems_of(text)
    assert problem.startswith("t.toml:2: unmatched:") and "billing" in problem
    assert parse_table('unmatched = "users"\n', known_upstreams={"users"}).unmatched == "users"


def test_two_routes_claiming_the_same_method_and_path_are_refused() -> None:
    text = (
        '[[routes]]\nname = "a"\nmethods = ["GET"]\npath = "/a/{x}"\n\n'
        '[[routes]]\nname = "b"\nmethods = ["GET"]\npath = "/a/{y}/"\n'
    )
    [problem] = problems_of(text)
    assert problem.startswith("t.toml:6:") and "claimed twice" in problem


def test_bad_path_templates_and_methods_are_refused() -> None:
    text = '[[routes]]\nname = "a"\nmethods = ["FETCH"]\npath = "a/{x"\n'
    found = problems_of(text)
    assert any("methods" in p and "FETCH" in p for p in found)
    assert any("path" in p for p in found)


def test_analysis_steps_must_rise() -> None:
    text = (
        '[[routes]]\nname = "a"\nmethods = ["GET"]\npath = "/a"\ncontext = "users"\n'
        'mode = "canary"\n[routes.analysis]\nsteps = [10, 5]\n'
    )
    [problem] = problems_of(text)
    assert problem.startswith("t.toml:8:") and "rise" in problem


def test_shadow_ignore_rules_need_a_reason() -> None:
    text = '[[shadow_ignore]]\nfield = "as_of"\n'
    [problem] = problems_of(text)
    assert "reason" in problem


ROUTES = parse_table(
    """
[upstreams]
users = "http://127.0.0.1:1"
polls = "http://127.0.0.1:2"

[[routes]]
name = "any-user-thing"
methods = ["*"]
path = "/api/users/{id}"
context = "users"
mode = "service"

[[routes]]
name = "get-user"
methods = ["GET"]
path = "/api/users/{id}"
context = "users"
mode = "service"

[[routes]]
name = "me"
methods = ["GET"]
path = "/api/users/me"
context = "users"
mode = "service"

[[routes]]
name = "results-page"
methods = ["GET"]
path = "/results/{id}.html"
context = "polls"
mode = "service"

[[routes]]
name = "staged"
methods = ["GET"]
path = "/api/polls/{id}"
context = "polls"
mode = "service"
active = false
"""
)


@pytest.mark.parametrize(
    ("method", "key", "expected"),
    [
        ("GET", "/api/users/me", "me"),  # a literal segment beats a parameter
        ("GET", "/api/users/7", "get-user"),  # explicit methods beat '*'
        ("PATCH", "/api/users/7", "any-user-thing"),
        ("HEAD", "/api/users/7", "get-user"),  # HEAD follows GET
        ("GET", "/results/3.html", "results-page"),  # mixed literal and parameter
        ("GET", "/results/3.json", None),
        ("GET", "/api/polls/3", None),  # inactive routes never match
        ("GET", "/api/users/7/extra", None),  # unmatched goes to the monolith
    ],
)
def test_the_most_specific_active_route_wins(method: str, key: str, expected: str | None) -> None:
    route = Router(ROUTES).match(method, key)
    assert (route.name if route else None) == expected
