"""Pooled keep-alive connections to the upstreams, and one HTTP exchange over them.

Each upstream (host and port) keeps its idle connections, most recently used first, for at most
`keepalive` seconds; connections in use are limited per upstream and in total. A reused
connection that the upstream had already closed is retried once on a fresh one when the request
can be repeated safely (bytes body, idempotent method, nothing received). This module must never
choose an upstream nor rewrite headers.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from strangler_proxy.upstream_connection import (
    ConnectFailed,
    ConnectionBroken,
    UpstreamConnection,
    UpstreamError,
    UpstreamTimeout,
)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


@dataclass(frozen=True)
class Origin:
    """Where an upstream listens, and the `Host` to send when the client gave none."""

    host: str
    port: int
    host_header: str
    is_tls: bool = False


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class Limit:
    """A counting semaphore whose uncontended `take` costs no `await` (the hot path's case).

    Waiters are served first come, first served; a waiter that is cancelled gives its place on.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        if self.try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # `give` handed its unit over to this waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed over just as the wait was cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class UpstreamPool:
    """Connections to every upstream of one proxy process; opened lazily, closed at shutdown."""

    def __init__(self, limit: int, limit_per_upstream: int, keepalive: float) -> None:
        self._keepalive = keepalive
        self._limit_per_upstream = limit_per_upstream
        self._total = Limit(limit)
        self._per_upstream: dict[tuple[str, int], Limit] = {}
        self._idle: dict[tuple[str, int], list[UpstreamConnection]] = {}
        self._in_use: set[UpstreamConnection] = set()

    async def acquire(
        self, origin: Origin, connect_timeout: float
    ) -> tuple[UpstreamConnection, bool]:
        """A connection to `origin` and whether it was reused; release it when done."""
        key = (origin.host, origin.port)
        gate = self._per_upstream.get(key)
        if gate is None:
            gate = self._per_upstream[key] = Limit(self._limit_per_upstream)
        if not gate.try_take():
            await gate.take()
        try:
            if not self._total.try_take():
                await self._total.take()
        except BaseException:
            gate.give()
            raise
        try:
            connection, is_reused = self._idle_connection(key), True
            if connection is None:
                connection, is_reused = await self._connect(origin, connect_timeout), False
        except BaseException:
            self._total.give()
            gate.give()
            raise
        self._in_use.add(connection)
        return connection, is_reused

    def release(self, origin: Origin, connection: UpstreamConnection) -> None:
        """Give a connection back: kept when it can carry another request, else closed."""
        if connection not in self._in_use:
            return
        self._in_use.discard(connection)
        key = (origin.host, origin.port)
        if connection.is_reusable:
            connection.idle_since = time.monotonic()
            idle = self._idle.setdefault(key, [])
            idle.append(connection)
            if len(idle) > self._limit_per_upstream:
                idle.pop(0).close()
        else:
            connection.close()
        self._total.give()
        self._per_upstream[key].give()

    def _idle_connection(self, key: tuple[str, int]) -> UpstreamConnection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        oldest_allowed = time.monotonic() - self._keepalive
        while idle:
            connection = idle.pop()
            transport = connection.transport
            if (
                transport is not None
                and not transport.is_closing()
                and connection.idle_since >= oldest_allowed
            ):
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin, connect_timeout: float) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: UpstreamConnection(loop),
                    origin.host,
                    origin.port,
                    ssl=_tls_context() if origin.is_tls else None,
                )
        except TimeoutError as error:
            raise UpstreamTimeout("the upstream did not accept the connection in time") from error
        except OSError as error:
            raise ConnectFailed(f"the upstream refused the connection: {error}") from error
        return protocol

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        for connection in list(self._in_use):
            connection.close()


async def exchange(
    pool: UpstreamPool,
    origin: Origin,
    method: str,
    head: bytes,
    body: bytes | AsyncIterator[bytes] | None,
    is_chunked: bool,
    connect_timeout: float,
    read_timeout: float,
    whole_body_up_to: int = 0,
) -> tuple[UpstreamConnection, int, list[tuple[bytes, bytes]]]:
    """Send one request and wait for the response head; the caller then reads and releases.

    A body declared no longer than `whole_body_up_to` bytes has arrived too on return.
    """
    is_repeatable = body is None or isinstance(body, bytes)  # not an iterator: no ABC check
    can_retry = is_repeatable and method in IDEMPOTENT_METHODS
    while True:
        connection, is_reused = await pool.acquire(origin, connect_timeout)
        try:
            await connection.send(head, body, is_chunked)
            status, headers = await connection.read_head(read_timeout, whole_body_up_to)
            return connection, status, headers
        except ConnectionBroken:
            pool.release(origin, connection)
            if not (is_reused and can_retry and not connection.has_received):
                raise
            can_retry = False  # a stale keep-alive connection: once more on a fresh one
        except BaseException:
            connection.close()
            pool.release(origin, connection)
            raise


__all__ = [
    "ConnectFailed",
    "ConnectionBroken",
    "Origin",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamTimeout",
    "exchange",
]
