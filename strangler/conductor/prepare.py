"""Bring a system's data to a stage without anyone watching: what a fresh `strangler up --stage
N`, the load comparison and the tests do before they measure anything.

It seeds an empty system, then runs the system in a background thread and moves the migration
exactly as `strangler stage goto` does (the gates' own sample reads are its only traffic). This
module must never decide a gate.
"""

from __future__ import annotations

from strangler.conductor.conductor import Conductor
from strangler.conductor.events import Listener, ignore
from strangler.conductor.lock import exclusive
from strangler.conductor.moves import goto
from strangler.conductor.settings import GateSettings
from strangler.runtime.home import Home
from strangler.runtime.system import (
    RunningSystem,
    SeedProgress,
    following_the_migration,
    in_background,
    seed_if_empty,
)
from strangler.state import StateFile


def prepare(
    home: Home,
    stage: int,
    scale: float = 1.0,
    seed_value: int = 42,
    progress: SeedProgress | None = None,
    listen: Listener = ignore,
    gates: GateSettings | None = None,
) -> None:
    """Seed the system if it is empty and bring its data to `stage` (with `gates`, else the
    environment's gate settings)."""
    home.workspace.migration().stage(stage)  # an unknown stage is refused before anything
    seed_if_empty(home, scale, seed_value, progress)
    state = StateFile(home.state_file).read()
    if state.stage == stage and state.moving is None:
        return
    # No console: nobody watches a system that only moves data (it would cost a start).
    with exclusive(home.lock_file), in_background(home, console=False):
        goto(Conductor.attach(home, listen, gates), stage)


def advance(
    system: RunningSystem,
    home: Home,
    stage: int,
    listen: Listener = ignore,
    gates: GateSettings | None = None,
) -> None:
    """Bring the data of a started system (`strangler.runtime.system.start`) on to `stage`, in
    place, as `prepare` would: what the load comparison does once it has measured a stage, so
    the next stage's data is not moved by a system started only for that."""
    with exclusive(home.lock_file), following_the_migration(system, home):
        goto(Conductor.attach(home, listen, gates), stage)
