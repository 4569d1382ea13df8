"""How the proxy is served: uvicorn (uvloop, httptools) with one write per small response, and a
front door that no client can wedge.

uvicorn writes a response's head and its body with two `write` calls. On loopback every write
is a system call that also runs the receiver's side of TCP and wakes the client, so the second
one cost the proxy about a tenth of its throughput (docs/proxy.md, "Performance"). The
protocol here holds each response's head back until the first body write, or until the event
loop's current pass ends, whichever comes first, and sends them together: a head is never
delayed beyond the loop pass that wrote it, so a slow streamed body still gets its head at once.

What a client can do to the connection itself is bounded here, before the app sees a request
(`ConnectionLimits`; docs/proxy.md, "The front door"):
- a request head over `MAX_HEAD_BYTES` is refused as it arrives (414 or 431);
- a head must be complete within the header timeout, counted from the connection's accept for
  its first request and from the head's first byte on a kept-alive one, never restarted by a
  byte: a head still arriving then gets 408, a connection that sent nothing is closed;
- a kept-alive connection idle for the idle timeout is closed (uvicorn's keep-alive timer);
- past the cap on concurrent connections, a new one gets 503 with `Retry-After` at once;
- bytes that are not HTTP/1.x get 400; a request to switch protocols goes to the app as a
  plain request (which refuses it, `limits.py`): the connection never changes protocol.
Each refusal here is problem+json with a new request id and `Connection: close`; what the
client still sends is read and dropped for a short linger before the connection closes, so the
answer is not lost to a reset. Everything else is uvicorn's own protocol. This module must
never interpret a request beyond its framing, its head's size and its timing, nor look inside
a response.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from strangler.plumbing.errors import PROBLEM_CONTENT_TYPE
from strangler_proxy.headers import mint_request_id
from strangler_proxy.responses import problem

# The whole request head (target and header fields). nginx's default allows 32 KiB.
MAX_HEAD_BYTES = 64 * 1024
# After a refusal, what the client still sends is read and dropped this long (at most) before
# the connection closes: closing with unread bytes would reset it and could lose the answer.
LINGER_SECONDS = 2.0

# Above this, the head and the body go out as two buffers of one `writelines` (no copy).
_JOIN_UP_TO = 64 * 1024


@dataclass(frozen=True)
class ConnectionLimits:
    """What one client connection may take: seconds per head and idle, connections at once."""

    header_timeout: float = 60.0  # nginx's client_header_timeout
    idle_timeout: float = 75.0  # nginx's keepalive_timeout
    max_connections: int = 1000
    retry_after_seconds: int = 5  # told to a client refused for the cap


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
    """uvicorn's httptools protocol, writing each response's head together with its body, with
    the front door's limits on heads, time and connections (`ConnectionLimits`)."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    transport: Any
    _head_bytes = 0
    _is_refused = False
    _is_in_head = False  # some bytes of a head have arrived, not yet all of it
    _head_clock: float | None = None  # when the head now awaited started its time
    _head_timer: asyncio.TimerHandle | None = None

    @classmethod
    def limited(cls, limits: ConnectionLimits) -> type[ProxyHttpProtocol]:
        """This protocol with other limits (uvicorn builds protocols from a class)."""
        limited: type[ProxyHttpProtocol] = type(cls.__name__, (cls,), {"limits": limits})
        return limited

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn's own idle timer, with ours (uvicorn types it int; call_later takes a float)
        self.timeout_keep_alive = self.limits.idle_timeout  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)
        if len(self.connections) > self.limits.max_connections:
            self.connections.discard(self)  # a refused connection holds no place
            retry = str(self.limits.retry_after_seconds)
            detail = f"the proxy serves {self.limits.max_connections} connections at most"
            self._refuse(HTTPStatus.SERVICE_UNAVAILABLE, detail, f"retry-after: {retry}\r\n")
            return
        self._start_head_clock(self.loop.time())  # the first head's time runs from the accept

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        # Each request's task starts here; the first thing it writes is its response head.
        self.transport.hold_next()
        super()._start_asgi_task(cycle, app)

    # -- bytes that are not HTTP, and upgrades ---------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._is_refused:
            return  # after a refusal the rest of the request is dropped
        if self._head_clock is None and (self.cycle is None or self.cycle.response_complete):
            # The first byte after an answer starts the next head's time, even a bare CRLF
            # (which the parser skips without beginning a request).
            self._start_head_clock(self.loop.time())
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        self._refuse(HTTPStatus.BAD_REQUEST, "the request is not valid HTTP/1.1")

    def _should_upgrade_to_ws(self) -> bool:
        return False  # the app answers an upgrade request like any other: it refuses it

    def _unsupported_upgrade_warning(self) -> None:
        pass  # not worth a warning per request: the app refuses it and logs it

    # -- the head's time -------------------------------------------------------------------

    def _start_head_clock(self, now: float) -> None:
        self._head_clock = now
        if self._head_timer is None:
            self._head_timer = self.loop.call_at(
                now + self.limits.header_timeout, self._check_head_time
            )

    def _check_head_time(self) -> None:
        """The header timeout may have passed: refuse, close, or look again later.

        One timer per connection, re-armed only when it fires early, so a request costs no
        timer of its own.
        """
        self._head_timer = None
        started = self._head_clock
        if started is None or self._is_refused or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.cycle is not None and not self.cycle.response_complete:
            self._start_head_clock(now)  # a pipelined head waits for the answer before it
            return
        deadline = started + self.limits.header_timeout
        if now < deadline:
            self._head_timer = self.loop.call_at(deadline, self._check_head_time)
        elif self._is_in_head:
            seconds = f"{self.limits.header_timeout:g}"
            detail = f"the request head did not arrive within {seconds} seconds"
            self._refuse(HTTPStatus.REQUEST_TIMEOUT, detail)
        else:
            self.transport.close()  # nothing arrived: nobody to answer

    # -- the head's size -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        self._is_in_head = True
        if self._head_clock is None:  # a kept-alive connection: from the head's first byte
            self._start_head_clock(self.loop.time())
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if self._counts(len(url), HTTPStatus.REQUEST_URI_TOO_LONG):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._counts(len(name) + len(value), HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._is_in_head = False
        self._head_clock = None
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
        self._refuse(status, f"the request head is over {MAX_HEAD_BYTES} bytes")
        return False

    def _refuse(self, status: HTTPStatus, detail: str, extra_headers: str = "") -> None:
        """Answer a problem, drop whatever else arrives, and close after a short linger.

        While an answer is still being written (a pipelined head went wrong) nothing is added
        to it: the connection closes once it is complete.
        """
        self._is_refused = True
        self._unset_keepalive_if_required()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            return
        request_id = mint_request_id()
        body = json.dumps(problem(status.value, detail, request_id)).encode()
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            f"content-type: {PROBLEM_CONTENT_TYPE}\r\ncontent-length: {len(body)}\r\n"
            f"x-request-id: {request_id}\r\n{extra_headers}connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is complete; keep reading (and dropping)
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
