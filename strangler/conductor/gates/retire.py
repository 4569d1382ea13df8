"""The gates that retire the monolith: serve the last stage's table, prove the monolith gets no
request, then stop it (`service.StopMonolith`). Their undo serves the table before. This module
must never touch a database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates.base import GateFailed
from strangler.conductor.gates.routes import read_routes
from strangler.conductor.probes import Prober

# Requests that say nothing about traffic: health checks and metric scrapes.
OPERATIONS = ("/healthz", "/metrics")


@dataclass(frozen=True)
class ServeTable:
    """Serve stage `stage`'s route table (its undo: stage `previous`'s)."""

    conductor: Conductor
    stage: int
    previous: int
    name: str = "table"

    @property
    def title(self) -> str:
        return f"serve the stage {self.stage} route table"

    @property
    def undo_title(self) -> str:
        return f"serve the stage {self.previous} route table"

    def run(self) -> str:
        return self.conductor.serve_table(self.stage)

    def undo(self) -> str:
        return self.conductor.serve_table(self.previous)


@dataclass(frozen=True)
class Quiet:
    """Send reads to every route, an unknown path and a wrong method: the monolith sees none."""

    conductor: Conductor
    name: str = "quiet"
    title: str = "prove the monolith receives no request"
    undo_title: str = "nothing to undo for the quiet check"

    def run(self) -> str:
        return _monolith_is_quiet(self.conductor)

    def undo(self) -> str:
        return "nothing to undo"


def forwarded_to_the_monolith(proxy_url: str) -> float:
    """Requests the proxy has sent to the monolith (its `proxy_requests_total` by target)."""
    return _summed(proxy_url, "proxy_requests", lambda labels: labels.get("target") == "monolith")


def monolith_requests(url: str) -> float:
    """Requests the monolith says it answered, its own health checks and scrapes aside (0 for
    a monolith that exports no `http_requests_total`)."""
    try:
        return _summed(url, "http_requests", lambda labels: labels.get("route") not in OPERATIONS)
    except httpx.HTTPError:
        return 0.0


def _summed(url: str, family_name: str, counts: Callable[[dict[str, str]], bool]) -> float:
    exposition = httpx.get(f"{url}/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        if family.name != family_name:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and counts(sample.labels):
                total += sample.value
    return total


def _monolith_is_quiet(conductor: Conductor) -> str:
    """Send reads to every route, an unknown path and a wrong method; the monolith sees none."""
    url = conductor.runtime.url_of("monolith")
    before = forwarded_to_the_monolith(conductor.url) + monolith_requests(url)
    with conductor.admin() as admin:
        routes = [route for context in conductor.migration.contexts
                  for route in read_routes(admin, context)]  # fmt: skip
    sampler = Prober(
        conductor.url, conductor.home.admin_token(), conductor.home.workspace.spec.probes
    )
    try:
        sent = sampler.read(routes, 2)
        unknown = "/no/such/path/strangler-probe"
        known = next((route["path"] for route in routes if "{" not in route["path"]), "/")
        for method, path in (("GET", unknown), ("DELETE", known)):
            sampler.client.request(method, path)
            sent += 1
    finally:
        sampler.close()
    reached = forwarded_to_the_monolith(conductor.url) + monolith_requests(url) - before
    if reached:
        raise GateFailed(
            f"{reached:.0f} of {sent} requests still reached the monolith",
            "compare the proxy's table with the last stage's file (`strangler status`)",
        )
    return f"none of {sent} requests reached it"
