"""Specification: through nginx, the path rules of the Python proxy hold, request for request.

The cases are those of tests/proxy/test_path_normalisation.py. nginx must route every spelling
of a path where the Python router does and forward the same canonical path the Python proxy
forwards (`strangler_proxy.paths.canonicalise`), and refuse with a 400 problem whatever the Python
proxy refuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from strangler.gateways.nginx_plane import NginxPlane
from strangler_proxy.paths import canonicalise
from tests.gateways.conftest import body_of, raw_request, start_plane
from tests.proxy.conftest import Upstream

TABLE = """
[[routes]]
name = "users.get_user"
methods = ["GET"]
path = "/api/users/{user_id}"
context = "users"
mode = "service"
"""

SERVICE_SPELLINGS = [
    b"/api/users/7",
    b"/api//users/7",  # repeated slash
    b"//api/users/7",
    b"/api/users/7/",  # trailing slash
    b"/api/./users/7",  # dot segment
    b"/api/x/../users/7",  # dot-dot segment
    b"/api/%2e/users/7",  # encoded dot
    b"/api/x/%2E%2E/users/7",  # encoded dot-dot
    b"/api/x/.%2e/users/7",  # half-encoded dot-dot
    b"/%61pi/users/7",  # percent-encoded letter
    b"/api/us%65rs/%37",  # percent-encoded letter and digit
    b"/API/Users/7",  # case
    b"/Api/USERS/7/",  # case and trailing slash
]

AMBIGUOUS_TARGETS = [
    b"/api/users%2F7",  # encoded slash
    b"/api/users%2f7",
    b"/api%2Fusers/7",
    b"/api\\users\\7",  # backslash
    b"/api/users%5C7",  # encoded backslash
    b"/api/users/7%00",  # encoded NUL
    b"/api/users/%0a7",  # encoded newline
    b"/api/users/%zz",  # malformed escape
    b"/api/users/%7",  # cut-short escape
    b"/api/users/%",
    b"/api/users/%ff",  # not UTF-8 once decoded
    b"/../api/users/7",  # climbing above the root
    b"/api/../../users/7",
    b"/%2e%2e/api/users/7",
    b"api/users/7",  # not absolute
    b"/api/users/\xc3\xa9",  # raw non-ASCII byte
    b"/results/%7C%C3%AF%05.html",  # an extension does not make the problem text/html
]

FORWARDED_AS_THE_PROXY_DOES = [
    b"/api//x/../users/%37/",
    b"/api/users/%252F7",  # decoded once: stays the text %2F
    b"/api/users/7%3Fadmin=1%23x",  # reserved characters decoded for matching, re-encoded
    b"/api/search/caf%C3%A9",  # UTF-8 escapes survive
    b"/api/users/7?next=%2F&q=a%20b",  # the query passes as it came
]


@pytest.fixture(scope="module")
def plane(
    module_dir: Path, nginx_binary: str, monolith: Upstream, users: Upstream,
    python_proxy: Upstream,
) -> Iterator[NginxPlane]:  # fmt: skip
    running = start_plane(
        module_dir / "paths", nginx_binary, TABLE,
        {"monolith": monolith.url, "users": users.url}, python_proxy.url,
    )  # fmt: skip
    yield running
    running.stop()


def echo(plane: NginxPlane, target: bytes) -> dict[str, object]:
    status, answer = raw_request(plane.url, target)
    assert status == 200, answer
    found: dict[str, object] = json.loads(body_of(answer))
    return found


@pytest.mark.parametrize("raw", SERVICE_SPELLINGS)
def test_every_spelling_of_a_service_path_reaches_the_service(
    plane: NginxPlane, raw: bytes
) -> None:
    assert echo(plane, raw)["answered_by"] == "users"


@pytest.mark.parametrize("raw", SERVICE_SPELLINGS + FORWARDED_AS_THE_PROXY_DOES)
def test_the_upstream_receives_the_path_the_python_proxy_would_forward(
    plane: NginxPlane, raw: bytes
) -> None:
    path, _, query = raw.partition(b"?")
    expected = canonicalise(path).forward + ("?" + query.decode() if query else "")
    assert echo(plane, raw)["raw_path"] == expected


@pytest.mark.parametrize("raw", AMBIGUOUS_TARGETS)
def test_ambiguous_targets_are_refused_with_a_400_problem(plane: NginxPlane, raw: bytes) -> None:
    status, answer = raw_request(plane.url, raw, b"X-Request-ID: ambiguous-1\r\n")
    assert status == 400
    assert b"content-type: application/problem+json" in answer.lower()
    problem = json.loads(body_of(answer))
    assert problem["status"] == 400
    assert problem["type"] == "urn:strangler:problem:bad-request"
    assert problem["request_id"]
    assert problem["detail"].startswith("the request path is not acceptable")  # as the proxy


def test_a_refusal_names_the_rule_and_keeps_the_request_id(plane: NginxPlane) -> None:
    _, answer = raw_request(plane.url, b"/api/users%2F7", b"X-Request-ID: trace-me-1\r\n")
    problem = json.loads(body_of(answer))
    assert problem["detail"] == (
        "the request path is not acceptable: encoded slashes (%2F) are not allowed in paths"
    )
    assert problem["request_id"] == "trace-me-1"
    assert b"x-request-id: trace-me-1" in answer.lower()


@pytest.mark.parametrize(
    ("raw", "answered_by"),
    [
        (b"/api/users/7/posts", "monolith"),
        (b"/api/users/7/posts/..", "users"),
        (b"/api/users", "monolith"),
        (b"/api/users/7/%2e%2e/7", "users"),
    ],
)
def test_a_monolith_path_cannot_be_disguised_as_a_service_path(
    plane: NginxPlane, raw: bytes, answered_by: str
) -> None:
    assert echo(plane, raw)["answered_by"] == answered_by


def test_internal_locations_cannot_be_reached_by_a_client(plane: NginxPlane) -> None:
    for raw in (b"/\\strangler/users.get_user/", b"/%5Cstrangler/error/502"):
        status, _ = raw_request(plane.url, raw)
        assert status == 400
