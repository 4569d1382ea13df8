"""Specification of the proxy's front door: heads too large to forward or without one `Host`,
requests to switch protocols, and upstream error pages.

The proxy answers the public port at every stage, so whatever it cannot or will not forward it
refuses itself, in the contract's problem+json with the request id; and an upstream's error
page (HTML, plain text) reaches the client as a problem too. Through a real proxy process in
front of a real upstream process.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.proxy.conftest import RunningProxy, Upstream, start_proxy
from tests.proxy.raw_http import connect, is_closed_by_peer, read_answer
from tests.proxy.raw_http import get as raw_get

REQUEST_ID = "front-door-test-1"


@pytest.fixture(scope="module")
def proxy(module_dir: Path, monolith: Upstream) -> Iterator[RunningProxy]:
    running = start_proxy(module_dir, "", {"monolith": monolith.url})
    yield running
    running.process.stop()


def assert_problem(answer: httpx.Response, status: int, slug: str) -> None:
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == REQUEST_ID
    problem = answer.json()
    assert problem["type"] == f"urn:strangler:problem:{slug}"
    assert problem["status"] == status and problem["request_id"] == REQUEST_ID
    assert "answered_by" not in problem  # the upstream never saw it


def get(proxy: RunningProxy, client: httpx.Client, target: str, **headers: str) -> httpx.Response:
    return client.get(f"{proxy.url}{target}", headers={"X-Request-ID": REQUEST_ID, **headers})


def test_a_target_within_the_limit_is_forwarded(proxy: RunningProxy, client: httpx.Client) -> None:
    target = "/api/search?q=" + "a" * (4000 - len("/api/search?q="))
    answer = get(proxy, client, target)
    assert answer.status_code == 200
    assert answer.json()["raw_path"] == target


def test_an_over_long_request_target_is_a_414_problem(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    answer = get(proxy, client, "/api/search?q=" + "a" * 4000)
    assert_problem(answer, 414, "uri-too-long")
    assert "4014 bytes" in answer.json()["detail"]


def test_a_target_that_normalising_makes_too_long_is_a_414_problem(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    # 1,501 bytes as sent; each `"` is forwarded as `%22`, 4,501 bytes in all.
    answer = get(proxy, client, "/" + '"' * 1500)
    assert_problem(answer, 414, "uri-too-long")


def test_too_many_header_fields_is_a_431_problem(proxy: RunningProxy, client: httpx.Client) -> None:
    many = {f"X-Field-{index}": "v" for index in range(95)}
    assert_problem(
        get(proxy, client, "/api/threads", **many), 431, "request-header-fields-too-large"
    )


def test_an_over_long_header_field_is_a_431_problem(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    answer = get(proxy, client, "/api/threads", **{"X-Large": "b" * 8000})
    assert_problem(answer, 431, "request-header-fields-too-large")
    assert "x-large" in answer.json()["detail"]


def send_raw_head(proxy: RunningProxy, head: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send a request head as given and read the answer until the proxy closes the connection."""
    address = urlsplit(proxy.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        # The proxy may close before it has read everything; its answer is sent first.
        with contextlib.suppress(OSError):
            connection.sendall(head)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    status_and_headers, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = status_and_headers.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status.encode(), {name.lower(): value for name, value in headers.items()}, body


LONG_TARGET_HEAD = b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
# Ten fields of 7,000 bytes: each within the field limit, 70,000 bytes together.
LARGE_FIELDS_HEAD = (
    b"GET / HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-Field-%d: %s\r\n" % (index, b"c" * 7000) for index in range(10))
    + b"\r\n"
)


@pytest.mark.parametrize(
    ("head", "status", "slug"),
    [
        (LONG_TARGET_HEAD, 414, "uri-too-long"),
        (LARGE_FIELDS_HEAD, 431, "request-header-fields-too-large"),
    ],
    ids=["target", "header-fields"],
)
def test_a_head_over_64_kib_is_refused_before_it_is_buffered_whole(
    proxy: RunningProxy, head: bytes, status: int, slug: str
) -> None:
    status_line, headers, body = send_raw_head(proxy, head)
    assert status_line.startswith(b"HTTP/1.1 %d " % status)
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["type"] == f"urn:strangler:problem:{slug}"
    assert problem["request_id"] == headers["x-request-id"]


def test_an_upstream_html_error_page_reaches_the_client_as_a_problem(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    answer = get(proxy, client, "/fault/page/414")
    assert answer.status_code == 414
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == REQUEST_ID
    assert answer.headers["retry-after"] == "7"  # the upstream's other headers stay
    problem = answer.json()
    assert problem["type"] == "urn:strangler:problem:uri-too-long"
    assert problem["request_id"] == REQUEST_ID
    assert "monolith upstream answered 414" in problem["detail"]
    assert int(answer.headers["content-length"]) == len(answer.content)


def test_an_upstream_json_error_and_a_head_answer_pass_unchanged(
    proxy: RunningProxy, client: httpx.Client
) -> None:
    json_error = get(proxy, client, "/fault/status/404")
    assert json_error.json() == {"answered_by": "monolith", "status": 404}
    head = client.head(f"{proxy.url}/fault/page/503")
    assert head.status_code == 503 and head.headers["content-type"].startswith("text/html")


WEBSOCKET_HANDSHAKE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}
H2C_UPGRADE = {"Upgrade": "h2c", "Connection": "Upgrade, HTTP2-Settings", "HTTP2-Settings": "AA"}


@pytest.mark.parametrize(
    "upgrade", [WEBSOCKET_HANDSHAKE, H2C_UPGRADE, {"Upgrade": "websocket"}],
    ids=["websocket", "h2c", "upgrade-without-connection"],
)  # fmt: skip
def test_a_request_to_switch_protocols_is_refused_with_a_problem_and_its_request_id(
    proxy: RunningProxy, upgrade: dict[str, str]
) -> None:
    with connect(proxy.port) as connection:
        connection.sendall(raw_get("/ws", **upgrade, **{"X-Request-ID": REQUEST_ID}))
        answer = read_answer(connection)
        assert is_closed_by_peer(connection)
    assert answer.status == 403
    assert answer.headers["x-request-id"] == REQUEST_ID
    assert answer.headers["connection"] == "close"
    assert "Upgrade" in answer.problem()["detail"]


@pytest.mark.parametrize(
    ("head", "detail"),
    [
        (b"GET /api/threads HTTP/1.1\r\n\r\n", "needs a Host"),
        (b"GET /api/threads HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", "2 Host"),
        (b"GET /api/threads HTTP/1.1\r\nHost: a.test/evil\r\n\r\n", "does not name a host"),
    ],
    ids=["no-host", "two-hosts", "not-a-host"],
)
def test_an_http_1_1_request_without_exactly_one_host_is_a_400_problem(
    proxy: RunningProxy, head: bytes, detail: str
) -> None:
    with connect(proxy.port) as connection:
        connection.sendall(head)
        answer = read_answer(connection)
        assert is_closed_by_peer(connection)
    assert answer.status == 400
    assert detail in answer.problem()["detail"]


def test_an_http_1_0_request_without_host_is_forwarded(proxy: RunningProxy) -> None:
    with connect(proxy.port) as connection:
        connection.sendall(b"GET /api/threads HTTP/1.0\r\n\r\n")
        answer = read_answer(connection)
    assert answer.status == 200
    assert json.loads(answer.body)["answered_by"] == "monolith"
