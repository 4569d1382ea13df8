"""How the proxy is served: uvicorn (uvloop, httptools) with one write per small response and a
bounded request head.

uvicorn writes a response's head and its body with two `write` calls. On loopback every write
is a system call that also runs the receiver's side of TCP and wakes the client, so the second
one cost the proxy about a tenth of its throughput (docs/proxy.md, "Performance"). The
protocol here holds each response's head back until the first body write, or until the event
loop's current pass ends, whichever comes first, and sends them together: a head is never
delayed beyond the loop pass that wrote it, so a slow streamed body still gets its head at once.
uvicorn's httptools protocol also buffers a request head of any size before the app sees it;
here a head over `MAX_HEAD_BYTES` is refused as it arrives (414 or 431, problem+json, then the
connection is closed after a short linger), so the app's own limits (`limits.py`) only ever
see bounded heads.
Everything else is uvicorn's own protocol. This module must never interpret a request beyond
counting its head's bytes, nor look inside a response.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from strangler.plumbing.errors import PROBLEM_CONTENT_TYPE
from strangler_proxy.headers import mint_request_id
from strangler_proxy.responses import problem

# The whole request head (target and header fields). nginx's default allows 32 KiB.
MAX_HEAD_BYTES = 64 * 1024
# After refusing a head, what the client still sends is read and dropped this long before the
# connection closes: closing with unread bytes would reset it and could lose the answer.
LINGER_SECONDS = 2.0

# Above this, the head and the body go out as two buffers of one `writelines` (no copy).
_JOIN_UP_TO = 64 * 1024


class CoalescingTransport:
    """A client transport whose next write after `hold_next()` waits for the one after it.

    The held bytes go out with the following write, or on their own once the loop's current
    pass is over; `close` and `write_eof` send them first, `abort` drops them. Every other
    attribute is the wrapped transport's.
    """

    __slots__ = ("_held", "_holds_next", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._holds_next = False

    def hold_next(self) -> None:
        """Hold the next write (a response head) until the write after it or the pass's end."""
        self._holds_next = True

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) <= _JOIN_UP_TO:
                self._transport.write(held + data)
            else:
                self._transport.writelines((held, data))
            return
        if self._holds_next:
            self._holds_next = False
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        """Send held bytes now (nothing happens when there are none)."""
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class ProxyHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each response's head together with its body and
    refusing a request head over `MAX_HEAD_BYTES` before it is buffered whole."""

    transport: Any
    _head_bytes = 0
    _is_refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        # Each request's task starts here; the first thing it writes is its response head.
        self.transport.hold_next()
        super()._start_asgi_task(cycle, app)

    # -- the head's size -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not self._is_refused:  # after a refusal the rest of the request is dropped
            super().data_received(data)

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if self._counts(len(url), HTTPStatus.REQUEST_URI_TOO_LONG):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._counts(len(name) + len(value), HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if not self._is_refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._is_refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._is_refused:
            super().on_message_complete()

    def _counts(self, size: int, status: HTTPStatus) -> bool:
        """Count `size` more bytes of the head; False once the head is refused."""
        if self._is_refused:
            return False
        self._head_bytes += size
        if self._head_bytes <= MAX_HEAD_BYTES:
            return True
        self._is_refused = True
        request_id = mint_request_id()
        detail = f"the request head is over {MAX_HEAD_BYTES} bytes"
        body = json.dumps(problem(status.value, detail, request_id)).encode()
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            f"content-type: {PROBLEM_CONTENT_TYPE}\r\ncontent-length: {len(body)}\r\n"
            f"x-request-id: {request_id}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.write_eof()  # the answer is complete; keep reading (and dropping) a while
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
        return False
