"""The build gate: a context that owns no monolith table builds its data (search: its index,
from the forum's data) with the hook its workspace names. This module must never touch the
routes."""

from __future__ import annotations

from dataclasses import dataclass

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates.base import GateFailed
from strangler.runtime.launch import context_environment


@dataclass(frozen=True)
class Build:
    """Run the context's `build` hook with every database's URL and its service's settings."""

    conductor: Conductor
    context: str
    name: str = "build"

    @property
    def title(self) -> str:
        return f"build {self.context}'s data from the data it reads"

    @property
    def undo_title(self) -> str:
        return f"keep {self.context}'s data (its database is its own)"

    def run(self) -> str:
        home = self.conductor.home
        workspace = home.workspace
        hook = workspace.contexts[self.context].hooks.build
        if hook is None:
            return "nothing to build (no hook)"
        databases = {name: home.database_url(name) for name in workspace.databases}
        settings = context_environment(workspace, self.context, home.root)
        built = int(workspace.resolve(hook)(databases, settings))
        if not built:
            needs = ", ".join(workspace.contexts[self.context].needs) or "what it reads"
            raise GateFailed(
                f"{self.context}'s build found nothing to build from", f"extract {needs} first"
            )
        return f"{built:,} rows built"

    def undo(self) -> str:
        return "kept"
