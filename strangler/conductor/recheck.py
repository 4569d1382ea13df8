"""Telling the sync's lag from a real difference, for the shadow gate.

While a context's data is still the monolith's, the service reads a replica that trails each
write by the sync's lag (a fraction of a second). Under live writes a shadowed read can
therefore differ only because the service has not seen the latest write yet: a list of the
newest threads without the one created 50 ms ago. That is not a bug in the service. So every
difference the proxy kept a sample of is asked again of both sides, directly, a few times:
if the two answers agree once (by the same ignore rules the proxy used), the difference was
lag; if they never do, it persists, and it counts. This module must never change anything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from strangler_proxy.comparison import unexplained

TRIES = 3
PAUSE_SECONDS = 0.4


@dataclass(frozen=True)
class Recheck:
    checked: int
    persistent: int
    example: str | None  # a persistent difference, described

    @property
    def persistent_share(self) -> float:
        return self.persistent / self.checked if self.checked else 1.0


def recheck(
    samples: list[dict[str, Any]],
    monolith_url: str,
    service_url: str,
    ignore_for: Callable[[str], list[str]],
) -> Recheck:
    """Ask each sampled read again of both sides; how many differences persist."""
    persistent, example = 0, None
    with httpx.Client(timeout=10) as client:
        for sample in samples:
            ignore = ignore_for(sample["route"])
            fields = _still_differs(client, sample["target"], monolith_url, service_url, ignore)
            if fields:
                persistent += 1
                example = example or f"GET {sample['target']}: fields {fields[:6]}"
    return Recheck(len(samples), persistent, example)


def _still_differs(
    client: httpx.Client, target: str, monolith_url: str, service_url: str, ignore: list[str]
) -> list[str]:
    """The fields that differ every time both sides are asked (empty once they agree)."""
    fields: list[str] = []
    for attempt in range(TRIES):
        if attempt:
            time.sleep(PAUSE_SECONDS)
        try:
            monolith = client.get(monolith_url + target)
            service = client.get(service_url + target)
        except httpx.HTTPError:
            return ["(no answer)"]
        fields = _differences(monolith, service, ignore)
        if not fields:
            return []
    return fields


def _differences(monolith: httpx.Response, service: httpx.Response, ignore: list[str]) -> list[str]:
    if monolith.status_code != service.status_code:
        return ["status"]
    try:
        return unexplained(monolith.json(), service.json(), ignore)
    except json.JSONDecodeError:
        return [] if monolith.content == service.content else ["body"]


def ignore_rules(table: dict[str, Any], shadow: dict[str, Any], route_name: str) -> list[str]:
    """The fields the proxy ignores for a route: the table's rules, the route's, and the noise
    it learned."""
    route: dict[str, Any] = next((r for r in table["routes"] if r["name"] == route_name), {})
    learned = shadow.get(route_name, {}).get("learned_noise", [])
    return [
        *(rule["field"] for rule in table.get("shadow_ignore", [])),
        *(rule["field"] for rule in route.get("shadow_ignore", [])),
        *(rule["field"] for rule in learned),
    ]
