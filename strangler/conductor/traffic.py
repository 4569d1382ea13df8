"""The traffic gates of a move: shadow the reads, canary them, and put routes back if not.

Shadow: the context's read routes go to mode `shadow`; the gate passes once enough reads were
compared (by the proxy, since the gate began) and few enough differed, and fails, with a
sample of what differed, when too many did. Canary: the read routes go to mode `canary` with
the proxy's automatic analysis; the gate ticks the analysis until every route completes its
last step, and fails when the analysis rolls a route back. Writes never take part: they move
at cutover, with the data. Sample reads (`probes`) keep both gates moving on an idle system.
This module must never touch a database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates import GateFailed
from strangler.conductor.probes import Prober
from strangler.conductor.recheck import ignore_rules, recheck
from strangler.conductor.state import now
from strangler_proxy.client import ProxyAdmin
from strangler_proxy.table import SAFE_METHODS

ROUND_READS = 3
RECHECKED_SAMPLES = 10


def read_routes(admin: ProxyAdmin, context: str) -> list[dict[str, Any]]:
    """The context's routes that serve only safe methods (the ones shadow and canary may take)."""
    return [
        route
        for route in admin.route_list()
        if route.get("context") == context and set(route["methods"]) <= SAFE_METHODS
    ]


def set_mode(
    admin: ProxyAdmin, routes: list[dict[str, Any]], changes: dict[str, Any], why: str
) -> None:
    """The same change to every route, in one table version."""
    admin.change_routes({route["name"]: dict(changes) for route in routes}, why)


@dataclass(frozen=True)
class Tally:
    """Shadowed reads of some routes: observed (compared, or failed on the service side), how
    many failed, and how many differed on the routes that are judged."""

    observed: int = 0
    errors: int = 0
    mismatched: int = 0

    def __sub__(self, earlier: Tally) -> Tally:
        return Tally(
            self.observed - earlier.observed,
            self.errors - earlier.errors,
            self.mismatched - earlier.mismatched,
        )


def tally(stats: dict[str, dict[str, Any]], names: set[str], judged: set[str]) -> Tally:
    observed = errors = mismatched = 0
    for name in names:
        found = stats.get(name, {})
        errors += int(found.get("errors", 0))
        observed += int(found.get("compared", 0)) + int(found.get("errors", 0))
        mismatched += int(found.get("mismatched", 0)) if name in judged else 0
    return Tally(observed, errors, mismatched)


def shadow_gate(conductor: Conductor, context: str) -> str:
    settings = conductor.settings
    unjudged = conductor.migration.unjudged_routes(context)
    with conductor.admin() as admin:
        routes = read_routes(admin, context)
        names = {route["name"] for route in routes}
        judged = names - unjudged
        before = tally(admin.shadow(), names, judged)
        began = now()
        set_mode(admin, routes, {"mode": "shadow", "analysis": None}, f"extract {context}: shadow")
        seen = _shadow_until_enough(conductor, admin, routes, names, judged, before)
        bad, example = seen.errors + seen.mismatched, None
        if bad > settings.max_mismatch_rate * seen.observed and seen.mismatched:
            persisting, example = _persisting(conductor, admin, context, judged, began, seen)
            bad = seen.errors + persisting
        if bad > settings.max_mismatch_rate * seen.observed:
            set_mode(admin, routes, {"mode": "monolith"}, f"extract {context}: shadow differs")
            rate = bad / seen.observed
            raise GateFailed(
                f"{bad} of {seen.observed} shadowed reads differed or failed ({rate:.1%} >"
                f" {settings.max_mismatch_rate:.1%}); e.g. {example or _sample(admin, judged)}",
                "read the samples (`GET /_admin/shadow`), fix the service or add an ignore rule"
                " with its reason to the stage table, then run again; or roll back",
            )
    lag = seen.mismatched - (bad - seen.errors)
    skipped = f"; not judged: {', '.join(sorted(unjudged & names))}" if unjudged & names else ""
    explained = f", {lag} of them only the sync's lag" if lag else ""
    return f"{seen.observed} reads compared, {seen.mismatched} differed{explained}{skipped}"


def _shadow_until_enough(
    conductor: Conductor,
    admin: ProxyAdmin,
    routes: list[dict[str, Any]],
    names: set[str],
    judged: set[str],
    before: Tally,
) -> Tally:
    """Reads (probes, and whatever traffic comes) until enough were compared."""
    settings, context = conductor.settings, routes[0]["context"]
    prober = _prober(conductor)
    deadline = time.monotonic() + settings.traffic_timeout_seconds
    seen = Tally()
    try:
        while seen.observed < settings.shadow_min_compared:
            if time.monotonic() > deadline:
                set_mode(admin, routes, {"mode": "monolith"}, f"extract {context}: no shadow")
                raise GateFailed(
                    f"only {seen.observed} of {settings.shadow_min_compared} reads were compared"
                    f" in {settings.traffic_timeout_seconds:.0f}s",
                    f"send reads to {context} (or keep STRANGLER_GATE_PROBES on), then run"
                    " the same command again",
                )
            if prober is not None:
                prober.read(routes, ROUND_READS)
            time.sleep(0.3)  # shadow copies are compared after the answer is sent
            seen = tally(admin.shadow(), names, judged) - before
    finally:
        if prober is not None:
            prober.close()
    return seen


