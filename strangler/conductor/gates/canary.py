"""The canary gate: the context's reads are split between the monolith and the service, the
service's share stepped up by the proxy's automatic analysis until it serves them all.

The read routes go to mode `canary` with the analysis; the gate ticks the analysis (with sample
reads between ticks) until every route completes its last step, and fails when the analysis
rolls a route back. Writes never take part: they move at cutover, with the data. Its undo puts
the reads back on the monolith. This module must never touch a database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates.base import GateFailed
from strangler.conductor.gates.routes import read_routes, reads_back_to_the_monolith, set_mode
from strangler.conductor.gates.shadow import prober
from strangler.state import now
from strangler_proxy.client import ProxyAdmin


@dataclass(frozen=True)
class Canary:
    """Canary the context's reads through the analysis's steps."""

    conductor: Conductor
    context: str
    name: str = "canary"
    title: str = "canary its reads"
    undo_title: str = "send its reads back to the monolith"

    def run(self) -> str:
        return canary_gate(self.conductor, self.context)

    def undo(self) -> str:
        with self.conductor.admin() as admin:
            return reads_back_to_the_monolith(admin, self.context, f"roll back {self.context}")


def canary_gate(conductor: Conductor, context: str) -> str:
    settings = conductor.settings
    with conductor.admin() as admin:
        routes = read_routes(admin, context)
        admin.change_routes(
            {
                route["name"]: {
                    "mode": "canary",
                    "canary_percent": 0,
                    "analysis": _analysis(conductor, context),
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
    unjudged = (
        "; latency not judged (functions on the AWS emulator)"
        if _emulated(conductor, context)
        else ""
    )
    return f"{len(complete)} read routes stepped through {steps}{unjudged}"


# A context served as functions runs, locally, against the AWS emulator (moto), whose latency
# says nothing of AWS's (the example's results read had a p95 24.8 times the monolith's, all of
# it moto's Python): its canary judges errors only, and says so.
UNJUDGED_P95_RATIO = 1_000_000.0


def _emulated(conductor: Conductor, context: str) -> bool:
    return context in conductor.migration.serverless


def _analysis(conductor: Conductor, context: str) -> dict[str, Any]:
    settings = conductor.settings
    ratio = UNJUDGED_P95_RATIO if _emulated(conductor, context) else settings.max_p95_ratio
    return {
        "steps": settings.canary_steps,
        "min_requests": settings.canary_min_requests,
        "max_error_rate": settings.max_error_rate,
        "max_p95_ratio": ratio,
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
    sampler = prober(conductor)
    deadline = time.monotonic() + settings.traffic_timeout_seconds
    try:
        while complete != names:
            if time.monotonic() > deadline:
                raise GateFailed(
                    f"the canary of {', '.join(sorted(names - complete))} did not complete in"
                    f" {settings.traffic_timeout_seconds:.0f}s",
                    f"send reads to {context}, then run the same command again",
                )
            if sampler is not None:
                forced = max(1, settings.canary_min_requests // 2)
                sampler.read(routes, settings.canary_min_requests, forced=forced)
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
        if sampler is not None:
            sampler.close()
    return complete
