"""Write freezes: a context's writes held at the proxy while its data changes owner.

The proxy sees every write, so it is where a cutover stops them. `freeze(context)` marks the
context frozen and returns once none of its writes is in flight (every write to a routed context
is counted in and out), so the caller knows the owner's database has stopped changing. While
frozen, a write to the context *waits* for the thaw, up to `wait_seconds`, then goes wherever
the table in force says (a cutover thaws with the routes already moved); if the freeze outlasts
the wait it gets 503 problem+json with `Retry-After`. Reads never wait. A freeze is bounded: it
thaws by itself after its maximum, whatever happened to the caller.

A freeze is a lease: it also ends by itself `lease_seconds` after it began or was last renewed,
so a freeze whose holder died (a killed `strangler extract`) ends within the lease, not at its
maximum. With a migration state (`strangler.state`) each lease is written to the record before
the freeze is reported, and a restarted proxy holds the writes of every lease still live there:
a crash of the proxy never ends a freeze early. Every freeze and thaw is written to the audit
log. This module must never route or forward a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from strangler.state import Lease, MigrationState, StateFile
from strangler_proxy.audit import Actor, AuditLog
from strangler_proxy.table import SAFE_METHODS, Route


class AlreadyFrozen(Exception):
    """The context is frozen already; thaw it first."""


class NoSuchLease(Exception):
    """The context is not frozen under that lease (it ended, or another holds it)."""


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
    lease_seconds: float
    lease: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.monotonic)
    started_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds")
    )
    renewed: float = field(default_factory=time.monotonic)
    thawed: asyncio.Event = field(default_factory=asyncio.Event)
    expiry: asyncio.TimerHandle | None = None

    def remaining(self) -> float:
        """Seconds until it ends by itself: its lease or its maximum, whichever comes first."""
        now = time.monotonic()
        by_maximum = self.max_seconds - (now - self.started)
        by_lease = self.lease_seconds - (now - self.renewed)
        return max(0.0, min(by_maximum, by_lease))

    def describe(self) -> dict[str, object]:
        return {
            "context": self.context,
            "actor": str(self.actor),
            "reason": self.reason,
            "started_at": self.started_at.replace("+00:00", "Z"),
            "max_seconds": self.max_seconds,
            "lease": self.lease,
            "lease_seconds": self.lease_seconds,
            "frozen_seconds": round(time.monotonic() - self.started, 6),
            "thaws_in_seconds": round(self.remaining(), 3),
        }

    def as_lease(self) -> Lease:
        """The freeze as the migration state records it (epoch seconds)."""
        wall, mono = time.time(), time.monotonic()
        return Lease(
            id=self.lease,
            holder=str(self.actor),
            reason=self.reason,
            started_at=wall - (mono - self.started),
            expires_at=wall + self.lease_seconds - (mono - self.renewed),
            max_until=wall + self.max_seconds - (mono - self.started),
            seconds=self.lease_seconds,
        )


class Freezes:
    """The freezes of one proxy process, and each context's writes in flight."""

    def __init__(
        self,
        audit: AuditLog,
        wait_seconds: float,
        max_seconds: float,
        registry: CollectorRegistry | None = None,
        state: StateFile | None = None,
        before_release: Callable[[], object] = lambda: None,
    ) -> None:
        self.audit = audit
        # Run before a freeze ends by itself: writes must flow by the latest recorded routes.
        self.before_release = before_release
        self.wait_seconds = wait_seconds
        self.max_seconds = max_seconds
        self.state = state
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
        self.last_duration = Gauge(
            "proxy_freeze_last_duration_seconds",
            "How long a context's writes were last frozen (its last cutover or rollback)",
            ["context"], registry=registry,
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
        lease_seconds: float | None = None,
    ) -> dict[str, object]:
        """Freeze `context`'s writes under a new lease (recorded before anything else); return
        once none is in flight (or thaw and raise)."""
        if context in self._frozen:
            raise AlreadyFrozen(context)
        max_seconds = min(max_seconds, self.max_seconds)
        lease_seconds = min(lease_seconds or max_seconds, max_seconds)
        freeze = Freeze(context, actor, reason, max_seconds, lease_seconds)
        self._record(context, freeze)  # raises OSError: then nothing is frozen
        self._frozen[context] = freeze
        self._schedule(freeze)
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

    def renew(self, context: str, lease: str) -> dict[str, object]:
        """Extend the lease `lease` of `context` by its length from now (never past its
        maximum); NoSuchLease when that freeze is over."""
        freeze = self._frozen.get(context)
        if freeze is None or freeze.lease != lease:
            raise NoSuchLease(context)
        freeze.renewed = time.monotonic()
        self._record(context, freeze)
        self._schedule(freeze)
        return freeze.describe()

    def thaw(
        self, context: str, actor: str | Actor, reason: str, lease: str | None = None
    ) -> dict[str, object] | None:
        """End the freeze of `context` (None if it was not frozen, or is held under another
        lease than `lease`); writes flow at once."""
        freeze = self._frozen.get(context)
        if freeze is None or (lease is not None and freeze.lease != lease):
            return None
        del self._frozen[context]
        if freeze.expiry is not None:
            freeze.expiry.cancel()
        self._forget(context, freeze.lease)
        freeze.thawed.set()
        self.active.labels(context).set(0)
        described = freeze.describe()
        self.last_duration.labels(context).set(float(str(described["frozen_seconds"])))
        self.audit.append(
            actor, "thaw", reason, outcome="applied", context=context,
            frozen_seconds=described["frozen_seconds"],
        )  # fmt: skip
        return described

    def _schedule(self, freeze: Freeze) -> None:
        if freeze.expiry is not None:
            freeze.expiry.cancel()
        freeze.expiry = asyncio.get_running_loop().call_later(
            freeze.remaining(), self._expire, freeze.context, freeze
        )

    def _expire(self, context: str, freeze: Freeze) -> None:
        if self._frozen.get(context) is not freeze:
            return
        if freeze.remaining() > 0:  # renewed since this timer was set
            self._schedule(freeze)
            return
        self.before_release()
        by_maximum = freeze.max_seconds - (time.monotonic() - freeze.started) <= 0
        why = (
            f"the freeze reached its maximum of {freeze.max_seconds}s"
            if by_maximum
            else f"its lease was not renewed within {freeze.lease_seconds}s (its holder is gone)"
        )
        self.thaw(context, "proxy", why)

    # The migration state: leases survive the proxy.

    def _record(self, context: str, freeze: Freeze) -> None:
        if self.state is None:
            return
        lease = freeze.as_lease()

        def change(state: MigrationState) -> None:
            state.context(context).freeze = lease

        self.state.update(change)

    def _forget(self, context: str, lease: str) -> None:
        if self.state is None:
            return

        def change(state: MigrationState) -> None:
            found = state.contexts.get(context)
            if found is not None and found.freeze is not None and found.freeze.id == lease:
                found.freeze = None

        with contextlib.suppress(OSError):  # the recorded lease ends by itself at its expiry
            self.state.update(change)

    def restore(self) -> list[str]:
        """At start: hold the writes of every context whose lease the state records as live
        (its holder may be renewing it right now), and clear the record of every lease that
        ended while no proxy ran (no timer of ours was left to; the nginx plane sends a
        context with a recorded freeze through this proxy); the contexts frozen again."""
        if self.state is None:
            return []
        restored = []
        wall, mono = time.time(), time.monotonic()
        for context, found in self.state.read().contexts.items():
            lease = found.freeze
            if lease is None:
                continue
            if not lease.is_live(wall):
                self._forget(context, lease.id)
                self.audit.append("proxy", "thaw", "its lease ended while no proxy ran",
                                  outcome="applied", context=context, lease=lease.id)  # fmt: skip
                continue
            freeze = Freeze(
                context,
                lease.holder,
                lease.reason,
                max_seconds=lease.max_until - lease.started_at,
                lease_seconds=lease.seconds,
                lease=lease.id,
                started=mono - (wall - lease.started_at),
                renewed=mono - (wall - (lease.expires_at - lease.seconds)),
            )
            self._frozen[context] = freeze
            self._schedule(freeze)
            self.active.labels(context).set(1)
            self.audit.append("proxy", "freeze", "restored from the migration state",
                              outcome="applied", context=context, lease=lease.id)  # fmt: skip
            restored.append(context)
        return restored

    def describe(self) -> dict[str, object]:
        return {
            "frozen": [freeze.describe() for freeze in self._frozen.values()],
            "writes_in_flight": {name: n for name, n in self._in_flight.items() if n},
            "wait_seconds": self.wait_seconds,
            "max_seconds": self.max_seconds,
        }
