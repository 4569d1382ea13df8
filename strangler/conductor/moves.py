"""Moves between stages: which gates each runs, in what order, and how a move is undone.

Extracting a context whose data the monolith owns: its schema, capture, backfill, sync, verify, its
service, shadow, canary, cutover; to functions: the functions (and the emulator), capture,
backfill, sync and verify into its items, shadow, canary, cutover. Extracting a context that builds
its data (search): its schema, build, its service, shadow, canary, switch. Retiring the monolith:
serve the last table, prove the monolith gets no request, stop it. A move back runs the undo of
every gate the move forward passed (and of the one it had started), last first: rolling back a
finished extraction and a half-done one are the same thing. Every gate started and passed is
written to the durable state first, so running the same command again resumes where it stopped, and
`goto` chains moves to reach any stage. This module must never do a gate's work.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

from strangler.conductor.conductor import Conductor
from strangler.conductor.events import GatePassed, GateSkipped, GateStopped, MoveBegan, MoveFinished
from strangler.conductor.gates.base import Gate, GateFailed
from strangler.conductor.gates.build import Build
from strangler.conductor.gates.canary import Canary
from strangler.conductor.gates.cutover import Cutover
from strangler.conductor.gates.data import Backfill, Capture, Schema, Sync, Verify
from strangler.conductor.gates.functions import (
    Functions,
    ItemsBackfill,
    ItemsCapture,
    ItemsSync,
    ItemsVerify,
)
from strangler.conductor.gates.retire import Quiet, ServeTable
from strangler.conductor.gates.service import Service, StopMonolith
from strangler.conductor.gates.shadow import Shadow
from strangler.conductor.gates.switch import Switch
from strangler.state import MigrationState, Moving
from strangler.workspace.stages import StageError

TARGETS = ("service", "serverless")


class Refused(RuntimeError):
    """The move does not make sense from where the migration stands; says what would."""


def extraction(conductor: Conductor, context: str) -> list[Gate]:
    """Every gate from the stage before `context`'s to its own, in order."""
    if context in conductor.migration.serverless:
        return [
            Functions(conductor, context),
            ItemsCapture(conductor, context),
            ItemsBackfill(conductor, context),
            ItemsSync(conductor, context),
            ItemsVerify(conductor, context),
            Shadow(conductor, context),
            Canary(conductor, context),
            Cutover(conductor, context),
        ]
    if not conductor.home.workspace.contexts[context].moves_data:
        return [
            Schema(conductor, context),
            Build(conductor, context),
            Service(conductor, context),
            Shadow(conductor, context),
            Canary(conductor, context),
            Switch(conductor, context),
        ]
    return [
        Schema(conductor, context),
        Capture(conductor, context),
        Backfill(conductor, context),
        Sync(conductor, context),
        Verify(conductor, context),
        Service(conductor, context),
        Shadow(conductor, context),
        Canary(conductor, context),
        Cutover(conductor, context),
    ]


def retirement(conductor: Conductor, stage: int) -> list[Gate]:
    """From the last stage that needs the monolith to `stage`, where nothing reaches it."""
    return [ServeTable(conductor, stage, stage - 1), Quiet(conductor), StopMonolith(conductor)]


def gates_of(conductor: Conductor, stage: int) -> list[Gate]:
    """The gates of the move forward into `stage`."""
    if conductor.gates is not None:
        return conductor.gates(conductor, stage)
    found = conductor.migration.stage(stage)
    if found.extracts is not None:
        return extraction(conductor, found.extracts)
    return retirement(conductor, stage)


# The moves a person asks for.


def extract(conductor: Conductor, context: str) -> None:
    """From the stage before `context`'s to its stage (or resume that move)."""
    migration, state = conductor.migration, conductor.refresh()
    target = migration.stage_extracting(context).number
    moving = state.moving
    if moving is not None and (moving.from_stage, moving.to_stage) != (target - 1, target):
        raise Refused(_under_way(conductor, moving))
    if moving is None and state.stage >= target:
        raise Refused(f"{context} is extracted already: the system is at stage {state.stage}")
    if moving is None and state.stage != target - 1:
        first = migration.stage(state.stage + 1)
        raise Refused(
            f"{context} is not extracted yet: it comes at stage {target}, and this system is at"
            f" stage {state.stage}; {_next_step(first.extracts)} first, or `strangler stage"
            f" goto {target}`"
        )
    _forward(conductor, target)


def choose_target(conductor: Conductor, context: str, target: str) -> None:
    """Extract `context` as `target` (a service, or functions) whatever the workspace file
    says: the choice is written to the durable state, which every process reads with the file.
    Refused once the context is extracted or its extraction has begun: roll it back first."""
    if target not in TARGETS:
        raise Refused(f"--target is one of {', '.join(TARGETS)}, not {target!r}")
    migration, state = conductor.migration, conductor.refresh()
    stage = migration.stage_extracting(context)
    now = "serverless" if context in migration.serverless else "service"
    if now == target:
        return
    moving = state.moving
    if state.stage >= stage.number or (
        moving is not None and max(moving.from_stage, moving.to_stage) == stage.number
    ):
        raise Refused(
            f"{context} is extracted (or its extraction has begun) as a {now}: `strangler"
            f" rollback {context}` first, then extract it with --target {target}"
        )
    chosen = {**state.targets, context: target}
    declared = conductor.home.workspace.migration()
    if (context in declared.serverless) == (target == "serverless"):
        del chosen[context]  # what the workspace file says: no choice to keep
    try:
        retargeted = declared.retargeted(chosen)
    except StageError as error:
        raise Refused(str(error)) from error

    def choose(state: MigrationState) -> None:
        state.targets = chosen  # type: ignore[assignment]
        state.record(f"{context} to be extracted as a {target}")

    conductor.update(choose)
    conductor.migration = retargeted


