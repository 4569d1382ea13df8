"""The shadow gate: the context's reads are compared, the service's answers against the
monolith's, until enough agree.

The context's read routes go to mode `shadow`; the gate passes once enough reads were compared
by the proxy since it began and few enough differed, and fails, with a sample of what differed,
when too many did. A difference the sync's lag explains (the service's copy trails the monolith
by a fraction of a second) is told apart by asking both sides again (`recheck`). Sample reads
(`probes`) keep it moving on an idle system. Its undo puts the reads back on the monolith.
This module must never touch a database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates.base import GateFailed
from strangler.conductor.gates.routes import read_routes, reads_back_to_the_monolith, set_mode
from strangler.conductor.probes import Prober
from strangler.conductor.recheck import ignore_rules, recheck
from strangler.state import now
from strangler_proxy.client import ProxyAdmin

ROUND_READS = 3
RECHECKED_SAMPLES = 10


@dataclass(frozen=True)
class Shadow:
    """Shadow the context's reads until enough were compared."""

    conductor: Conductor
    context: str
    name: str = "shadow"
    title: str = "shadow its reads"
    undo_title: str = "send its reads back to the monolith"

    def run(self) -> str:
        return shadow_gate(self.conductor, self.context)

    def undo(self) -> str:
        with self.conductor.admin() as admin:
            return reads_back_to_the_monolith(admin, self.context, f"roll back {self.context}")


def prober(conductor: Conductor) -> Prober | None:
    """Sample reads through the public entry, as the workspace's `[probes]` hints say."""
    if not conductor.settings.probes:
        return None
    return Prober(
        conductor.url, conductor.home.admin_token(), conductor.home.workspace.spec.probes
    )


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
    sampler = prober(conductor)
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
            if sampler is not None:
                sampler.read(routes, ROUND_READS)
            time.sleep(0.3)  # shadow copies are compared after the answer is sent
            seen = tally(admin.shadow(), names, judged) - before
    finally:
        if sampler is not None:
            sampler.close()
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
        conductor.runtime.url_of("monolith"),
        conductor.runtime.url_of(context),
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


