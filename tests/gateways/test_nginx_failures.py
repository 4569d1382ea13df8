"""Specification: what nginx answers when a request or an upstream fails.

Every error nginx answers itself is problem+json with the request id; per-route timeouts come
from the table; a safe request on a service route falls back to the monolith while the monolith
owns the data and the route allows it, and never otherwise; slow or idle clients are cut off.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.gateways.conftest import PlaneFactory, body_of, dead_url, raw_request
from tests.proxy.conftest import Upstream

SLOW_TABLE = """
[[routes]]
name = "users.slow"
methods = ["GET"]
path = "/fault/slow"
context = "users"
mode = "service"
data_owner = "service"
read_timeout = 0.5
"""

FALLBACK_TABLE = """
[[routes]]
name = "users.get_user"
methods = ["GET", "POST"]
path = "/api/users/{user_id}"
context = "users"
mode = "service"
fallback = "{fallback}"
data_owner = "{owner}"

[[routes]]
name = "users.fault"
methods = ["GET"]
path = "/fault/status/{code}"
context = "users"
mode = "service"
fallback = "{fallback}"
data_owner = "{owner}"
"""


def assert_problem(answer: httpx.Response, status: int, request_id: str) -> dict:
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == request_id
    problem: dict = answer.json()
    assert problem["status"] == status
    assert problem["request_id"] == request_id
    assert problem["type"].startswith("urn:strangler:problem:")
    return problem


def test_an_upstream_that_refuses_connections_gives_a_502_problem(
    plane_factory: PlaneFactory, monolith: Upstream, python_proxy: Upstream,
    client: httpx.Client,
) -> None:  # fmt: skip
    plane = plane_factory("", {"monolith": dead_url()}, python_proxy.url)
    answer = client.get(f"{plane.url}/api/users/7", headers={"X-Request-ID": "r-502"})
    problem = assert_problem(answer, 502, "r-502")
    assert "monolith upstream" in problem["detail"]


def test_a_route_read_timeout_from_the_table_gives_a_504_problem(
    plane_factory: PlaneFactory, monolith: Upstream, users: Upstream, python_proxy: Upstream,
    client: httpx.Client,
) -> None:  # fmt: skip
    plane = plane_factory(
        SLOW_TABLE, {"monolith": monolith.url, "users": users.url}, python_proxy.url
    )
    started = time.monotonic()
    answer = client.get(f"{plane.url}/fault/slow", headers={"X-Request-ID": "r-504"})
    elapsed = time.monotonic() - started
    problem = assert_problem(answer, 504, "r-504")
    assert "did not answer in time" in problem["detail"]
    assert elapsed < 5  # the route's 0.5 s, not the default 30 s


def test_a_body_over_the_limit_gets_a_413_problem(
    plane_factory: PlaneFactory, monolith: Upstream, python_proxy: Upstream,
    client: httpx.Client,
) -> None:  # fmt: skip
    plane = plane_factory("", {"monolith": monolith.url}, python_proxy.url, max_body_bytes=1000)
    answer = client.post(f"{plane.url}/x", content=b"x" * 5000, headers={"X-Request-ID": "r-413"})
    assert_problem(answer, 413, "r-413")


def test_a_target_over_the_limit_gets_a_414_problem(
    plane_factory: PlaneFactory, monolith: Upstream, python_proxy: Upstream,
    client: httpx.Client,
) -> None:  # fmt: skip
    plane = plane_factory("", {"monolith": monolith.url}, python_proxy.url)
    answer = client.get(f"{plane.url}/{'a' * 4100}", headers={"X-Request-ID": "r-414"})
    assert_problem(answer, 414, "r-414")


def test_a_header_field_over_the_limit_gets_a_431_problem(
    plane_factory: PlaneFactory, monolith: Upstream, python_proxy: Upstream,
) -> None:  # fmt: skip
    plane = plane_factory("", {"monolith": monolith.url}, python_proxy.url)
    status, answer = raw_request(plane.url, b"/x", b"X-Big: " + b"y" * 9000 + b"\r\n")
    assert status == 431
    assert b"application/problem+json" in answer
    assert b'"status": 431' in body_of(answer)


@pytest.mark.parametrize(
    ("fallback", "owner", "method", "expected"),
    [
        ("monolith", "monolith", "GET", 200),  # safe, monolith owns the data: falls back
        ("monolith", "monolith", "POST", 502),  # never a write
        ("none", "monolith", "GET", 502),  # the route forbids it
        ("monolith", "service", "GET", 502),  # the monolith no longer has the data
    ],
)
def test_a_failed_service_falls_back_to_the_monolith_only_when_allowed(
    plane_factory: PlaneFactory, monolith: Upstream, python_proxy: Upstream,
    client: httpx.Client, fallback: str, owner: str, method: str, expected: int,
) -> None:  # fmt: skip
    table = FALLBACK_TABLE.replace("{fallback}", fallback).replace("{owner}", owner)
    plane = plane_factory(table, {"monolith": monolith.url, "users": dead_url()}, python_proxy.url)
    answer = client.request(
        method, f"{plane.url}/api/users/7", json={} if method == "POST" else None
    )
    assert answer.status_code == expected
    if expected == 200:
        assert answer.json()["answered_by"] == "monolith"
        assert answer.json()["raw_path"] == "/api/users/7"


def test_a_service_5xx_on_a_safe_request_is_answered_by_the_monolith(
    plane_factory: PlaneFactory, monolith: Upstream, users: Upstream, python_proxy: Upstream,
    client: httpx.Client,
) -> None:  # fmt: skip
    table = FALLBACK_TABLE.replace("{fallback}", "monolith").replace("{owner}", "monolith")
    plane = plane_factory(table, {"monolith": monolith.url, "users": users.url}, python_proxy.url)
    answer = client.get(f"{plane.url}/fault/status/503")
    assert answer.json()["answered_by"] == "monolith"


def test_a_service_error_passes_unchanged_where_there_is_no_fallback(
    plane_factory: PlaneFactory, monolith: Upstream, users: Upstream, python_proxy: Upstream,
    client: httpx.Client,
) -> None:  # fmt: skip
    table = FALLBACK_TABLE.replace("{fallback}", "none").replace("{owner}", "service")
    plane = plane_factory(table, {"monolith": monolith.url, "users": users.url}, python_proxy.url)
    answer = client.get(f"{plane.url}/fault/status/503")
    assert answer.status_code == 503
    assert answer.json() == {"answered_by": "users", "status": 503}


def connection_closed_within(base_url: str, first_bytes: bytes, seconds: float) -> bool:
    """Whether nginx closes a connection that sent `first_bytes` within `seconds`."""
    address = urlsplit(base_url)
    assert address.hostname is not None and address.port is not None
    with socket.create_connection((address.hostname, address.port), timeout=seconds + 5) as sock:
        if first_bytes:
            sock.sendall(first_bytes)
        started = time.monotonic()
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:  # nginx resets a connection it timed out
                chunk = b""
            if not chunk:
                return time.monotonic() - started < seconds + 1.5
            if time.monotonic() - started > seconds + 3:
                return False


def test_a_client_that_sends_its_head_too_slowly_is_cut_off(
    plane_factory: PlaneFactory, monolith: Upstream, python_proxy: Upstream,
) -> None:  # fmt: skip
    plane = plane_factory("", {"monolith": monolith.url}, python_proxy.url, header_timeout=1)
    assert connection_closed_within(plane.url, b"GET / HTTP/1.1\r\nHost: x\r\n", 1)


def test_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout(
    plane_factory: PlaneFactory, monolith: Upstream, python_proxy: Upstream,
) -> None:  # fmt: skip
    plane = plane_factory("", {"monolith": monolith.url}, python_proxy.url, idle_timeout=1)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    assert connection_closed_within(plane.url, request, 1)


def test_an_upstream_dying_mid_response_aborts_the_client_connection(
    plane_factory: PlaneFactory, monolith: Upstream, python_proxy: Upstream,
    client: httpx.Client,
) -> None:  # fmt: skip
    plane = plane_factory("", {"monolith": monolith.url}, python_proxy.url)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{plane.url}/fault/reset")  # never a truncated body ended cleanly
    assert client.get(f"{plane.url}/api/users/1").json()["answered_by"] == "monolith"


def test_a_route_under_migration_is_never_served_directly_when_the_python_proxy_is_down(
    plane_factory: PlaneFactory, monolith: Upstream, users: Upstream, client: httpx.Client,
) -> None:  # fmt: skip
    table = FALLBACK_TABLE.replace("{fallback}", "monolith").replace("{owner}", "monolith")
    upstreams = {"monolith": monolith.url, "users": users.url}
    plane = plane_factory(table, upstreams, dead_url(), migrating=("users",))
    answer = client.get(f"{plane.url}/api/users/7", headers={"X-Request-ID": "r-moving"})
    problem = assert_problem(answer, 502, "r-moving")
    assert "python-proxy upstream" in problem["detail"]
