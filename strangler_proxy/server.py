"""How the proxy is served: uvicorn (uvloop, httptools) with one write per small response.

uvicorn writes a response's head and its body with two `write` calls. On loopback every write
is a system call that also runs the receiver's side of TCP and wakes the client, so the second
one cost the proxy about a tenth of its throughput (docs/proxy.md, "Performance"). The
protocol here holds each response's head back until the first body write, or until the event
loop's current pass ends, whichever comes first, and sends them together: a head is never
delayed beyond the loop pass that wrote it, so a slow streamed body still gets its head at once.
Everything else is uvicorn's own protocol. This module must never look inside a request or a
response: it only decides how bytes already produced are written.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Above this, the head and the body go out as two buffers of one `writelines` (no copy).
_JOIN_UP_TO = 64 * 1024


class CoalescingTransport:
    """A client transport whose next write after `hold_next()` waits for the one after it.

    The held bytes go out with the following write, or on their own once the loop's current
    pass is over; `close` sends them first, `abort` drops them. Every other attribute is the
    wrapped transport's.
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

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class ProxyHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each response's head together with its body."""

    transport: Any

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        # Each request's task starts here; the first thing it writes is its response head.
        self.transport.hold_next()
        super()._start_asgi_task(cycle, app)
