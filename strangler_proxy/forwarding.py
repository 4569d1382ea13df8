"""Moving bytes between the client and one upstream over a pooled aiohttp session.

aiohttp is the forwarding client because it keeps the proxy from being the bottleneck on this
machine (see loadtests/bench_proxy.py; a default httpx client is several times slower). Request
bodies are read up to the body limit (small or safe ones whole, others streamed); responses are
relayed in two phases: `open_response` may still fail over to another upstream, `relay` streams
and can only abort. This module must never choose the upstream nor interpret the route table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from strangler_proxy.headers import rewrite_response_headers

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

    aiohttp wraps whatever a body iterator raises in its own errors, so the reason the upload
    stopped is also kept here, for `open_response` to report faithfully.
    """

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
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


def classify(error: BaseException) -> UpstreamFailed:
    """Map an aiohttp failure before the response started to the client's status."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return UpstreamFailed("refused", 502, "the upstream refused the connection")
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return UpstreamFailed("timeout", 504, "the upstream did not answer in time")
    return UpstreamFailed("broken", 502, "the upstream closed the connection without an answer")


@dataclass
class OpenedResponse:
    """An upstream response whose head (and, when small, whole body) has arrived."""

    response: aiohttp.ClientResponse
    headers: list[tuple[bytes, bytes]]
    body: bytes | None  # None: still to be streamed

    @property
    def status(self) -> int:
        return self.response.status


class Forwarder:
    """Owns the connection pool; one per proxy process, opened in the lifespan."""

    def __init__(self, pool_limit: int, pool_limit_per_upstream: int, keepalive: float) -> None:
        self._pool_limit = pool_limit
        self._per_upstream = pool_limit_per_upstream
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}

    async def start(self) -> None:
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
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the forwarder is not started (the app's lifespan did not run)")
        return self._session

    def timeout(self, connect: float, read: float) -> aiohttp.ClientTimeout:
        found = self._timeouts.get((connect, read))
        if found is None:
            found = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
            self._timeouts[(connect, read)] = found
        return found

    async def open_response(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | BodyStream | None,
        timeout: aiohttp.ClientTimeout,
        request_id: str,
    ) -> OpenedResponse:
        """Send the request and wait for the response head; raise UpstreamFailed on failure."""
        try:
            response = await self.session.request(
                method,
                URL(url, encoded=True),
                headers=headers,
                data=body.__aiter__() if isinstance(body, BodyStream) else body,
                allow_redirects=False,
                timeout=timeout,
            )
        except (BodyTooLarge, ClientGone):
            raise
        except (aiohttp.ClientError, TimeoutError) as error:
            if isinstance(body, BodyStream) and body.failure is not None:
                raise body.failure from error
            raise classify(error) from error
        try:
            headers_out = rewrite_response_headers(response.raw_headers, request_id)
            length = response.content_length
            has_no_body = method == "HEAD" or response.status in (204, 304)
            body_now: bytes | None = None
            if has_no_body:
                body_now = b""
            elif length is not None and length <= SMALL_BODY_BYTES:
                body_now = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            response.close()
            raise classify(error) from error
        return OpenedResponse(response, headers_out, body_now)


async def relay(opened: OpenedResponse, send: Send, tee_limit: int = 0) -> bytes | None:
    """Send the response to the client; return up to `tee_limit` bytes of it (None if more).

    Raises UpstreamBroke when the upstream dies after the head went out: the only honest thing
    left is to abort the client's connection, never to end a truncated body cleanly.
    """
    response = opened.response
    await send(
        {"type": "http.response.start", "status": response.status, "headers": opened.headers}
    )
    if opened.body is not None:
        await send({"type": "http.response.body", "body": opened.body})
        response.release()
        return opened.body if len(opened.body) <= tee_limit else None
    kept: list[bytes] | None = [] if tee_limit else None
    kept_size = 0
    try:
        async for chunk in response.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if kept is not None:
                kept_size += len(chunk)
                if kept_size <= tee_limit:
                    kept.append(chunk)
                else:
                    kept = None
    except (aiohttp.ClientError, TimeoutError) as error:
        response.close()
        raise UpstreamBroke(f"the upstream failed mid-response: {type(error).__name__}") from error
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    response.release()
    return b"".join(kept) if kept is not None else None
