"""Specification of the proxy's own HTTP/1.1 forwarding client against scripted loopback servers.

Each server is a real socket on a free loopback port that answers every request it reads with
the next scripted reply (raw bytes), so framing corner cases are exact: chunked and EOF-delimited
bodies, HEAD, keep-alive reuse, a stale kept-alive connection, silence, refusal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from strangler.runtime.processes import free_port
from strangler_proxy.forwarding import origin_of, request_head
from strangler_proxy.upstream_pool import (
    ConnectFailed,
    Origin,
    UpstreamPool,
    UpstreamTimeout,
    exchange,
)

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


class ScriptedServer:
    """Answers each request head it reads with the next reply; records what it received."""

    def __init__(self, replies: list[bytes], close_after_reply: bool = False) -> None:
        self.replies = replies
        self.close_after_reply = close_after_reply
        self.received: list[bytes] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        while self.replies:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            body = b""
            if b"transfer-encoding: chunked" in head:
                body = await reader.readuntil(b"0\r\n\r\n")
            elif b"content-length: " in head:
                length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
            self.received.append(head + body)
            reply = self.replies.pop(0)
            if reply:
                writer.write(reply)
                await writer.drain()
            if self.close_after_reply or not reply:
                break
        writer.close()


def run(
    replies: list[bytes],
    scenario: Callable[[UpstreamPool, Origin, ScriptedServer], Awaitable[None]],
    close_after_reply: bool = False,
) -> ScriptedServer:
    server = ScriptedServer(replies, close_after_reply)

    async def main() -> None:
        port = free_port()
        listener = await asyncio.start_server(server.handle, "127.0.0.1", port)
        pool = UpstreamPool(limit=10, limit_per_upstream=5, keepalive=30)
        try:
            origin, _ = origin_of(f"http://127.0.0.1:{port}")
            await scenario(pool, origin, server)
        finally:
            await pool.close()
            listener.close()

    asyncio.run(main())
    return server


def head_for(origin: Origin, method: str = "GET", framing: str = "") -> bytes:
    return request_head(method, "/thing", [("accept", "*/*")], origin, framing)


async def get(pool: UpstreamPool, origin: Origin, method: str = "GET") -> tuple[int, bytes]:
    connection, status, _ = await exchange(
        pool, origin, method, head_for(origin, method), None, False, 1.0, 1.0
    )
    body = await connection.read_all(1.0)
    pool.release(origin, connection)
    return status, body


def test_a_kept_alive_connection_serves_the_next_request() -> None:
    async def scenario(pool: UpstreamPool, origin: Origin, server: ScriptedServer) -> None:
        assert await get(pool, origin) == (200, b"ok")
        assert await get(pool, origin) == (200, b"ok")

    server = run([OK, OK], scenario)
    assert server.connections == 1
    assert server.received[0].startswith(b"GET /thing HTTP/1.1\r\n")
    assert b"host: 127.0.0.1:" in server.received[0]


def test_a_connection_the_upstream_closes_is_not_reused() -> None:
    closing = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"

    async def scenario(pool: UpstreamPool, origin: Origin, server: ScriptedServer) -> None:
        assert await get(pool, origin) == (200, b"ok")
        assert await get(pool, origin) == (200, b"ok")

    server = run([closing, closing], scenario, close_after_reply=True)
    assert server.connections == 2


def test_chunked_and_connection_delimited_bodies_arrive_whole() -> None:
    chunked_head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    chunked = chunked_head + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    until_close = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it"

    async def scenario(pool: UpstreamPool, origin: Origin, server: ScriptedServer) -> None:
        assert await get(pool, origin) == (200, b"abcde")
        assert await get(pool, origin) == (200, b"all of it")

    run([chunked, until_close], scenario)


def test_a_head_response_has_no_body_and_keeps_the_connection() -> None:
    head_reply = b"HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n"

    async def scenario(pool: UpstreamPool, origin: Origin, server: ScriptedServer) -> None:
        assert await get(pool, origin, "HEAD") == (200, b"")
        assert await get(pool, origin) == (200, b"ok")

    server = run([head_reply, OK], scenario)
    assert server.connections == 1


def test_an_interim_100_continue_is_skipped() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + OK

    async def scenario(pool: UpstreamPool, origin: Origin, server: ScriptedServer) -> None:
        assert await get(pool, origin) == (200, b"ok")

    run([interim], scenario)


def test_a_stale_kept_alive_connection_is_retried_once_for_a_safe_request() -> None:
    async def scenario(pool: UpstreamPool, origin: Origin, server: ScriptedServer) -> None:
        assert await get(pool, origin) == (200, b"ok")
        # The upstream drops the idle connection without telling the pool in time.
        server.writers[0].transport.abort()
        assert await get(pool, origin) == (200, b"ok")

    server = run([OK, OK], scenario)
    assert server.connections == 2


def test_a_streamed_request_body_without_length_is_sent_chunked() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    async def scenario(pool: UpstreamPool, origin: Origin, server: ScriptedServer) -> None:
        head = head_for(origin, "POST", "transfer-encoding: chunked\r\n")
        connection, status, _ = await exchange(pool, origin, "POST", head, body(), True, 1, 1)
        assert status == 200 and await connection.read_all(1.0) == b"ok"
        pool.release(origin, connection)

    server = run([OK], scenario)
    assert server.received[0].endswith(b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n")


def test_a_silent_upstream_times_out() -> None:
    async def scenario(pool: UpstreamPool, origin: Origin, server: ScriptedServer) -> None:
        head = head_for(origin)
        connection, status, _ = await exchange(pool, origin, "GET", head, None, False, 1.0, 1.0)
        assert status == 200
        with pytest.raises(UpstreamTimeout):
            await connection.read_all(0.2)
        assert not connection.is_reusable
        pool.release(origin, connection)

    never = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"  # the body never comes
    run([never, OK], scenario)  # a reply still to give keeps the server's socket open


def test_nobody_listening_is_a_refusal() -> None:
    async def main() -> None:
        pool = UpstreamPool(limit=2, limit_per_upstream=1, keepalive=30)
        origin, _ = origin_of(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(ConnectFailed):
            await exchange(pool, origin, "GET", head_for(origin), None, False, 1.0, 1.0)
        # The failed attempt gave its slot back: a second one is refused too, not stuck.
        with pytest.raises(ConnectFailed):
            await exchange(pool, origin, "GET", head_for(origin), None, False, 1.0, 1.0)

    asyncio.run(main())


async def drip(
    pieces: list[tuple[float, bytes]], scenario: Callable[[Origin], Awaitable[None]]
) -> None:
    """Serve one connection that answers its first request with `pieces`, each after its pause."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for pause, piece in pieces:
            await asyncio.sleep(pause)
            writer.write(piece)
            await writer.drain()
        await reader.read()
        writer.close()

    port = free_port()
    listener = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        origin, _ = origin_of(f"http://127.0.0.1:{port}")
        await scenario(origin)
    finally:
        listener.close()


