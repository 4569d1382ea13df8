"""The conductor's client of the proxy's admin API (`/_admin`, docs/proxy.md).

It is the data path's client (`migrations.data.proxy_admin`: freezes, thaws, atomic moves of a
context's routes) plus what the conductor reads and changes besides: the table in force,
shadow comparisons and their samples, canary decisions, several routes at once, a reload of
the table file. Every change names the actor `strangler` and a reason, so the proxy's audit
log tells the migration's story; a refused change raises `ProxyAdminError` with the proxy's
problems. This module must never decide what to change.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from migrations.data.proxy_admin import ProxyAdmin as DataPathAdmin
from migrations.data.proxy_admin import ProxyAdminError

__all__ = ["ProxyAdmin", "ProxyAdminError"]


class ProxyAdmin(DataPathAdmin):
    """One proxy's admin API, in the conductor's name."""

    def __init__(self, proxy_url: str, admin_token: str, timeout: float = 30.0) -> None:
        super().__init__(proxy_url, admin_token, actor="strangler", timeout=timeout)

    def __enter__(self) -> ProxyAdmin:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def routes(self) -> dict[str, Any]:
        """The table in force: `version`, `table` (routes, unmatched...), `upstreams`."""
        return self.table()

    def route_list(self) -> list[dict[str, Any]]:
        routes: list[dict[str, Any]] = self.table()["table"]["routes"]
        return routes

    def shadow(self) -> dict[str, dict[str, Any]]:
        """Per route: compared, matched, mismatched, errors, mismatch_rate, learned noise."""
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
