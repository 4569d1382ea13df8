"""Specification of the per-upstream circuit breaker (with a hand-turned clock)."""

from __future__ import annotations

from strangler_proxy.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_consecutive_failures_open_the_breaker() -> None:
    breaker = CircuitBreaker(3, 10.0, Clock())
    for _ in range(2):
        breaker.record_failure()
    assert breaker.allows_request()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allows_request()


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(3, 10.0, Clock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_after_the_open_period_one_probe_is_let_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10.0, clock)
    breaker.record_failure()
    clock.now += 10.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allows_request()
    assert not breaker.allows_request()  # only one probe at a time


def test_a_successful_probe_closes_and_a_failed_one_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10.0, clock)
    breaker.record_failure()
    clock.now += 10.0
    breaker.allows_request()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 10.0
    breaker.allows_request()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allows_request()