SPLIT_HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"


def test_a_small_body_written_after_its_head_has_arrived_when_the_head_is_returned() -> None:
    async def scenario(origin: Origin) -> None:
        pool = UpstreamPool(limit=10, limit_per_upstream=5, keepalive=30)
        connection, status, _ = await exchange(
            pool, origin, "GET", head_for(origin), None, False, 1.0, 1.0, whole_body_up_to=10
        )
        assert status == 200
        assert await connection.read_all(0) == b"0123456789"  # no wait left: a zero timeout
        pool.release(origin, connection)
        await pool.close()

    asyncio.run(drip([(0, SPLIT_HEAD), (0.05, b"0123456789")], scenario))


def test_a_larger_body_is_left_to_be_read_after_the_head() -> None:
    async def scenario(origin: Origin) -> None:
        pool = UpstreamPool(limit=10, limit_per_upstream=5, keepalive=30)
        connection, status, _ = await exchange(
            pool, origin, "GET", head_for(origin), None, False, 1.0, 1.0, whole_body_up_to=9
        )
        assert status == 200
        with pytest.raises(UpstreamTimeout):
            await connection.read_all(0)
        await pool.close()

    asyncio.run(drip([(0, SPLIT_HEAD), (0.2, b"0123456789")], scenario))


def test_a_small_body_dripping_in_times_out_only_when_a_gap_passes_the_read_timeout() -> None:
    dripping = [(0.0, SPLIT_HEAD)] + [(0.1, str(digit).encode()) for digit in range(10)]

    async def slow_but_steady(origin: Origin) -> None:
        pool = UpstreamPool(limit=10, limit_per_upstream=5, keepalive=30)
        connection, status, _ = await exchange(
            pool, origin, "GET", head_for(origin), None, False, 1.0, 0.4, whole_body_up_to=10
        )
        assert (status, await connection.read_all(0.4)) == (200, b"0123456789")
        await pool.close()

    async def stalled(origin: Origin) -> None:
        pool = UpstreamPool(limit=10, limit_per_upstream=5, keepalive=30)
        with pytest.raises(UpstreamTimeout):
            await exchange(
                pool, origin, "GET", head_for(origin), None, False, 1.0, 0.3, whole_body_up_to=10
            )
        await pool.close()

    asyncio.run(drip(dripping, slow_but_steady))
    asyncio.run(drip([(0.0, SPLIT_HEAD), (0.05, b"01234"), (0.6, b"56789")], stalled))
