"""The one client of the proxy's admin API (`strangler_proxy.admin`), beside it.

The conductor and the data path change the table in force only through this API
(token-protected, audited, atomic): freeze and thaw a context's writes, move a context's routes
to a data owner at once, change several routes in one table version, reload the table file;
and they read the table, shadow comparisons with their samples, canary decisions and freezes.
A refused or failed call raises `ProxyAdminError` with what the proxy answered. This module
must never decide what to change, nor touch a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from strangler_proxy.table import SAFE_METHODS, DataOwner


class ProxyAdminError(RuntimeError):
    """The proxy refused or failed an admin request; the message says what it answered."""


@dataclass(frozen=True)
class Frozen:
    """A freeze in force: its maximum, and how long the writes in flight took to finish."""

    context: str
    max_seconds: float
    in_flight_at_freeze: int
    drained_seconds: float
    lease: str = ""  # renew it (`renew`) faster than `lease_seconds`, or the freeze ends
    lease_seconds: float = 0.0


class ProxyAdmin:
    """Admin calls to one proxy, with its admin token, in the name of `actor`."""

    def __init__(
        self,
        base_url: str,
        admin_token: str,
        actor: str = "strangler",
        timeout: float = 30.0,
        prefix: str = "/_admin",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.base_url + prefix,
            headers={"Authorization": f"Bearer {admin_token}", "X-Admin-Actor": actor},
            timeout=timeout,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ProxyAdmin:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        try:
            answer = self.client.request(method, path, **options)
        except httpx.HTTPError as error:
            raise ProxyAdminError(
                f"the proxy at {self.base_url} did not answer: {error}"
            ) from error
        if not answer.is_success:
            try:
                problem = answer.json()
                detail = problem.get("detail", "")
                detail += "".join(f"; {item}" for item in problem.get("problems", []))
            except ValueError:
                detail = answer.text[:200]
            raise ProxyAdminError(f"{method} {path}: {answer.status_code} {detail}")
        document: dict[str, Any] = answer.json()
        return document

    def table(self) -> dict[str, Any]:
        return self._call("GET", "/routes")

    def routes_of(self, context: str) -> list[dict[str, Any]]:
        routes: list[dict[str, Any]] = self.table()["table"]["routes"]
        return [route for route in routes if route.get("context") == context]

    def upstream_url(self, context: str) -> str | None:
        url = self.table()["upstreams"].get(context)
        return str(url) if url else None

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

    def change_routes(
        self,
        changes: dict[str, dict[str, Any]],
        reason: str,
        fence: dict[str, str] | None = None,
    ) -> None:
        """Change several routes in one table version (all or none); `fence` gives the live
        lease of each context whose data owner the change moves."""
        body: dict[str, Any] = {"routes": changes, "reason": reason}
        if fence:
            body["fence"] = fence
        self._call("PATCH", "/routes", json=body)

    def replace_table(self, text: str, reason: str) -> int:
        """Serve a whole table (TOML text); the new version."""
        document = self._call(
            "PUT", "/table", content=text.encode(), params={"reason": reason},
            headers={"Content-Type": "application/toml"},
        )  # fmt: skip
        return int(document["version"])

    def identity(self) -> str | None:
        """The id of the system this proxy fronts."""
        found = self._call("GET", "/identity").get("system")
        return str(found) if found else None

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

    def owner_of(self, context: str) -> DataOwner | None:
        """Who the routes of `context` say owns its data; None if they disagree or are none."""
        routes = self.routes_of(context)
        writes = [route for route in routes if not set(route["methods"]) <= SAFE_METHODS]
        owners = {_owner(route) for route in writes or routes}
        return owners.pop() if len(owners) == 1 else None

    def move(self, context: str, owner: DataOwner, reason: str, lease: str | None = None) -> int:
        """Every route of `context` to `owner` (mode and data owner), atomically, under the
        context's freeze `lease` (a proxy with a durable state refuses an owner move without
        it); the new version."""
        mode = "service" if owner == DataOwner.SERVICE else "monolith"
        changes = {
            route["name"]: {"mode": mode, "data_owner": owner.value}
            for route in self.routes_of(context)
        }
        if not changes:
            raise ProxyAdminError(f"the proxy's table has no route of context {context!r}")
        body: dict[str, Any] = {"routes": changes, "reason": reason}
        if lease:
            body["fence"] = {context: lease}
        document = self._call("PATCH", "/routes", json=body)
        return int(document["version"])

    def freeze(
        self,
        context: str,
        max_seconds: float,
        reason: str,
        lease_seconds: float | None = None,
    ) -> Frozen:
        """Freeze the context's writes under a lease; returns once none is in flight."""
        body: dict[str, Any] = {"reason": reason, "max_seconds": max_seconds}
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        document = self._call("POST", f"/freezes/{context}", json=body)
        return Frozen(
            context,
            float(document["max_seconds"]),
            int(document["in_flight_at_freeze"]),
            float(document["drained_seconds"]),
            str(document.get("lease", "")),
            float(document.get("lease_seconds", max_seconds)),
        )

    def renew(self, context: str, lease: str) -> float:
        """Extend the freeze's lease; seconds until it ends unless renewed again. Raises
        ProxyAdminError when the freeze is over (its holder must not go on as if frozen)."""
        document = self._call("POST", f"/freezes/{context}/renew", json={"lease": lease})
        return float(document["thaws_in_seconds"])

    def thaw(self, context: str, reason: str, lease: str | None = None) -> float | None:
        """Thaw the context (only under `lease`, if given); how long it was frozen by the
        proxy's clock (None: it was not)."""
        params = {"reason": reason, **({"lease": lease} if lease else {})}
        try:
            document = self._call("DELETE", f"/freezes/{context}", params=params)
        except ProxyAdminError as error:
            if " 404 " in str(error):
                return None
            raise
        return float(document["frozen_seconds"])

    def audit(self, limit: int = 200) -> list[dict[str, Any]]:
        """The audit log's last `limit` entries, oldest first."""
        entries: list[dict[str, Any]] = self._call("GET", "/audit", params={"limit": limit})[
            "entries"
        ]
        return entries

    def breakers(self) -> dict[str, dict[str, Any]]:
        """Per upstream: its circuit breaker's state and counts."""
        found: dict[str, dict[str, Any]] = self._call("GET", "/breakers")["upstreams"]
        return found

    def analysis(self) -> list[dict[str, Any]]:
        """The canary analysis's decisions, oldest first."""
        found: list[dict[str, Any]] = self._call("GET", "/analysis")["decisions"]
        return found

    def freezes(self) -> list[dict[str, Any]]:
        """The freezes in force, each with `context` and `thaws_in_seconds`."""
        frozen: list[dict[str, Any]] = self._call("GET", "/freezes")["frozen"]
        return frozen


def _owner(route: dict[str, Any]) -> DataOwner:
    if route.get("data_owner"):
        return DataOwner(route["data_owner"])
    return DataOwner.SERVICE if route.get("mode") == "service" else DataOwner.MONOLITH
