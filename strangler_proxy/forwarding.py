"""Moving bytes between the client and one upstream over pooled keep-alive connections.

The forwarding client is the small one of `upstream_pool` / `upstream_connection`: measured by
loadtests/bench_proxy.py, an aiohttp session cost about as much CPU per request as the whole
rest of the proxy, and a default httpx client is several times slower still (docs/proxy.md,
"Performance"). The aiohttp session remains for shadow copies, off the hot path. Request
bodies are read up to the body limit (small or safe ones whole, others streamed); responses are
relayed in two phases: `open_response` may still fail over to another upstream, `relay` streams
and can only abort. This module must never choose the upstream nor interpret the route table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from strangler.plumbing.errors import PROBLEM_CONTENT_TYPE
from strangler_proxy.headers import rewrite_response_headers
from strangler_proxy.responses import is_json, problem_in_place_of
from strangler_proxy.upstream_connection import UpstreamConnection
from strangler_proxy.upstream_pool import (
    ConnectFailed,
    Origin,
    UpstreamError,
    UpstreamPool,
    UpstreamTimeout,
    exchange,
)

SMALL_BODY_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
_SKIP_AUTO_HEADERS = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyTooLarge(Exception):
    """The client's body passed the limit; the proxy answers 413."""


class ClientGone(Exception):
    """The client disconnected while sending its body."""


class UpstreamFailed(Exception):
    """An upstream could not give an answer; `status` is what the client should get."""

    def __init__(self, reason: str, status: int, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.status = status
        self.detail = detail


class UpstreamBroke(Exception):
    """The upstream failed after the response had started: the client connection is aborted."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing more than `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class BodyStream:
    """The request body as it arrives, stopping once past `limit` bytes.

    `declared_length` is the client's `Content-Length` (None: chunked); the reason the upload
    stopped is also kept in `failure`.
    """

    def __init__(self, receive: Receive, limit: int, declared_length: int | None = None) -> None:
        self._receive = receive
        self._limit = limit
        self.declared_length = declared_length
        self.failure: BodyTooLarge | ClientGone | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.failure = ClientGone()
                raise self.failure
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                self.failure = BodyTooLarge()
                raise self.failure
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return


def classify(error: UpstreamError) -> UpstreamFailed:
    """Map a failure before the response started to the client's status."""
    if isinstance(error, ConnectFailed):
        return UpstreamFailed("refused", 502, "the upstream refused the connection")
    if isinstance(error, UpstreamTimeout):
        return UpstreamFailed("timeout", 504, "the upstream did not answer in time")
    return UpstreamFailed("broken", 502, "the upstream closed the connection without an answer")


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed to connect, and between two arrivals of response bytes."""

    connect: float
    read: float


def origin_of(base_url: str) -> tuple[Origin, str]:
    """The origin of an upstream URL and the path prefix to put before every target."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) upstream URL: {base_url!r}")
    is_tls = parts.scheme == "https"
    port = parts.port or (443 if is_tls else 80)
    return Origin(parts.hostname, port, parts.netloc, is_tls), parts.path.rstrip("/")


def request_head(
    method: str, target: str, headers: list[tuple[str, str]], origin: Origin, framing: str
) -> bytes:
    """The request line and headers; `framing` is the body's own header line, or ""."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    has_host = False
    for name, value in headers:
        if name == "content-length":
            continue  # the proxy frames the body it actually sends
        has_host = has_host or name == "host"
        lines.append(f"{name}: {value}\r\n")
    if not has_host:
        lines.append(f"host: {origin.host_header}\r\n")
    lines.append(framing)
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


class ErrorPagesAsProblems:
    """What every response held whole shares: the contract's problem+json in place of an
    upstream's error page (a mixin for classes with status, headers, body and content_type)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes | None
    content_type: str

    def replace_error_page(self, upstream: str, request_id: str) -> None:
        """Put the contract's problem+json in place of an error page that was read whole.

        The contract allows no HTML or text error body, whoever answered (gunicorn's HTML 414,
        uvicorn's plain-text 500); a JSON body is the upstream's own word and passes as it
        is, and a streamed body, already too large to hold, is left alone.
        """
        if self.body is None or is_json(self.content_type):
            return
        detail = f"the {upstream} upstream answered {self.status} without a problem document"
        self.headers, self.body = problem_in_place_of(self.status, self.headers, detail, request_id)
        self.content_type = PROBLEM_CONTENT_TYPE


@dataclass
class OpenedResponse(ErrorPagesAsProblems):
    """An upstream response whose head (and, when small, whole body) has arrived."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes | None  # None: still to be streamed
    content_type: str
    read_timeout: float
    _pool: UpstreamPool
    _origin: Origin
    _connection: UpstreamConnection

    async def read_chunk(self) -> bytes:
        return await self._connection.read_chunk(self.read_timeout)

    def release(self) -> None:
        """The response was read whole: the connection may serve another request."""
        self._pool.release(self._origin, self._connection)

    def close(self) -> None:
        """Drop the connection (the response is abandoned or broken)."""
        self._connection.close()
        self._pool.release(self._origin, self._connection)


class UpstreamResponse(Protocol):
    """What forwarding hands the proxy: an upstream response whose head has arrived."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes | None  # the whole body when small; None: still to be read (`read_chunk`)
    content_type: str

    async def read_chunk(self) -> bytes: ...

    def replace_error_page(self, upstream: str, request_id: str) -> None: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


