"""The cutover gate: a short write freeze while the context's data and its routes change owner.

Its run is the data path's cutover; its undo is the data path's rollback (which gives every
write made on the service's side back to the monolith). Both first settle a move of the other
kind that stopped half-way (finished if its routes flipped, undone if not), so whatever crash
came before, the context ends with one owner and its writes routed to it. The freeze's window
is written to the state before the freeze is asked for, so anyone can tell a write the freeze
held from a failure. This module must never decide what comes before or after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates.base import GateFailed
from strangler.datapath import apply, cutover, status
from strangler.datapath.cutover import MoveRefused, MoveReport
from strangler.datapath.link import Link
from strangler.state import FreezeWindow, MigrationState, now
from strangler_proxy.client import ProxyAdmin, ProxyAdminError
from strangler_proxy.table import DataOwner

Move = Callable[..., MoveReport]


@dataclass(frozen=True)
class Cutover:
    """Freeze the context's writes, move its data's owner and its routes, thaw."""

    conductor: Conductor
    context: str
    name: str = "cutover"
    title: str = "cut over: freeze its writes, move the data's owner and its routes"
    undo_title: str = "give its data and routes back to the monolith (a short write freeze)"

    def run(self) -> str:
        return self._move(cutover.cutover, DataOwner.SERVICE)

    def undo(self) -> str:
        return self._move(cutover.rollback, DataOwner.MONOLITH)

    def _move(self, move: Move, to: DataOwner) -> str:
        conductor, context = self.conductor, self.context
        # A freeze holds at the Python proxy only: under nginx, wait until nginx sends every
        # request of the context there before anything asks for one.
        conductor.through_proxy(context)
        with conductor.link(context) as link, conductor.admin() as admin:
            settled = _settle(link, admin, conductor)
            if status.describe(link).state.owner is to:
                return settled or f"its data is the {to.value}'s already"
        window = FreezeWindow(context=context, started_at=now())
        conductor.update(lambda state: state.freezes.append(window))
        try:
            with conductor.link(context) as link, conductor.admin() as admin:
                report = move(
                    link, admin, max_freeze_seconds=conductor.settings.max_freeze_seconds,
                    say=conductor.say, lease_seconds=conductor.settings.freeze_lease_seconds,
                )  # fmt: skip
        except (MoveRefused, ProxyAdminError, apply.DrainTimeout) as error:
            raise GateFailed(str(error), "fix the cause and run the same command again") from error
        finally:
            conductor.update(lambda state: _ended(state, window))
        conductor.update(lambda state: _frozen_for(state, window, report.freeze_seconds))
        if report.leaked_entries:
            raise GateFailed(
                f"{report.leaked_entries} writes reached the old owner after the freeze",
                f"the routes moved; `strangler data verify {context}` shows what differs",
            )
        owner = "the service" if to is DataOwner.SERVICE else "the monolith"
        checked = f"{report.verified_keys:,} changed keys verified" if report.verified_keys else (
            "no key changed since the last verify"
        )
        return f"{owner} owns it; writes held for {report.freeze_seconds * 1000:.0f} ms; {checked}"


def _settle(link: Link, admin: ProxyAdmin, conductor: Conductor) -> str | None:
    """Finish or undo a cutover or rollback a crash left half-done."""
    try:
        return cutover.resolve_interrupted(link, admin, conductor.say)
    except (MoveRefused, ProxyAdminError) as error:
        raise GateFailed(
            f"a move of {link.context.name} stopped half-way and could not be settled: {error}",
            "fix the cause and run the same command again",
        ) from error


def _ended(state: MigrationState, window: FreezeWindow) -> None:
    for found in state.freezes:
        if found.context == window.context and found.started_at == window.started_at:
            found.ended_at = now()


def _frozen_for(state: MigrationState, window: FreezeWindow, seconds: float) -> None:
    for found in state.freezes:
        if found.context == window.context and found.started_at == window.started_at:
            found.frozen_seconds = seconds