def _persisting(
    conductor: Conductor,
    admin: ProxyAdmin,
    context: str,
    judged: set[str],
    began: str,
    seen: Tally,
) -> tuple[int, str | None]:
    """How many of the differences persist once the sync caught up (estimated from the
    proxy's samples, asked again of both sides), and one of them."""
    samples = [
        sample
        for sample in admin.shadow_samples()
        if sample.get("route") in judged and str(sample.get("at", "")) >= began
    ][-RECHECKED_SAMPLES:]
    table, shadow = admin.routes()["table"], admin.shadow()
    found = recheck(
        samples,
        conductor.record.url_of("monolith"),
        conductor.record.url_of(context),
        lambda route: ignore_rules(table, shadow, route),
    )
    return round(seen.mismatched * found.persistent_share), found.example


def _sample(admin: ProxyAdmin, names: set[str]) -> str:
    for sample in reversed(admin.shadow_samples()):
        if sample.get("route") in names:
            return (
                f"{sample['method']} {sample['target']}: fields {sample['fields'][:6]}"
                f" (monolith {sample['status']['monolith']}, service {sample['status']['service']})"
            )
    return "no sample kept (the service failed to answer)"


def canary_gate(conductor: Conductor, context: str) -> str:
    settings = conductor.settings
    with conductor.admin() as admin:
        routes = read_routes(admin, context)
        admin.change_routes(
            {
                route["name"]: {
                    "mode": "canary",
                    "canary_percent": 0,
                    "analysis": _analysis(conductor),
                }
                for route in routes
            },
            f"extract {context}: canary with automatic analysis",
        )
        complete = _run_analysis(conductor, admin, routes, context)
        # Held at 100% without analysis until cutover flips the mode: a route in mode service
        # may carry no analysis block.
        set_mode(admin, routes, {"analysis": None}, f"extract {context}: canary complete")
    steps = "/".join(f"{step:g}%" for step in settings.canary_steps)
    return f"{len(complete)} read routes stepped through {steps}"


def _analysis(conductor: Conductor) -> dict[str, Any]:
    settings = conductor.settings
    return {
        "steps": settings.canary_steps,
        "min_requests": settings.canary_min_requests,
        "max_error_rate": settings.max_error_rate,
        "max_p95_ratio": settings.max_p95_ratio,
        # The shadow gate judged correctness (telling the sync's lag from differences); the
        # canary judges the service's errors and latency.
        "max_mismatch_rate": 1.0,
    }


def _run_analysis(
    conductor: Conductor, admin: ProxyAdmin, routes: list[dict[str, Any]], context: str
) -> set[str]:
    """Tick the analysis (with probe reads between ticks) until every route is complete."""
    settings = conductor.settings
    names = {route["name"] for route in routes}
    complete: set[str] = set()
    since = now()
    prober = _prober(conductor)
    deadline = time.monotonic() + settings.traffic_timeout_seconds
    try:
        while complete != names:
            if time.monotonic() > deadline:
                raise GateFailed(
                    f"the canary of {', '.join(sorted(names - complete))} did not complete in"
                    f" {settings.traffic_timeout_seconds:.0f}s",
                    f"send reads to {context}, then run the same command again",
                )
            if prober is not None:
                forced = max(1, settings.canary_min_requests // 2)
                prober.read(routes, settings.canary_min_requests, forced=forced)
            admin.run_analysis()
            for decision in admin.decisions(since):
                if decision.get("route") not in names:
                    continue
                if decision.get("decision") == "rollback":
                    set_mode(admin, routes, {"mode": "monolith", "analysis": None},
                             f"extract {context}: canary rolled back")  # fmt: skip
                    route, reason = decision["route"], decision["reason"]
                    raise GateFailed(
                        f"the canary analysis rolled {route} back: {reason}",
                        "the routes are back on the monolith; fix the service, then run again",
                    )
                if decision.get("decision") == "complete":
                    complete.add(str(decision["route"]))
    finally:
        if prober is not None:
            prober.close()
    return complete


def _prober(conductor: Conductor) -> Prober | None:
    if not conductor.settings.probes:
        return None
    return Prober(
        conductor.url, conductor.home.admin_token(), conductor.home.workspace.spec.probes
    )
