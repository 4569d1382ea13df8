"""Automatic canary analysis: step a route's percentage up while it behaves, roll back if not.

For each route in mode `canary` with an `analysis` block, a window of observations per side
(service and monolith) is kept since the last step. On each tick: too few service requests ->
wait; error rate, p95 latency relative to the monolith, or shadow mismatch rate over a limit ->
roll back to 0% and halt until an operator changes the route; otherwise -> the next step. Every
decision, including waiting, is written to the audit log. This module must never forward a
request; it changes the table only through `TableStore`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from strangler_proxy.audit import AuditLog
from strangler_proxy.shadow import ShadowRunner
from strangler_proxy.store import TableStore
from strangler_proxy.table import Analysis, Mode, Route, TableError

MAX_LATENCIES = 5000
MIN_BASELINE = 5
ACTOR = "canary-analysis"


def p95(latencies: list[float]) -> float | None:
    if not latencies:
        return None
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


@dataclass
class SideWindow:
    """Observations of one side of one route since the window opened."""

    requests: int = 0
    errors: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_LATENCIES))

    def record(self, is_error: bool, seconds: float) -> None:
        self.requests += 1
        self.errors += is_error
        self.latencies.append(seconds)


@dataclass
class RouteWindow:
    service: SideWindow = field(default_factory=SideWindow)
    monolith: SideWindow = field(default_factory=SideWindow)
    shadow_compared_at_start: int = 0
    shadow_mismatched_at_start: int = 0


class CanaryAnalyst:
    """Collects per-side observations and makes the step / hold / roll back decisions."""

    def __init__(self, store: TableStore, shadow: ShadowRunner, audit: AuditLog) -> None:
        self.store = store
        self.shadow = shadow
        self.audit = audit
        self.windows: dict[str, RouteWindow] = {}
        self.halted: dict[str, Route] = {}
        self.decisions: deque[dict[str, Any]] = deque(maxlen=200)

    def record(self, route: str, is_service: bool, is_error: bool, seconds: float) -> None:
        window = self.windows.get(route)
        if window is None:
            window = self.windows[route] = self._new_window(route)
        (window.service if is_service else window.monolith).record(is_error, seconds)

    def _new_window(self, route: str) -> RouteWindow:
        stats = self.shadow.stats.get(route)
        return RouteWindow(
            shadow_compared_at_start=stats.compared if stats else 0,
            shadow_mismatched_at_start=stats.mismatched if stats else 0,
        )

    def analyse_once(self) -> list[dict[str, Any]]:
        """One tick over every analysed route; returns the decisions made."""
        made = []
        for route in self.store.current.table.routes:
            if route.mode is not Mode.CANARY or route.analysis is None or not route.active:
                continue
            if self.halted.get(route.name) == route:
                continue
            self.halted.pop(route.name, None)
            made.append(self._decide(route, route.analysis))
        return made

    def _measure(self, route: Route) -> dict[str, Any]:
        window = self.windows.get(route.name) or self._new_window(route.name)
        stats = self.shadow.stats.get(route.name)
        compared = (stats.compared if stats else 0) - window.shadow_compared_at_start
        mismatched = (stats.mismatched if stats else 0) - window.shadow_mismatched_at_start
        service_p95 = p95(list(window.service.latencies))
        monolith_p95 = p95(list(window.monolith.latencies))
        ratio = None
        if service_p95 is not None and monolith_p95 and window.monolith.requests >= MIN_BASELINE:
            ratio = service_p95 / monolith_p95
        return {
            "service_requests": window.service.requests,
            "error_rate": window.service.errors / window.service.requests
            if window.service.requests
            else 0.0,
            "service_p95_ms": None if service_p95 is None else round(service_p95 * 1000, 2),
            "monolith_p95_ms": None if monolith_p95 is None else round(monolith_p95 * 1000, 2),
            "p95_ratio": ratio,
            "shadow_compared": compared,
            "mismatch_rate": mismatched / compared if compared else 0.0,
        }

    def _violations(self, measured: dict[str, Any], limits: Analysis) -> list[str]:
        found = []
        if measured["error_rate"] > limits.max_error_rate:
            found.append(f"error rate {measured['error_rate']:.3f} > {limits.max_error_rate}")
        ratio = measured["p95_ratio"]
        if ratio is not None and ratio > limits.max_p95_ratio:
            found.append(f"p95 ratio {ratio:.2f} > {limits.max_p95_ratio}")
        if measured["mismatch_rate"] > limits.max_mismatch_rate:
            found.append(
                f"shadow mismatch rate {measured['mismatch_rate']:.3f} > {limits.max_mismatch_rate}"
            )
        return found

    def _decide(self, route: Route, limits: Analysis) -> dict[str, Any]:
        measured = self._measure(route)
        percent = route.canary_percent
        violations = self._violations(measured, limits) if measured["service_requests"] else []
        if violations:
            return self._apply(route, "rollback", 0.0, "; ".join(violations), measured)
        if percent > 0 and measured["service_requests"] < limits.min_requests:
            reason = f"{measured['service_requests']} of {limits.min_requests} service requests"
            return self._record(route, "wait", percent, reason, measured)
        higher = [step for step in limits.steps if step > percent]
        if not higher:
            return self._record(route, "complete", percent, "at the last step", measured)
        return self._apply(route, "step", higher[0], "inside every threshold", measured)

    def _apply(
        self, route: Route, decision: str, percent: float, reason: str, measured: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            snapshot = self.store.change_route(
                route.name, {"canary_percent": percent}, actor=ACTOR, reason=f"{decision}: {reason}"
            )
        except (TableError, KeyError) as error:
            return self._record(route, "error", route.canary_percent, str(error), measured)
        self.windows[route.name] = self._new_window(route.name)
        if decision == "rollback":
            changed = snapshot.table.route(route.name)
            if changed is not None:
                self.halted[route.name] = changed
        return self._record(route, decision, percent, reason, measured)

    def _record(
        self, route: Route, decision: str, percent: float, reason: str, measured: dict[str, Any]
    ) -> dict[str, Any]:
        entry = self.audit.append(
            ACTOR,
            "analysis-decision",
            reason,
            route=route.name,
            decision=decision,
            from_percent=route.canary_percent,
            to_percent=percent,
            measured=measured,
        )
        self.decisions.append(entry)
        return entry
