"""Steps of the moves that talk to several parts at once: each returns a short result or raises
`GateFailed` with what failed and what to do.

The data path's cutover and rollback (with their write-freeze window written to the state, so
anyone can tell a frozen write from a failure), switching a context's routes in one table
version, building the search index from the forum's data, waiting for a consumer to catch up,
and proving that the monolith receives no request. This module must never decide the order
of steps.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates import GateFailed, wait_until
from strangler.conductor.inspection import lags_in
from strangler.conductor.probes import Prober
from strangler.conductor.state import FreezeWindow, now
from strangler.conductor.traffic import read_routes
from strangler.datapath import apply
from strangler.datapath.cutover import MoveRefused, MoveReport
from strangler.runtime.launch import context_environment
from strangler_proxy.client import ProxyAdminError

Move = Callable[..., MoveReport]
# Requests that say nothing about traffic: health checks and metric scrapes.
OPERATIONS = ("/healthz", "/metrics")


def cutover_gate(conductor: Conductor, context: str, move: Move) -> str:
    """Run the data path's cutover or rollback; its freeze window goes into the state first."""
    window = FreezeWindow(context=context, started_at=now())
    conductor.state.freezes.append(window)
    conductor.save()
    admin = conductor.admin()
    try:
        with conductor.link(context) as link:
            report = move(link, admin, max_freeze_seconds=conductor.settings.max_freeze_seconds,
                          say=conductor.say)  # fmt: skip
    except (MoveRefused, ProxyAdminError, apply.DrainTimeout) as error:
        raise GateFailed(
            str(error), "nothing moved: fix the cause and run the same command again"
        ) from error
    finally:
        admin.close()
        window.ended_at = now()
        conductor.save()
    window.frozen_seconds = report.freeze_seconds
    conductor.save()
    if report.leaked_entries:
        raise GateFailed(
            f"{report.leaked_entries} writes reached the old owner after the freeze",
            f"the routes moved; `strangler data verify {context}` shows what differs",
        )
    return (
        f"writes frozen for {report.freeze_seconds * 1000:.0f} ms, "
        f"{report.verified_keys} keys verified"
    )


def routes_to(conductor: Conductor, context: str, side: str) -> str:
    """Every route of a context that owns no data to `side` (service or monolith), at once."""
    with conductor.admin() as admin:
        names = [route["name"] for route in admin.route_list() if route.get("context") == context]
        mode = "service" if side == "service" else "monolith"
        changes = {
            name: {"mode": mode, "data_owner": side, "analysis": None, "canary_percent": 0}
            for name in names
        }
        admin.change_routes(changes, f"{context} served by the {side}")
    return f"{len(names)} routes"


def build_data(conductor: Conductor, context: str) -> str:
    """Run the context's `build` hook (a context that owns no monolith table builds its data:
    search, its index from the forum's), given every database's URL and its service's settings."""
    home = conductor.home
    hook = home.workspace.contexts[context].hooks.build
    if hook is None:
        return "nothing to build"
    databases = {name: home.database_url(name) for name in home.workspace.databases}
    settings = context_environment(home.workspace, context, home.root)
    built = int(home.workspace.resolve(hook)(databases, settings))
    if not built:
        needs = ", ".join(home.workspace.contexts[context].needs) or "its sources"
        raise GateFailed(f"{context}'s build found nothing to build from", f"extract {needs} first")
    return f"{built:,} rows built"


def wait_consumer_caught_up(conductor: Conductor, name: str) -> str:
    """Wait until consumer `name` has no event left to apply."""
    record = conductor.record.processes[name]
    seen: dict[str, float] = {}

    def caught_up() -> bool:
        try:
            seen.update(lags_in(httpx.get(record.health_url, timeout=2).text))
        except httpx.HTTPError:
            return False
        return seen.get("consumer_lag", 1) == 0

    if not wait_until(caught_up, conductor.settings.timeout_seconds, poll=0.5):
        raise GateFailed(
            f"{name} is still {seen.get('consumer_lag', '?')} events behind",
            f"see {record.log}, then run the same command again",
        )
    return f"{name} caught up"


def monolith_requests(url: str) -> float:
    """Requests the monolith has answered, its own health checks and scrapes aside."""
    exposition = httpx.get(f"{url}/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        if family.name != "http_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("route") not in OPERATIONS:
                total += sample.value
    return total


def monolith_is_quiet(conductor: Conductor) -> str:
    """Send reads to every route, an unknown path and a wrong method; the monolith sees none."""
    url = conductor.record.url_of("monolith")
    before = monolith_requests(url)
    with conductor.admin() as admin:
        routes = [route for context in conductor.migration.contexts
                  for route in read_routes(admin, context)]  # fmt: skip
    prober = Prober(
        conductor.url, conductor.home.admin_token(), conductor.home.workspace.spec.probes
    )
    try:
        sent = prober.read(routes, 2)
        for method, path in (("GET", "/no/such/path"), ("DELETE", "/api/threads/1")):
            prober.client.request(method, path)
            sent += 1
    finally:
        prober.close()
    reached = monolith_requests(url) - before
    if reached:
        raise GateFailed(
            f"{reached:.0f} of {sent} requests still reached the monolith",
            "compare the proxy's table with the last stage's file (`strangler status`)",
        )
    return f"none of {sent} requests reached it"
