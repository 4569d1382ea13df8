"""A client of the proxy's admin API (`/_admin`, docs/proxy.md), as the conductor uses it.

Reads the table in force, shadow comparisons and canary decisions; changes routes, reloads the
table file; every change names the actor `strangler` and a reason, so the proxy's audit log
tells the migration's story. A refused change raises `AdminRefused` with the proxy's problems.
This module must never decide what to change.
"""

from __future__ import annotations

from typing import Any

import httpx

ACTOR = "strangler"


class AdminRefused(RuntimeError):
    """The proxy refused a change (or could not be reached)."""


class ProxyAdmin:
    """One proxy's admin API."""

    def __init__(self, proxy_url: str, admin_token: str, timeout: float = 10.0) -> None:
        self.client = httpx.Client(
            base_url=f"{proxy_url}/_admin",
            headers={"Authorization": f"Bearer {admin_token}", "X-Admin-Actor": ACTOR},
            timeout=timeout,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ProxyAdmin:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        try:
            response = self.client.request(method, path, **options)
        except httpx.HTTPError as error:
            raise AdminRefused(f"the proxy's admin API did not answer: {error}") from error
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text[:200]}
            problems = "; ".join(body.get("problems") or [body.get("detail", "")])
            raise AdminRefused(f"{method} {path}: {response.status_code} {problems}")
        result: dict[str, Any] = response.json()
        return result

    def routes(self) -> dict[str, Any]:
        """The table in force: `version`, `table` (routes, unmatched...), `upstreams`."""
        return self._call("GET", "/routes")

    def route_list(self) -> list[dict[str, Any]]:
        routes: list[dict[str, Any]] = self.routes()["table"]["routes"]
        return routes

    def shadow(self) -> dict[str, dict[str, Any]]:
        """Per route: compared, matched, mismatched, errors, mismatch_rate..."""
        found: dict[str, dict[str, Any]] = self._call("GET", "/shadow")["routes"]
        return found

    def shadow_samples(self) -> list[dict[str, Any]]:
        samples: list[dict[str, Any]] = self._call("GET", "/shadow")["samples"]
        return samples

    def change_routes(self, changes: dict[str, dict[str, Any]], reason: str) -> None:
        """Change several routes in one table version (all or none)."""
        self._call("PATCH", "/routes", json={"routes": changes, "reason": reason})

    def reload(self, reason: str) -> None:
        """Re-read the table file the proxy was started with."""
        self._call("POST", "/table/reload", params={"reason": reason})

    def run_analysis(self) -> None:
        """Run one tick of the automatic canary analysis now."""
        self._call("POST", "/analysis/run")

    def decisions(self, since: str) -> list[dict[str, Any]]:
        """The canary analysis's decisions (its own ticks and ours) at or after `since`."""
        found: list[dict[str, Any]] = self._call("GET", "/analysis")["decisions"]
        return [decision for decision in found if str(decision.get("at", "")) >= since]
