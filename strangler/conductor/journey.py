"""Moving a running system between stages: one extraction or rollback at a time, or many.

`extract` takes the system from the stage before a context's to the context's stage; `rollback`
takes it back (or undoes an extraction that stopped half-way); `goto` chains them to reach any
stage. Each runs its gates (`moves`), skipping those already passed, so running the same
command again after a failure resumes it; the stage is only recorded when every gate passed.
This module must never hold a gate's work.
"""

from __future__ import annotations

from rich.console import Console

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates import Gate, run_gates
from strangler.conductor.moves import extraction, restoration, retirement, return_of
from strangler.conductor.state import Moving


class Refused(RuntimeError):
    """The move does not make sense from where the migration stands; says what would."""


def extract(conductor: Conductor, context: str, console: Console) -> None:
    """From the stage before `context`'s to its stage."""
    migration, state = conductor.migration, conductor.state
    target = migration.stage_extracting(context).number
    moving = state.moving
    if moving is not None and (moving.from_stage, moving.to_stage) != (target - 1, target):
        raise Refused(_under_way(conductor, moving))
    if moving is None and state.stage >= target:
        raise Refused(f"{context} is extracted already (stage {state.stage})")
    if moving is None and state.stage != target - 1:
        first = migration.stage(state.stage + 1)
        raise Refused(
            f"{context} is extracted at stage {target}, and this system is at stage"
            f" {state.stage}: {_next_step(first.extracts)} first, or `strangler stage goto"
            f" {target}`"
        )
    _move(conductor, target - 1, target, extraction(conductor, context), console)


def rollback(conductor: Conductor, context: str, console: Console) -> None:
    """Give `context` back to the monolith: from its stage to the one before, or undo an
    extraction of it that did not finish."""
    migration, state = conductor.migration, conductor.state
    stage = migration.stage_extracting(context).number
    moving = state.moving
    is_this_move = moving is not None and stage == max(moving.from_stage, moving.to_stage)
    if moving is not None and not is_this_move:
        raise Refused(_under_way(conductor, moving))
    if moving is None and state.stage != stage:
        later = migration.stage(state.stage)
        raise Refused(
            f"{context} is not the last thing extracted (the system is at {later.label}); roll"
            f" back in order, or `strangler stage goto {stage - 1}`"
        )
    _move(conductor, stage, stage - 1, return_of(conductor, context), console)


def goto(conductor: Conductor, stage: int, console: Console) -> None:
    """Extract and roll back, one stage at a time, until the system is at `stage`."""
    migration = conductor.migration
    migration.stage(stage)
    while conductor.state.moving is not None or conductor.state.stage != stage:
        moving, current = conductor.state.moving, conductor.state.stage
        if moving is not None:
            ahead = max(moving.from_stage, moving.to_stage)
            wants_back = (not moving.is_forward) or stage < moving.to_stage
            _step(conductor, ahead, back=wants_back, console=console)
        elif current < stage:
            _step(conductor, current + 1, back=False, console=console)
        else:
            _step(conductor, current, back=True, console=console)


def _step(conductor: Conductor, stage: int, back: bool, console: Console) -> None:
    """Reach `stage` (back=False) or leave it for the one before (back=True)."""
    found = conductor.migration.stage(stage)
    if found.extracts is not None:
        (rollback if back else extract)(conductor, found.extracts, console)
        return
    if back:
        _move(conductor, stage, stage - 1, restoration(conductor), console)
    else:
        _move(conductor, stage - 1, stage, retirement(conductor, stage), console)


def _move(
    conductor: Conductor, from_stage: int, to_stage: int, gates: list[Gate], console: Console
) -> None:
    label = conductor.migration.stage(max(from_stage, to_stage)).label
    verb = "to" if to_stage > from_stage else "back from"
    console.print(f"[bold]stage {from_stage} -> {to_stage}[/] ({verb} {label})")
    moving = conductor.begin(from_stage, to_stage)
    failures = conductor.home.logs / "strangler.log"
    run_gates(gates, list(moving.passed), conductor.mark_passed, console, failures)
    conductor.finish(to_stage)
    reached = conductor.migration.stage(to_stage)
    console.print(f"[green]reached stage {to_stage}[/]: {reached.title}")


def _under_way(conductor: Conductor, moving: Moving) -> str:
    context = conductor.state.moving_context(conductor.migration)
    what = f"the extraction of {context}" if moving.is_forward else f"the rollback of {context}"
    if context is None:
        what = "retiring the monolith" if moving.is_forward else "restoring the monolith"
    return (
        f"{what} (stage {moving.from_stage} -> {moving.to_stage}) is under way: run it again to"
        " resume it, or roll it back"
    )


def _next_step(context: str | None) -> str:
    return f"`strangler extract {context}`" if context else "`strangler stage goto` the next stage"
