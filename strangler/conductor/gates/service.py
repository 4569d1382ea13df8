"""The gates that start and stop processes: a context's service, and the monolith.

A process starts by writing what the move needs into the durable state and waiting until the
supervisor runs it, healthy; stopping is the same with `False`. A context that builds its data
from events (search) also waits until its consumer has caught up. This module must never
touch the data or the routes.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates.base import GateFailed, wait_until
from strangler.conductor.inspection import lags_in


@dataclass(frozen=True)
class Service:
    """Start the context's service (and its event processes)."""

    conductor: Conductor
    context: str
    name: str = "service"

    @property
    def title(self) -> str:
        return f"start the {self.context} service"

    @property
    def undo_title(self) -> str:
        return f"stop the {self.context} service"

    def run(self) -> str:
        self.conductor.need(runs_service=True)
        consumer = f"{self.context}-consumer"
        if not self.conductor.home.workspace.contexts[self.context].moves_data:
            try:
                self.conductor.runtime.health_url_of(consumer)
            except KeyError:
                return "running, healthy"
            return f"running, healthy; {self._caught_up(consumer)}"
        return "running, healthy"

    def undo(self) -> str:
        self.conductor.need(runs_service=False)
        return "stopped"

    def _caught_up(self, consumer: str) -> str:
        """Wait until the consumer has no event left to apply."""
        url = self.conductor.runtime.health_url_of(consumer)
        seen: dict[str, float] = {}

        def caught_up() -> bool:
            try:
                seen.update(lags_in(httpx.get(url, timeout=2).text))
            except httpx.HTTPError:
                return False
            return seen.get("consumer_lag", 1) == 0

        if not wait_until(caught_up, self.conductor.settings.timeout_seconds, poll=0.5):
            raise GateFailed(
                f"{consumer} is still {seen.get('consumer_lag', '?')} events behind",
                f"see {self.conductor.runtime.log_of(consumer)}, then run the same command again",
            )
        return f"{consumer} caught up"


@dataclass(frozen=True)
class StopMonolith:
    """Stop the monolith (its database stays, kept current by the reverse feeds)."""

    conductor: Conductor
    name: str = "stop"
    title: str = "stop the monolith (its database stays current)"
    undo_title: str = "start the monolith again"

    def run(self) -> str:
        self.conductor.need(monolith_runs=False)
        return "stopped; every other process healthy"

    def undo(self) -> str:
        self.conductor.need(monolith_runs=True)
        return "started; every process healthy"