def rollback(conductor: Conductor, context: str) -> None:
    """Give `context` back to the monolith: from its stage to the one before, or undo a move of
    it that did not finish (either way)."""
    migration, state = conductor.migration, conductor.refresh()
    stage = migration.stage_extracting(context).number
    moving = state.moving
    if moving is not None and max(moving.from_stage, moving.to_stage) != stage:
        raise Refused(_under_way(conductor, moving))
    if moving is None and state.stage != stage:
        if state.stage < stage:
            raise Refused(f"{context} is not extracted (the system is at stage {state.stage})")
        later = migration.stage(state.stage)
        raise Refused(
            f"{context} is not the last thing extracted (the system is at {later.label}); roll"
            f" back in order, or `strangler stage goto {stage - 1}`"
        )
    _back(conductor, stage)


def goto(conductor: Conductor, stage: int) -> None:
    """Extract and roll back, one stage at a time, until the system is at `stage`."""
    conductor.migration.stage(stage)
    while True:
        state = conductor.refresh()
        moving, current = state.moving, state.stage
        if moving is None and current == stage:
            return
        if moving is not None:
            ahead = max(moving.from_stage, moving.to_stage)
            wants_back = (not moving.is_forward) or stage < ahead
            (_back if wants_back else _forward)(conductor, ahead)
        elif current < stage:
            _forward(conductor, current + 1)
        else:
            _back(conductor, current)


# How a move runs.


def _forward(conductor: Conductor, stage: int) -> None:
    """Into `stage` from the one before, gate by gate (resuming after the last passed)."""
    gates = gates_of(conductor, stage)
    conductor.emit(MoveBegan(stage - 1, stage, conductor.migration.stage(stage).label))
    moving = conductor.begin(stage - 1, stage)
    if not moving.is_forward:
        raise Refused(_under_way(conductor, moving))
    for gate in gates:
        if gate.name in moving.passed:
            conductor.emit(GateSkipped(gate.title))
            continue
        _pass(conductor, gate.name, gate.title, gate.run)
    _arrive(conductor, stage)


def _back(conductor: Conductor, stage: int) -> None:
    """Out of `stage` to the one before: the undo of every gate the move into it passed (all
    of them when it had finished), last first."""
    gates = {gate.name: gate for gate in gates_of(conductor, stage)}
    state = conductor.refresh()
    moving = state.moving
    if moving is not None and moving.is_forward:
        undoing = [*moving.passed, *([moving.started] if moving.started else [])]
    elif moving is None:
        undoing = list(gates)
    else:
        undoing = moving.undoing
    conductor.emit(MoveBegan(stage, stage - 1, conductor.migration.stage(stage).label))
    moving = conductor.begin(stage, stage - 1, undoing)
    for name in reversed(moving.undoing):
        gate = gates[name]
        if name in moving.passed:
            conductor.emit(GateSkipped(gate.undo_title))
            continue
        _pass(conductor, name, gate.undo_title, gate.undo)
    _arrive(conductor, stage - 1)


def _pass(
    conductor: Conductor, name: str, title: str, work: Callable[[], str | None]
) -> None:
    """Run one gate's work, recording it started and then passed; a failure is told (as a
    GateFailed) with what to do, and a surprise's traceback goes to the folder's log."""
    conductor.gate_started(name)
    began = time.monotonic()
    try:
        result = work()
    except GateFailed as failed:
        conductor.emit(GateStopped(title, failed.what, failed.todo))
        raise
    except Exception as error:  # any gate's surprise is this gate's failure, told plainly
        log = _log(conductor, name)
        surprise = GateFailed(
            f"{title} failed: {type(error).__name__}: {error}",
            f"run the same command again (the traceback is in {log})",
        )
        conductor.emit(GateStopped(title, surprise.what, surprise.todo))
        raise surprise from error
    conductor.gate_passed(name)
    conductor.emit(GatePassed(title, result, time.monotonic() - began))


def _arrive(conductor: Conductor, stage: int) -> None:
    conductor.finish(stage)
    conductor.emit(MoveFinished(stage, conductor.migration.stage(stage).title))


def _log(conductor: Conductor, gate: str) -> str:
    path = conductor.home.logs / "strangler.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log:
        log.write(f"{datetime.now(UTC).isoformat()} gate {gate} failed:\n")
        log.write(traceback.format_exc())
    return str(path)


def _under_way(conductor: Conductor, moving: Moving) -> str:
    later = conductor.migration.stage(max(moving.from_stage, moving.to_stage))
    context = later.extracts
    if context is None:
        what = "retiring the monolith" if moving.is_forward else "restoring the monolith"
    else:
        what = f"the {'extraction' if moving.is_forward else 'rollback'} of {context}"
    return (
        f"{what} (stage {moving.from_stage} -> {moving.to_stage}) is under way: run it again to"
        " finish it, or roll it back"
    )


def _next_step(context: str | None) -> str:
    return f"`strangler extract {context}`" if context else "`strangler stage goto` the next stage"
