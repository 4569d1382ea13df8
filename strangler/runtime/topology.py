"""What runs at a point of the migration: the topology that follows from its durable state.

The stage says which services run, whether the monolith does and which contexts' data moves;
a move under way adjusts that (a service started before its stage, the monolith stopped before
the last). And whatever the stage says, the state's facts win: a context whose data its service
owns, or whose routes send anything to its service, has that service and its sync running, so
a restarted system never routes a request to a stopped service. This module must never start a
process.
"""

from __future__ import annotations

from strangler.runtime.plan import Topology
from strangler.state import MigrationState
from strangler.workspace.stages import Migration


def topology(migration: Migration, state: MigrationState) -> Topology:
    """What runs now: the stage's processes, adjusted by the move under way and the state."""
    migration = migration.retargeted(state.targets)
    stage = migration.stage(state.stage)
    services = set(stage.extracted)
    syncs = set(stage.services_own)
    monolith_runs = stage.monolith_serves
    moving = state.moving
    if moving is not None:
        context = migration.stage(max(moving.from_stage, moving.to_stage)).extracts
        if context is not None:
            for wanted, running in ((moving.runs_service, services), (moving.runs_sync, syncs)):
                if wanted is not None:
                    (running.add if wanted else running.discard)(context)
        if moving.monolith_runs is not None:
            monolith_runs = moving.monolith_runs
    for context in migration.contexts:
        if state.owner_of(context) == "service":
            services.add(context)
            syncs.add(context)
        if _served_by_its_service(state, context):
            services.add(context)
    # A context extracted to functions runs as functions wherever it would run as a service.
    functions = services & migration.serverless
    return Topology(
        services=tuple(c for c in migration.contexts if c in services - functions),
        monolith_runs=monolith_runs,
        syncs=tuple(c for c in migration.contexts if c in syncs),
        serverless=tuple(c for c in migration.contexts if c in functions),
    )


def stage_topology(migration: Migration, stage: int, direct: bool = False) -> Topology:
    """What runs at a stage when no move is under way."""
    if direct:
        return Topology(has_proxy=False)
    found = migration.stage(stage)
    return Topology(
        services=found.services,
        monolith_runs=found.monolith_serves,
        syncs=found.services_own,
        serverless=found.serverless,
    )


def _served_by_its_service(state: MigrationState, context: str) -> bool:
    if state.routes is None:
        return False
    return any(
        route.get("context") == context and route.get("mode", "monolith") != "monolith"
        for route in state.routes.get("routes", [])
    )
