"""A per-upstream circuit breaker: stop sending requests to an upstream that keeps failing.

Closed: requests flow; consecutive failures are counted. After `failure_threshold` of them the
breaker opens and refuses requests for `open_seconds`; then it lets one probe through
(half-open): success closes it, failure opens it again. The clock is injectable so behaviour is
specified without sleeping. This module must never perform I/O or know about HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum


class BreakerState(IntEnum):
    """Exported as `proxy_breaker_state{state=...}`: 1 for the state it is in."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """The breaker of one upstream."""

    def __init__(
        self,
        failure_threshold: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._state = BreakerState.CLOSED
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.open_seconds
        ):
            return BreakerState.HALF_OPEN
        return self._state

    def allows_request(self) -> bool:
        """Whether a request may be sent now; in half-open, only one probe at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._probe_in_flight:
            return False
        self._state = BreakerState.HALF_OPEN
        self._probe_in_flight = True
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._probe_in_flight = False
        self._state = BreakerState.CLOSED

    def record_failure(self) -> None:
        self._probe_in_flight = False
        if self._state is BreakerState.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._open()

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._failures = 0

    def describe(self) -> dict[str, object]:
        return {"state": self.state.name.lower(), "consecutive_failures": self._failures}


class Breakers:
    """One breaker per upstream name, created on first use with the same parameters."""

    def __init__(
        self,
        failure_threshold: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make = lambda: CircuitBreaker(failure_threshold, open_seconds, clock)
        self._by_upstream: dict[str, CircuitBreaker] = {}

    def for_upstream(self, name: str) -> CircuitBreaker:
        breaker = self._by_upstream.get(name)
        if breaker is None:
            breaker = self._by_upstream[name] = self._make()
        return breaker

    def describe(self) -> dict[str, dict[str, object]]:
        return {name: breaker.describe() for name, breaker in sorted(self._by_upstream.items())}
