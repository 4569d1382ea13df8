"""Specification of forwarding through a real proxy process to real upstream processes."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.proxy.conftest import RunningProxy, Upstream, start_proxy

TABLE = """
[[routes]]
name = "users.get_user"
methods = ["GET"]
path = "/api/users/{id}"
context = "users"
mode = "service"

[[routes]]
name = "users.sign_up"
methods = ["POST"]
path = "/api/users"
context = "users"
mode = "service"
"""


@pytest.fixture(scope="module")
def proxy(module_dir: Path, monolith: Upstream, users: Upstream) -> Iterator[RunningProxy]:
    running = start_proxy(
        module_dir,
        TABLE,
        {"monolith": monolith.url, "users": users.url},
        PROXY_TRUSTED_PROXIES='["10.9.0.0/16"]',
    )
    yield running
    running.process.stop()


def raw_request(proxy: RunningProxy, target: bytes) -> bytes:
    """Send a request line exactly as given (httpx would normalise it) and read the answer."""
    address = urlsplit(proxy.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_unmatched_paths_are_answered_by_the_monolith(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    answer = client.get(f"{proxy.url}/api/threads/3")
    assert answer.json()["answered_by"] == "monolith"


def test_a_table_can_send_unmatched_paths_to_a_service_instead(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    retired = proxy_factory(
        'unmatched = "users"\n' + TABLE, {"monolith": monolith.url, "users": users.url}
    )
    for target in ("/api/threads/3", "/no/such/thing", "/"):
        assert client.get(f"{retired.url}{target}").json()["answered_by"] == "users"


def test_a_service_route_is_answered_by_the_service(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    answer = client.get(f"{proxy.url}/api/users/3?verbose=1")
    assert answer.json()["answered_by"] == "users"
    assert answer.json()["raw_path"] == "/api/users/3?verbose=1"


@pytest.mark.parametrize(
    "target",
    [
        b"/api//users/3",
        b"/api/./users/3",
        b"/api/x/../users/3",
        b"/api/%75sers/3",
        b"/API/USERS/3/",
    ],
)
def test_disguised_service_paths_still_reach_the_service(
    proxy: RunningProxy, target: bytes
) -> None:
    answer = raw_request(proxy, target)
    assert b'"answered_by": "users"' in answer


@pytest.mark.parametrize(
    "target", [b"/api/users%2F3", b"/api/users/3%00", b"/api/users\\3", b"/../api/users/3"]
)
def test_ambiguous_paths_get_a_400_problem(proxy: RunningProxy, target: bytes) -> None:
    answer = raw_request(proxy, target)
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"application/problem+json" in answer
    assert b"answered_by" not in answer


def test_the_upstream_receives_the_canonical_path(proxy: RunningProxy) -> None:
    answer = raw_request(proxy, b"/api//x/../users/%33")
    assert b'"raw_path": "/api/users/3"' in answer


def test_hop_by_hop_and_proxy_control_headers_never_reach_the_upstream(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    answer = client.get(
        f"{proxy.url}/api/threads",
        headers={
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic abc",
            "X-Strangler-Force": "service",
            "X-Strangler-Admin-Token": "guess",
            "X-Kept": "yes",
        },
    )
    seen = answer.json()["headers"]
    for name in ("x-secret-hop", "keep-alive", "te", "proxy-authorization", "x-strangler-force",
                 "x-strangler-admin-token"):  # fmt: skip
        assert name not in seen
    assert seen["x-kept"] == "yes"


def test_forwarded_headers_from_an_untrusted_client_are_replaced(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    answer = client.get(
        f"{proxy.url}/api/threads",
        headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https",
                 "X-Forwarded-Host": "evil.example", "Host": "forum.local"},
    )  # fmt: skip
    seen = answer.json()["headers"]
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == "forum.local"
    assert seen["host"] == "forum.local"


CLAIMED_IDENTITY = {
    "X-Real-IP": "6.6.6.6",
    "X-Client-IP": "6.6.6.6",
    "True-Client-IP": "6.6.6.6",
    "CF-Connecting-IP": "6.6.6.6",
    "Fastly-Client-IP": "6.6.6.6",
    "Forwarded": "for=6.6.6.6;proto=https",
    "X-Forwarded-Port": "443",
    "X-Original-URL": "/_admin/routes",
}


def test_identity_headers_from_an_untrusted_client_are_dropped_or_overwritten(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    answer = client.get(f"{proxy.url}/api/threads", headers=CLAIMED_IDENTITY)
    seen = answer.json()["headers"]
    assert seen["x-real-ip"] == "127.0.0.1"  # the connection's own address
    assert seen["x-forwarded-for"] == "127.0.0.1"
    claimed = {name.lower() for name in CLAIMED_IDENTITY} - {"x-real-ip"}
    assert claimed.isdisjoint(seen), sorted(claimed & set(seen))


def test_identity_headers_from_a_trusted_proxy_are_believed(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, client: httpx.Client
) -> None:
    trusting = proxy_factory("", {"monolith": monolith.url}, PROXY_TRUSTED_PROXIES='["127.0.0.1"]')
    answer = client.get(
        f"{trusting.url}/api/threads",
        headers={**CLAIMED_IDENTITY, "X-Forwarded-For": "203.0.113.7"},
    )
    seen = answer.json()["headers"]
    assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert seen["x-real-ip"] == "203.0.113.7"  # the last address no trusted proxy wrote
    assert seen["true-client-ip"] == "6.6.6.6" and seen["cf-connecting-ip"] == "6.6.6.6"


def test_a_sane_request_id_is_passed_on_and_returned(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    answer = client.get(f"{proxy.url}/api/threads", headers={"X-Request-ID": "abc-123"})
    assert answer.headers["x-request-id"] == "abc-123"
    assert answer.json()["headers"]["x-request-id"] == "abc-123"


def test_a_missing_or_insane_request_id_is_replaced_by_a_new_one(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    answer = client.get(f"{proxy.url}/api/threads", headers={"X-Request-ID": "bad id <script>"})
    minted = answer.headers["x-request-id"]
    assert minted != "bad id <script>" and len(minted) == 32
    assert answer.json()["headers"]["x-request-id"] == minted


def test_an_incoming_trace_is_continued_with_a_new_span(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    answer = client.get(f"{proxy.url}/api/threads", headers={"traceparent": incoming})
    version, trace, span, flags = answer.json()["headers"]["traceparent"].split("-")
    assert (version, trace, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "01")
    assert span != "b7ad6b7169203331"


def test_a_trace_is_started_when_none_arrives(proxy: RunningProxy, client: httpx.Client) -> None:
    answer = client.get(f"{proxy.url}/api/threads", headers={"traceparent": "garbage"})
    version, trace, span, _ = answer.json()["headers"]["traceparent"].split("-")
    assert version == "00" and len(trace) == 32 and len(span) == 16


def test_request_bodies_reach_the_upstream(proxy: RunningProxy, client: httpx.Client) -> None:
    body = b"x" * 300_000
    answer = client.post(f"{proxy.url}/api/users", content=body)
    assert answer.json() == {**answer.json(), "answered_by": "users", "body_size": 300_000}


def test_a_streamed_request_body_reaches_the_upstream(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 50_000

    answer = client.post(f"{proxy.url}/api/threads", content=chunks())
    assert answer.json()["body_size"] == 500_000


def test_a_declared_body_over_one_mebibyte_is_refused_with_413(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    answer = client.post(f"{proxy.url}/api/users", content=b"z" * (1024 * 1024 + 1))
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["request_id"] == answer.headers["x-request-id"]


def test_a_streamed_body_over_one_mebibyte_is_refused_with_413(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b"z" * 65536

    answer = client.post(f"{proxy.url}/api/threads", content=chunks())
    assert answer.status_code == 413


def test_large_responses_stream_through_whole(proxy: RunningProxy, client: httpx.Client) -> None:
    with client.stream("GET", f"{proxy.url}/stream", params={"chunks": 160}) as answer:
        size = sum(len(chunk) for chunk in answer.iter_bytes())
    assert size == 160 * 65536


def test_the_proxy_serves_its_own_health_and_metrics(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    assert client.get(f"{proxy.url}/healthz").json() == {"status": "ok"}
    client.get(f"{proxy.url}/api/users/9")
    metrics = client.get(f"{proxy.url}/metrics").text
    assert (
        'proxy_requests_total{method="GET",route="users.get_user",status="200",target="users"}'
        in metrics
    )
    assert "proxy_request_duration_seconds_bucket" in metrics
    assert "proxy_route_table_version" in metrics
