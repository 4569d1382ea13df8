"""Specification: what nginx sends upstream and answers, held to the Python proxy's standards.

Routes at rest go straight to their upstream; routes under migration (a context moving, shadow,
canary) reach the Python proxy with its control headers; forwarding headers are overwritten
unless the peer is trusted; request ids and traces are carried; the log is JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strangler.gateways.nginx_plane import NginxPlane
from tests.gateways.conftest import start_plane
from tests.proxy.conftest import Upstream

TABLE = """
[[routes]]
name = "users.get_user"
methods = ["GET"]
path = "/api/users/{user_id}"
context = "users"
mode = "service"

[[routes]]
name = "users.sign_up"
methods = ["POST"]
path = "/api/users"
context = "users"
mode = "service"

[[routes]]
name = "forum.get_thread"
methods = ["GET"]
path = "/api/threads/{thread_id}"
context = "forum"
mode = "canary"
canary_percent = 10

[[routes]]
name = "polls.get_poll"
methods = ["GET"]
path = "/api/polls/{poll_id}"
context = "polls"
mode = "shadow"

[[routes]]
name = "polls.vote"
methods = ["POST"]
path = "/api/polls/{poll_id}/votes"
context = "polls"
mode = "monolith"

[[routes]]
name = "search.search"
methods = ["GET"]
path = "/api/search"
context = "search"
mode = "monolith"
"""
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRUSTED = "127.0.0.0/8"


@pytest.fixture(scope="module")
def plane(
    module_dir: Path, nginx_binary: str, monolith: Upstream, users: Upstream,
    python_proxy: Upstream,
) -> Iterator[NginxPlane]:  # fmt: skip
    upstreams = {
        "monolith": monolith.url, "users": users.url,
        "forum": users.url, "polls": users.url, "search": users.url,
    }  # fmt: skip
    running = start_plane(
        module_dir / "forwarding", nginx_binary, TABLE, upstreams, python_proxy.url,
        migrating=("polls",),
    )  # fmt: skip
    yield running
    running.stop()


def answered_by(plane: NginxPlane, client: httpx.Client, method: str, path: str) -> str:
    answer = client.request(method, plane.url + path, json={} if method == "POST" else None)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["answered_by"])


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/api/users/7", "users"),  # service, at rest
        ("POST", "/api/users", "users"),
        ("GET", "/api/search", "monolith"),  # monolith, at rest
        ("GET", "/api/threads/3", "python-proxy"),  # canary
        ("HEAD", "/api/threads/3", "python-proxy"),  # HEAD follows GET
        ("GET", "/api/polls/3", "python-proxy"),  # shadow
        ("POST", "/api/polls/3/votes", "python-proxy"),  # its context is under migration
        ("DELETE", "/api/users/7", "monolith"),  # no route for this method: unmatched
        ("GET", "/api/nothing/here", "monolith"),
        ("GET", "/_admin/routes", "python-proxy"),  # the Python proxy's own paths
        ("GET", "/metrics", "python-proxy"),
    ],
)
def test_each_request_is_served_by_the_side_the_table_and_migration_say(
    plane: NginxPlane, client: httpx.Client, method: str, path: str, expected: str
) -> None:
    if method == "HEAD":
        answer = client.head(plane.url + path)
        assert answer.status_code == 200
        return
    assert answered_by(plane, client, method, path) == expected


def test_nginx_answers_its_own_healthz(plane: NginxPlane, client: httpx.Client) -> None:
    answer = client.get(f"{plane.url}/healthz")
    assert answer.json() == {"status": "ok"}


def test_healthz_allows_only_get_and_head(plane: NginxPlane, client: httpx.Client) -> None:
    answer = client.post(f"{plane.url}/healthz", headers={"X-Request-ID": "h-405"})
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == "h-405"
    assert answer.json()["request_id"] == "h-405"


def echoed_headers(plane: NginxPlane, client: httpx.Client, path: str, **headers: str) -> dict:
    answer = client.get(plane.url + path, headers=headers)
    assert answer.status_code == 200
    found: dict[str, str] = answer.json()["headers"]
    return found


def test_forwarded_headers_from_an_untrusted_client_are_replaced(
    plane: NginxPlane, client: httpx.Client
) -> None:
    seen = echoed_headers(
        plane, client, "/api/users/7",
        **{"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https",
           "X-Forwarded-Host": "evil.example", "Forwarded": "for=6.6.6.6",
           "X-Real-IP": "6.6.6.6"},
    )  # fmt: skip
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == plane.url.removeprefix("http://")
    assert "forwarded" not in seen


def test_a_trusted_peer_keeps_its_forwarding_chain(
    plane_factory, monolith: Upstream, python_proxy: Upstream, client: httpx.Client
) -> None:
    trusting = plane_factory(
        "", {"monolith": monolith.url}, python_proxy.url, trusted_proxies=[TRUSTED]
    )
    seen = echoed_headers(
        trusting, client, "/anything",
        **{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
           "X-Forwarded-Host": "shop.example"},
    )  # fmt: skip
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["x-real-ip"] == "203.0.113.9"  # the last address no trusted proxy wrote
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-host"] == "shop.example"


def test_proxy_control_headers_reach_the_python_proxy_and_no_other_upstream(
    plane: NginxPlane, client: httpx.Client
) -> None:
    control = {
        "X-Strangler-Force": "service", "X-Strangler-Admin-Token": "t0ken",
        "X-Strangler-Shadow": "1", "Proxy-Authorization": "Basic eA==",
    }  # fmt: skip
    direct = echoed_headers(plane, client, "/api/users/7", **control)
    assert not {"x-strangler-force", "x-strangler-admin-token", "x-strangler-shadow"} & set(direct)
    assert "proxy-authorization" not in direct
    passed = echoed_headers(plane, client, "/api/threads/1", **control)
    assert passed["x-strangler-force"] == "service"
    assert passed["x-strangler-admin-token"] == "t0ken"
    assert "x-strangler-shadow" not in passed


def test_a_sane_request_id_is_passed_on_and_returned(
    plane: NginxPlane, client: httpx.Client
) -> None:
    answer = client.get(f"{plane.url}/api/users/7", headers={"X-Request-ID": "abc-123.x:y"})
    assert answer.json()["headers"]["x-request-id"] == "abc-123.x:y"
    assert answer.headers["x-request-id"] == "abc-123.x:y"


@pytest.mark.parametrize("supplied", [None, "has spaces", "x" * 129, 'quote"d'])
def test_a_missing_or_insane_request_id_is_replaced_by_a_new_one(
    plane: NginxPlane, client: httpx.Client, supplied: str | None
) -> None:
    headers = {"X-Request-ID": supplied} if supplied is not None else {}
    first = client.get(f"{plane.url}/api/search", headers=headers)
    second = client.get(f"{plane.url}/api/search", headers=headers)
    minted = first.json()["headers"]["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", minted)
    assert first.headers["x-request-id"] == minted
    assert second.json()["headers"]["x-request-id"] != minted


def test_an_incoming_trace_is_continued_with_a_new_span(
    plane: NginxPlane, client: httpx.Client
) -> None:
    incoming = f"00-{TRACE}-00f067aa0ba902b7-01"
    seen = echoed_headers(
        plane, client, "/api/users/7", traceparent=incoming, tracestate="vendor=1"
    )
    version, trace, span, flags = seen["traceparent"].split("-")
    assert (version, trace, flags) == ("00", TRACE, "01")
    assert re.fullmatch(r"[0-9a-f]{16}", span) and span != "00f067aa0ba902b7"
    assert seen["tracestate"] == "vendor=1"


@pytest.mark.parametrize(
    "incoming",
    [None, "garbage", f"00-{'0' * 32}-00f067aa0ba902b7-01", f"00-{TRACE}-{'0' * 16}-01"],
)
def test_a_trace_is_started_when_no_valid_one_arrives(
    plane: NginxPlane, client: httpx.Client, incoming: str | None
) -> None:
    headers = {"traceparent": incoming, "tracestate": "orphan=1"} if incoming else {}
    seen = echoed_headers(plane, client, "/api/users/7", **headers)
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", seen["traceparent"])
    assert TRACE not in seen["traceparent"]
    if incoming is None:
        assert "tracestate" not in seen


def test_the_upstream_sees_the_client_host(plane: NginxPlane, client: httpx.Client) -> None:
    seen = echoed_headers(plane, client, "/api/users/7", Host="forum.example:8443")
    assert seen["host"] == "forum.example:8443"


def test_every_request_is_one_json_line_in_the_access_log(
    plane: NginxPlane, client: httpx.Client
) -> None:
    client.get(f"{plane.url}/api/users/9", headers={"X-Request-ID": "logged-once-1"})
    client.get(f"{plane.url}/api/users%2F9", headers={"X-Request-ID": "logged-once-2"})
    plane.stop()  # flushes and closes the log (the module's later tests do not need the plane)
    lines = [json.loads(line) for line in (plane.folder / "access.log").read_text().splitlines()]
    served = next(line for line in lines if line["request_id"] == "logged-once-1")
    refused = next(line for line in lines if line["request_id"] == "logged-once-2")
    assert served["route"] == "users.get_user"
    assert served["target"] == "users"
    assert served["status"] == 200
    assert served["path"] == "/api/users/9"
    assert isinstance(served["duration_ms"], int)
    assert refused["status"] == 400


def test_large_request_and_response_bodies_pass_whole(
    plane_factory, monolith: Upstream, python_proxy: Upstream, client: httpx.Client
) -> None:  # type: ignore[no-untyped-def]
    plane = plane_factory("", {"monolith": monolith.url}, python_proxy.url)
    sent = client.post(f"{plane.url}/upload", content=b"x" * 900_000)
    assert sent.json()["body_size"] == 900_000
    streamed = client.get(f"{plane.url}/stream", params={"chunks": 40})
    assert len(streamed.content) == 40 * 65536
