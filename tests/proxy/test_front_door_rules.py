"""Specification of the front door's refusals, in process: each branch, fast.

The connection rules run the proxy's protocol on a real event loop against a transport that
records what is written (timeouts of a few hundredths of a second); the head rules are the
pure checks every request passes; the websocket and admin-port ones call the ASGI app. The
same promises are kept end to end in `test_connection_limits.py` and `test_front_door.py`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import httpx
import pytest
from pydantic import SecretStr
from uvicorn.config import Config
from uvicorn.server import ServerState

from strangler_proxy.app import ProxyApp
from strangler_proxy.limits import HeadLimits
from strangler_proxy.server import ConnectionLimits, ProxyHttpProtocol
from strangler_proxy.settings import ProxySettings
from tests.proxy.test_hot_path_parts import RecordingTransport

FAST = ConnectionLimits(header_timeout=0.05, idle_timeout=0.05, max_connections=2)


class SocketLikeTransport(RecordingTransport):
    """A recording transport that can also half-close and pause, as a TCP one can."""

    def can_write_eof(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def nobody(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise AssertionError("the app must not see a refused request")


def open_connection(state: ServerState) -> tuple[ProxyHttpProtocol, SocketLikeTransport]:
    protocol_class = ProxyHttpProtocol.limited(FAST)
    config = Config(nobody, http=protocol_class, ws="none", lifespan="off", log_level="warning")
    protocol = protocol_class(config=config, server_state=state, app_state={})
    transport = SocketLikeTransport()
    protocol.connection_made(transport)
    return protocol, transport


def answer_of(transport: SocketLikeTransport) -> tuple[int, dict[str, Any]]:
    head, _, body = b"".join(transport.writes).partition(b"\r\n\r\n")
    assert head.endswith(b"\r\nconnection: close") and transport.ended
    return int(head.split(b" ")[1]), json.loads(body)


def test_a_head_still_arriving_at_the_header_timeout_gets_a_408() -> None:
    async def scenario() -> None:
        protocol, transport = open_connection(ServerState())
        protocol.data_received(b"GET /api/threads HTTP/1.1\r\nHo")
        await asyncio.sleep(0.02)
        protocol.data_received(b"st: a")  # a byte does not restart the clock
        await asyncio.sleep(0.06)
        status, problem = answer_of(transport)
        assert status == 408 and problem["type"] == "urn:strangler:problem:request-timeout"
        written = len(transport.writes)
        protocol.data_received(b".test\r\n\r\n")  # what follows a refusal is dropped
        assert len(transport.writes) == written

    asyncio.run(scenario())


def test_a_connection_silent_until_the_header_timeout_is_closed_without_an_answer() -> None:
    async def scenario() -> None:
        _, transport = open_connection(ServerState())
        await asyncio.sleep(0.08)
        assert transport.closed and transport.writes == []

    asyncio.run(scenario())


def test_a_connection_past_the_cap_gets_a_503_at_once_and_holds_no_place() -> None:
    async def scenario() -> None:
        state = ServerState()
        admitted = [open_connection(state) for _ in range(FAST.max_connections)]
        _, refused = open_connection(state)
        status, problem = answer_of(refused)
        assert status == 503 and b"retry-after: 5\r\n" in refused.writes[0]
        assert "2 connections at most" in problem["detail"]
        assert len(state.connections) == FAST.max_connections
        assert all(transport.writes == [] for _, transport in admitted)

    asyncio.run(scenario())


def test_bytes_that_are_not_http_get_a_400_problem() -> None:
    async def scenario() -> None:
        protocol, transport = open_connection(ServerState())
        protocol.data_received(b"\x16\x03\x01\x00\xa5\x01\x00 hello\r\n\r\n")
        status, problem = answer_of(transport)
        assert status == 400 and problem["request_id"]

    asyncio.run(scenario())


LIMITS = HeadLimits()


@pytest.mark.parametrize(
    ("headers", "version", "status"),
    [
        ([(b"host", b"forum.test")], "1.1", None),
        ([(b"host", b"127.0.0.1:8000")], "1.1", None),
        ([(b"host", b"[::1]:8000")], "1.1", None),
        ([], "1.0", None),
        ([], "1.1", 400),
        ([(b"host", b"a.test"), (b"host", b"b.test")], "1.1", 400),
        ([(b"host", b"a.test"), (b"host", b"a.test")], "1.0", 400),
        ([(b"host", b"")], "1.1", 400),
        ([(b"host", b"user@a.test")], "1.1", 400),
        ([(b"host", b"a.test/path")], "1.1", 400),
        ([(b"host", b"a.test"), (b"upgrade", b"websocket")], "1.1", 403),
        ([(b"host", b"a.test"), (b"upgrade", b"h2c")], "1.1", 403),
    ],
)
def test_a_head_needs_one_host_and_may_not_ask_to_switch_protocols(
    headers: list[tuple[bytes, bytes]], version: str, status: int | None
) -> None:
    refusal = LIMITS.refusal(b"/api/threads", b"", headers, version)
    if status is None:
        assert refusal is None
    else:
        assert refusal is not None and refusal.status == status and refusal.closes


def test_a_websocket_handshake_gets_the_problem_as_its_denial_response() -> None:
    app = ProxyApp(ProxySettings(_env_file=None))  # type: ignore[call-arg]
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "websocket",
        "path": "/ws",
        "headers": [(b"host", b"a.test"), (b"x-request-id", b"ws-1")],
        "extensions": {"websocket.http.response": {}},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, body = sent
    assert start["type"] == "websocket.http.response.start" and start["status"] == 403
    assert (b"x-request-id", b"ws-1") in start["headers"]
    assert json.loads(body["body"])["request_id"] == "ws-1"


def test_with_an_admin_port_the_public_port_answers_404_under_the_admin_prefix() -> None:
    settings = ProxySettings(_env_file=None, admin_port=9, admin_token=SecretStr("t" * 32))  # type: ignore[call-arg]
    app = ProxyApp(settings)

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        headers = {"Authorization": f"Bearer {'t' * 32}"}
        # httpx types scopes as MutableMapping, the proxy as dict
        public_app, admin_app = cast(Any, app), cast(Any, app.admin_port_app)
        public = httpx.AsyncClient(transport=httpx.ASGITransport(public_app), base_url="http://p")
        admin = httpx.AsyncClient(transport=httpx.ASGITransport(admin_app), base_url="http://a")
        async with public, admin:
            return (
                await public.get("/_admin/breakers", headers=headers),
                await admin.get("/_admin/breakers", headers=headers),
            )

    on_public, on_admin = asyncio.run(scenario())
    assert on_public.status_code == 404
    assert on_public.headers["content-type"] == "application/problem+json"
    assert on_admin.status_code == 200 and on_admin.json() == {"upstreams": {}}