class Forwarding(Protocol):
    """The proxy's way to its upstreams (`Forwarder` over sockets; an in-memory fake in the
    logic tests)."""

    async def start(self, trace_configs: list[aiohttp.TraceConfig] | None = None) -> None: ...

    async def close(self) -> None: ...

    @property
    def session(self) -> aiohttp.ClientSession: ...

    def timeout(self, connect: float, read: float) -> Timeouts: ...

    async def open_response(
        self,
        method: str,
        base_url: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | BodyStream | None,
        timeout: Timeouts,
        request_id: str,
    ) -> UpstreamResponse: ...


class Forwarder:
    """Owns the connection pools; one per proxy process, opened in the lifespan.

    Forwarding uses the small keep-alive client of `upstream_pool`; the aiohttp `session` stays
    for the shadow path, which compares answers off the hot path.
    """

    def __init__(self, pool_limit: int, pool_limit_per_upstream: int, keepalive: float) -> None:
        self._pool_limit = pool_limit
        self._per_upstream = pool_limit_per_upstream
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None
        self._pool: UpstreamPool | None = None
        self._origins: dict[str, tuple[Origin, str]] = {}
        self._timeouts: dict[tuple[float, float], Timeouts] = {}

    async def start(self, trace_configs: list[aiohttp.TraceConfig] | None = None) -> None:
        """Open the pools; `trace_configs` trace the shadow session's requests."""
        connector = aiohttp.TCPConnector(
            limit=self._pool_limit,
            limit_per_host=self._per_upstream,
            keepalive_timeout=self._keepalive,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            trace_configs=trace_configs or None,
        )
        self._pool = UpstreamPool(self._pool_limit, self._per_upstream, self._keepalive)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the forwarder is not started (the app's lifespan did not run)")
        return self._session

    @property
    def pool(self) -> UpstreamPool:
        if self._pool is None:
            raise RuntimeError("the forwarder is not started (the app's lifespan did not run)")
        return self._pool

    def timeout(self, connect: float, read: float) -> Timeouts:
        found = self._timeouts.get((connect, read))
        if found is None:
            found = self._timeouts[(connect, read)] = Timeouts(connect, read)
        return found

    def _origin(self, base_url: str) -> tuple[Origin, str]:
        found = self._origins.get(base_url)
        if found is None:
            found = self._origins[base_url] = origin_of(base_url)
        return found

    async def open_response(
        self,
        method: str,
        base_url: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | BodyStream | None,
        timeout: Timeouts,
        request_id: str,
    ) -> OpenedResponse:
        """Send the request and wait for the response head; raise UpstreamFailed on failure."""
        origin, prefix = self._origin(base_url)
        sent: bytes | AsyncIterator[bytes] | None
        if isinstance(body, BodyStream):
            sent, length = body.__aiter__(), body.declared_length
            framing = "transfer-encoding: chunked\r\n" if length is None else ""
            framing = framing or f"content-length: {length}\r\n"
        else:
            sent = body
            framing = "" if body is None else f"content-length: {len(body)}\r\n"
        head = request_head(method, prefix + target, headers, origin, framing)
        pool = self.pool
        try:
            connection, status, raw_headers = await exchange(
                pool, origin, method, head, sent, framing.startswith("transfer"),
                timeout.connect, timeout.read, SMALL_BODY_BYTES,
            )  # fmt: skip
        except UpstreamError as error:
            raise classify(error) from error
        headers_out, length, content_type = rewrite_response_headers(raw_headers, request_id)
        opened = OpenedResponse(
            status, headers_out, None, content_type, timeout.read, pool, origin, connection
        )
        try:
            if method == "HEAD" or status in (204, 304):
                await connection.read_all(timeout.read)
                opened.body = b""
            elif length is not None and length <= SMALL_BODY_BYTES:
                opened.body = await connection.read_all(timeout.read)
        except UpstreamError as error:
            opened.close()
            raise classify(error) from error
        except BaseException:
            opened.close()
            raise
        return opened


async def relay(opened: UpstreamResponse, send: Send, tee_limit: int = 0) -> bytes | None:
    """Send the response to the client; return up to `tee_limit` bytes of it (None if more).

    Raises UpstreamBroke when the upstream dies after the head went out: the only honest thing
    left is to abort the client's connection, never to end a truncated body cleanly.
    """
    try:
        await send(
            {"type": "http.response.start", "status": opened.status, "headers": opened.headers}
        )
        if opened.body is not None:
            await send({"type": "http.response.body", "body": opened.body})
            opened.release()
            return opened.body if len(opened.body) <= tee_limit else None
        kept = await _stream(opened, send, tee_limit)
    except BaseException:
        opened.close()
        raise
    opened.release()
    return kept


async def _stream(opened: UpstreamResponse, send: Send, tee_limit: int) -> bytes | None:
    kept: list[bytes] | None = [] if tee_limit else None
    kept_size = 0
    while True:
        try:
            chunk = await opened.read_chunk()
        except UpstreamError as error:
            reason = type(error).__name__
            raise UpstreamBroke(f"the upstream failed mid-response: {reason}") from error
        if not chunk:
            break
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if kept is not None:
            kept_size += len(chunk)
            if kept_size <= tee_limit:
                kept.append(chunk)
            else:
                kept = None
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    return b"".join(kept) if kept is not None else None
