"""The switch gate: every route of a context that owns no monolith data goes to its service at
once (its undo sends them back); with no data to move there is no freeze. This module must
never touch a database."""

from __future__ import annotations

from dataclasses import dataclass

from strangler.conductor.conductor import Conductor


@dataclass(frozen=True)
class Switch:
    """Send the context's routes to its service."""

    conductor: Conductor
    context: str
    name: str = "switch"
    title: str = "send its routes to the service"
    undo_title: str = "send its routes back to the monolith"

    def run(self) -> str:
        return self._to("service")

    def undo(self) -> str:
        return self._to("monolith")

    def _to(self, side: str) -> str:
        with self.conductor.admin() as admin:
            names = [r["name"] for r in admin.route_list() if r.get("context") == self.context]
            changes = {
                name: {"mode": side, "data_owner": side, "analysis": None, "canary_percent": 0}
                for name in names
            }
            if changes:
                admin.change_routes(changes, f"{self.context} served by the {side}")
        return f"{len(names)} routes to the {side}"
