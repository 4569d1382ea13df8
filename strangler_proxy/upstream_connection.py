"""One keep-alive HTTP/1.1 connection to an upstream, with responses parsed by httptools.

The forwarding hot path needs only a small part of a general HTTP client: one request at a time
per connection, headers already prepared by `headers.py`, a body given as bytes or as an async
iterator, and a read timeout between arrivals. Doing just that costs a fraction of aiohttp's
CPU per request (docs/proxy.md, "Performance"). Received body bytes are buffered only up to
`HIGH_WATER` before reading from the socket pauses. This module must never interpret headers
beyond HTTP framing, nor decide which upstream to use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import httptools

HIGH_WATER = 256 * 1024


class UpstreamError(Exception):
    """An upstream exchange failed; `reason` is how the proxy reports it."""

    reason = "broken"


class ConnectFailed(UpstreamError):
    """The upstream refused or could not be reached."""

    reason = "refused"


class UpstreamTimeout(UpstreamError):
    """Connecting, or waiting for the next bytes of the response, took too long."""

    reason = "timeout"


class ConnectionBroken(UpstreamError):
    """The connection closed, or the upstream sent something that is not HTTP, mid-exchange."""


class UpstreamConnection(asyncio.Protocol):
    """A socket to one upstream; `exchange` and the read methods drive one response at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.has_received = False  # any byte of the current response arrived
        self._last_arrival = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._is_head_done = False
        self._is_complete = False
        self._skips_body = False
        self._is_eof_delimited = False
        self._keeps_alive = False
        self._whole_body_up_to = 0
        self._holds_for_body = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._is_reading_paused = False
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.has_received = True
        self._last_arrival = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ConnectionBroken(f"the upstream sent an invalid response: {error}"))
            self.close()
            return
        if self._holds_for_body and not self._is_complete:
            return  # the head's waiter also wants the small body that is still coming
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self._is_complete and self._error is None:
            if self._is_eof_delimited and exc is None:
                self._is_complete = True  # a body without length ends with the connection
            else:
                self._fail(ConnectionBroken("the upstream closed the connection"))
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._wake()

    def pause_writing(self) -> None:
        self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # -- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._headers = []  # an interim response (100 Continue): the real one follows
            return
        self._status = status
        self._is_head_done = True
        # Asked now: once the message is complete, the parser forgets what its headers said.
        self._keeps_alive = self._parser.should_keep_alive()
        if self._skips_body:
            self._is_complete = True
            return
        length: bytes | None = None
        has_transfer_encoding = False
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length":
                length = value
            elif lowered == b"transfer-encoding":
                has_transfer_encoding = True
        self._is_eof_delimited = (
            length is None and not has_transfer_encoding and status not in (204, 304)
        )
        # Waking the waiter once for the head and again for a small body that follows it in
        # another segment (gunicorn writes them apart) costs a task step; wait for both.
        self._holds_for_body = (
            length is not None
            and not has_transfer_encoding
            and length.strip().isdigit()
            and int(length) <= self._whole_body_up_to
        )

    def on_body(self, body: bytes) -> None:
        if self._skips_body:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._is_reading_paused and self.transport:
            self._is_reading_paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self._is_head_done:
            self._is_complete = True

    # -- driving one exchange ----------------------------------------------------------------

    @property
    def is_reusable(self) -> bool:
        """Whether this connection may carry another request (complete, alive, keep-alive)."""
        return (
            self._is_complete
            and self._error is None
            and self.transport is not None
            and not self.transport.is_closing()
            and self._keeps_alive
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    def _reset(self, is_head: bool) -> None:
        if self._status or self._is_complete:
            self._parser = httptools.HttpResponseParser(self)
        self._status = 0
        self._headers = []
        self._is_head_done = self._is_complete = self._is_eof_delimited = False
        self._keeps_alive = False
        self._holds_for_body = False
        self._skips_body = is_head
        self.has_received = False

    async def send(
        self, head: bytes, body: bytes | AsyncIterator[bytes] | None, is_chunked: bool
    ) -> None:
        """Write the request; an iterator body is sent as it comes (chunked when told)."""
        self._reset(head.startswith(b"HEAD "))
        transport = self.transport
        if transport is None:
            raise ConnectionBroken("the upstream closed the connection")
        if body is None or isinstance(body, bytes):
            transport.write(head + body if body else head)
            return
        transport.write(head)
        async for chunk in body:
            if not chunk:
                continue
            if self.transport is None:
                break  # the upstream went away; reading the response will report it
            self.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if is_chunked else chunk)
            if self._writable is not None:
                await self._writable
        if is_chunked and self.transport is not None:
            self.transport.write(b"0\r\n\r\n")

    async def read_head(
        self, read_timeout: float, whole_body_up_to: int = 0
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        """The response's status and raw headers, once they have arrived.

        When the head declares a `Content-Length` of at most `whole_body_up_to` bytes, this
        returns only once that body has arrived too (`read_all` then needs no wait).
        """
        self._whole_body_up_to = whole_body_up_to
        while not self._is_head_done or (self._holds_for_body and not self._is_complete):
            await self._wait(read_timeout)
        self._holds_for_body = False
        return self._status, self._headers

    async def read_chunk(self, read_timeout: float) -> bytes:
        """The next piece of the body as it arrived, or b"" once the body is complete."""
        while not self._chunks:
            if self._is_complete:
                return b""
            await self._wait(read_timeout)
        chunk = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks = []
        self._buffered = 0
        if self._is_reading_paused and self.transport is not None:
            self._is_reading_paused = False
            self.transport.resume_reading()
        return chunk

    async def read_all(self, read_timeout: float) -> bytes:
        """The rest of the body, whole (for bodies known to be small)."""
        while not self._is_complete:
            await self._wait(read_timeout)
        body = b"".join(self._chunks)
        self._chunks = []
        self._buffered = 0
        return body

    async def _wait(self, read_timeout: float) -> None:
        if self._error is not None:
            raise self._error
        waiter = self._waiter = self._loop.create_future()
        self._last_arrival = self._loop.time()
        self._timer = self._loop.call_later(read_timeout, self._time_out, waiter, read_timeout)
        try:
            await waiter
        finally:
            self._timer.cancel()
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _time_out(self, waiter: asyncio.Future[None], read_timeout: float) -> None:
        if waiter.done():
            return
        quiet = self._loop.time() - self._last_arrival
        if quiet < read_timeout:  # bytes arrived without waking the waiter: the clock restarts
            self._timer = self._loop.call_later(
                read_timeout - quiet, self._time_out, waiter, read_timeout
            )
            return
        self._fail(UpstreamTimeout("the upstream did not answer in time"))
        self.close()
        waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None:
            self._error = error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
