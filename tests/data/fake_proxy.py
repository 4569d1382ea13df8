"""An in-memory stand-in for the proxy's admin API, for data-path tests without HTTP traffic.

`FakeProxy` keeps what the data path asks of the proxy (who owns each context's data, the
freezes and their leases: an owner moves only under the live freeze's lease) and is the gate
the tests' writers pass through, as requests pass through the real proxy: `writing(context)`
waits while the context is frozen, holds the write in flight (a freeze waits for writes in
flight to finish, as the proxy's does) and yields the side that owns the data. Its upstreams
answer `/healthz` from a real local HTTP server, since a cutover's preflight asks them over
HTTP.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry

from strangler.datapath.operations import serve_operations
from strangler.runtime.processes import free_port
from strangler_proxy.client import Frozen, ProxyAdminError
from strangler_proxy.table import DataOwner


class FakeProxy:
    """The admin calls a cutover makes, and a write gate for the tests' writers."""

    def __init__(self, context: str) -> None:
        self.context = context
        self.owner = DataOwner.MONOLITH
        self._changed = threading.Condition()
        self._in_flight = 0
        self._frozen_until: float | None = None
        self._frozen_at = 0.0
        self._lease = ""  # the live freeze's lease: owner moves and thaws must name it
        self.freeze_windows: list[tuple[float, float]] = []
        port = free_port()
        self._health = serve_operations("127.0.0.1", port, CollectorRegistry(), lambda: True)
        self.health_url = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        self._health.shutdown()

    # What the writers do -------------------------------------------------------------------

    @contextmanager
    def writing(self, timeout: float = 60.0) -> Iterator[DataOwner]:
        """Wait out a freeze, then hold one write in flight; yields who owns the data."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._is_frozen():
                if not self._changed.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise TimeoutError("a write waited for a thaw too long")
            self._in_flight += 1
            owner = self.owner
        try:
            yield owner
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def _is_frozen(self) -> bool:
        return self._frozen_until is not None and time.monotonic() < self._frozen_until

    def _holds(self, lease: str) -> bool:
        """`lease` is the live freeze's (the caller holds the condition)."""
        return self._is_frozen() and lease == self._lease

    # The admin API the data path calls -----------------------------------------------------

    def routes_of(self, context: str) -> list[dict[str, Any]]:
        return [{"name": context, "context": context}] if context == self.context else []

    def upstream_url(self, name: str) -> str | None:
        return self.health_url

    def owner_of(self, context: str) -> DataOwner | None:
        return self.owner

    def move(self, context: str, owner: DataOwner, reason: str, lease: str | None = None) -> int:
        with self._changed:
            if lease is not None and not self._holds(lease):
                raise ProxyAdminError(f"{context}: the lease {lease!r} holds no freeze")
            self.owner = owner
        return 1

    def freeze(
        self, context: str, max_seconds: float, reason: str, lease_seconds: float | None = None
    ) -> Frozen:
        started = time.monotonic()
        with self._changed:
            if self._is_frozen():
                raise ProxyAdminError(f"{context} is already frozen")
            self._frozen_until = started + max_seconds
            self._frozen_at = time.time()
            self._lease = uuid.uuid4().hex
            while self._in_flight:
                self._changed.wait(timeout=0.05)
        seconds = lease_seconds or max_seconds
        return Frozen(context, max_seconds, 0, time.monotonic() - started, self._lease, seconds)

    def renew(self, context: str, lease: str) -> float:
        with self._changed:
            if not self._holds(lease):
                raise ProxyAdminError(f"{context}: the lease {lease!r} holds no freeze")
            assert self._frozen_until is not None
            return self._frozen_until - time.monotonic()

    def thaw(self, context: str, reason: str, lease: str | None = None) -> float | None:
        with self._changed:
            if self._frozen_until is None or (lease is not None and lease != self._lease):
                return None
            self._frozen_until = None
            self.freeze_windows.append((self._frozen_at, time.time()))
            self._changed.notify_all()
        return self.freeze_windows[-1][1] - self.freeze_windows[-1][0]

    def freezes(self) -> list[dict[str, Any]]:
        with self._changed:
            if not self._is_frozen():
                return []
            assert self._frozen_until is not None
            left = self._frozen_until - time.monotonic()
        return [{"context": self.context, "thaws_in_seconds": left}]
