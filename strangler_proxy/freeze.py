"""Write freezes: a context's writes held at the proxy while its data changes owner.

The proxy sees every write, so it is where a cutover stops them. `freeze(context)` marks the
context frozen and returns once none of its writes is in flight (every write to a routed context
is counted in and out), so the caller knows the owner's database has stopped changing. While
frozen, a write to the context *waits* for the thaw, up to `wait_seconds`, then goes wherever
the table in force says (a cutover thaws with the routes already moved); if the freeze outlasts
the wait it gets 503 problem+json with `Retry-After`. Reads never wait. A freeze is bounded: it
thaws by itself after its maximum, whatever happened to the caller. Every freeze and thaw is
written to the audit log. This module must never route or forward a request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from strangler_proxy.audit import Actor, AuditLog
from strangler_proxy.table import SAFE_METHODS, Route


class AlreadyFrozen(Exception):
    """The context is frozen already; thaw it first."""


class StillWriting(Exception):
    """Writes of the context were still in flight when the drain time ran out (now thawed)."""

    def __init__(self, in_flight: int) -> None:
        super().__init__(f"{in_flight} writes still in flight")
        self.in_flight = in_flight


@dataclass
class Freeze:
    context: str
    actor: str | Actor
    reason: str
    max_seconds: float
    started: float = field(default_factory=time.monotonic)
    started_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds")
    )
    thawed: asyncio.Event = field(default_factory=asyncio.Event)
    expiry: asyncio.TimerHandle | None = None

    def remaining(self) -> float:
        return max(0.0, self.max_seconds - (time.monotonic() - self.started))

    def describe(self) -> dict[str, object]:
        return {
            "context": self.context,
            "actor": str(self.actor),
            "reason": self.reason,
            "started_at": self.started_at.replace("+00:00", "Z"),
            "max_seconds": self.max_seconds,
            "frozen_seconds": round(time.monotonic() - self.started, 6),
            "thaws_in_seconds": round(self.remaining(), 3),
        }


class Freezes:
    """The freezes of one proxy process, and each context's writes in flight."""

    def __init__(
        self,
        audit: AuditLog,
        wait_seconds: float,
        max_seconds: float,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.audit = audit
        self.wait_seconds = wait_seconds
        self.max_seconds = max_seconds
        self._frozen: dict[str, Freeze] = {}
        self._in_flight: dict[str, int] = defaultdict(int)
        self._idle: dict[str, asyncio.Event] = {}
        self.held = Counter(
            "proxy_frozen_writes_total",
            "Writes that met a freeze: waited for the thaw, or refused with 503",
            ["context", "outcome"],
            registry=registry,
        )
        self.active = Gauge(
            "proxy_freeze_active", "1 while a context's writes are frozen", ["context"],
            registry=registry,
        )  # fmt: skip

    # The request path: three cheap calls per request.

    def frozen_context(self, route: Route | None, method: str) -> str | None:
        """The context of this write if that context is frozen now; None otherwise."""
        if not self._frozen or route is None or method in SAFE_METHODS:
            return None
        return route.context if route.context in self._frozen else None

    def enter(self, route: Route | None, method: str) -> str | None:
        """Count a write in flight; returns its context (None for reads and unrouted paths)."""
        if route is None or method in SAFE_METHODS:
            return None
        self._in_flight[route.context] += 1
        return route.context

    def leave(self, context: str) -> None:
        self._in_flight[context] -= 1
        if self._in_flight[context] == 0 and context in self._idle:
            self._idle[context].set()

    async def wait_for_thaw(self, context: str) -> bool:
        """Hold a write until its context thaws; False if still frozen after `wait_seconds`."""
        deadline = time.monotonic() + self.wait_seconds
        while (freeze := self._frozen.get(context)) is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.held.labels(context, "refused").inc()
                return False
            try:
                await asyncio.wait_for(freeze.thawed.wait(), timeout=remaining)
            except TimeoutError:
                continue
        self.held.labels(context, "waited").inc()
        return True

    def retry_after(self, context: str) -> int:
        """Whole seconds a refused client should wait: until the freeze's maximum, at least 1."""
        freeze = self._frozen.get(context)
        return max(1, math.ceil(freeze.remaining())) if freeze else 1

    # The admin side.

    async def freeze(
        self,
        context: str,
        max_seconds: float,
        drain_seconds: float,
        actor: str | Actor,
        reason: str,
    ) -> dict[str, object]:
        """Freeze `context`'s writes; return once none is in flight (or thaw and raise)."""
        if context in self._frozen:
            raise AlreadyFrozen(context)
        max_seconds = min(max_seconds, self.max_seconds)
        freeze = Freeze(context, actor, reason, max_seconds)
        self._frozen[context] = freeze
        freeze.expiry = asyncio.get_running_loop().call_later(
            max_seconds, self._expire, context, freeze
        )
        self.active.labels(context).set(1)
        in_flight = self._in_flight[context]
        self.audit.append(
            actor, "freeze", reason, outcome="applied", context=context,
            max_seconds=max_seconds, in_flight=in_flight,
        )  # fmt: skip
        if in_flight:
            idle = self._idle.setdefault(context, asyncio.Event())
            idle.clear()
            try:
                await asyncio.wait_for(idle.wait(), timeout=drain_seconds)
            except TimeoutError as error:
                left = self._in_flight[context]
                self.thaw(context, actor, f"freeze abandoned: {left} writes still in flight")
                raise StillWriting(left) from error
            finally:
                self._idle.pop(context, None)
        return {
            **freeze.describe(),
            "in_flight_at_freeze": in_flight,
            "drained_seconds": round(time.monotonic() - freeze.started, 6),
        }

    def thaw(self, context: str, actor: str | Actor, reason: str) -> dict[str, object] | None:
        """End the freeze of `context` (None if it was not frozen); writes flow at once."""
        freeze = self._frozen.pop(context, None)
        if freeze is None:
            return None
        if freeze.expiry is not None:
            freeze.expiry.cancel()
        freeze.thawed.set()
        self.active.labels(context).set(0)
        described = freeze.describe()
        self.audit.append(
            actor, "thaw", reason, outcome="applied", context=context,
            frozen_seconds=described["frozen_seconds"],
        )  # fmt: skip
        return described

    def _expire(self, context: str, freeze: Freeze) -> None:
        if self._frozen.get(context) is freeze:
            self.thaw(context, "proxy", f"the freeze reached its maximum of {freeze.max_seconds}s")

    def describe(self) -> dict[str, object]:
        return {
            "frozen": [freeze.describe() for freeze in self._frozen.values()],
            "writes_in_flight": {name: n for name, n in self._in_flight.items() if n},
            "wait_seconds": self.wait_seconds,
            "max_seconds": self.max_seconds,
        }
