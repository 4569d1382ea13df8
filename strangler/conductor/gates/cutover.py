"""The cutover gate: a short write freeze while the context's data and its routes change owner.

Its run is the data path's cutover; its undo is the data path's rollback (which gives every write
made on the service's side back to the monolith): the SQL data path's, or the items' for a context
extracted to functions (`strangler.serverless.data.cutover`). Both first settle a move of the other
kind that stopped half-way (finished if its routes flipped, undone if not), so whatever crash came
before, the context ends with one owner and its writes routed to it. The freeze's window is written
to the state before the freeze is asked for, so anyone can tell a write the freeze held from a
failure. This module must never decide what comes before or after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates.base import GateFailed
from strangler.datapath import apply, cutover
from strangler.datapath.cutover import MoveRefused, MoveReport
from strangler.datapath.state import read as state_of
from strangler.serverless.data import forward, reverse
from strangler.state import FreezeWindow, MigrationState, now
from strangler_proxy.client import ProxyAdmin, ProxyAdminError
from strangler_proxy.table import DataOwner

Move = Callable[..., MoveReport]
DRAIN_TIMEOUTS = (apply.DrainTimeout, forward.DrainTimeout, reverse.DrainTimeout)


@dataclass(frozen=True)
class Cutover:
    """Freeze the context's writes, move its data's owner and its routes, thaw."""

    conductor: Conductor
    context: str
    name: str = "cutover"
    title: str = "cut over: freeze its writes, move the data's owner and its routes"
    undo_title: str = "give its data and routes back to the monolith (a short write freeze)"

    def run(self) -> str:
        return self._move(DataOwner.SERVICE)

    def undo(self) -> str:
        return self._move(DataOwner.MONOLITH)

    def _move(self, to: DataOwner) -> str:
        conductor, context = self.conductor, self.context
        path = _data_path(conductor, context)
        # A freeze holds at the Python proxy only: under nginx, wait until nginx sends every
        # request of the context there before anything asks for one.
        conductor.through_proxy(context)
        with path.link() as link, conductor.admin() as admin:
            settled = _settle(path, link, admin, conductor)
            if state_of(link.monolith, context).owner is to:
                return settled or f"its data is the {to.value}'s already"
        window = FreezeWindow(context=context, started_at=now())
        conductor.update(lambda state: state.freezes.append(window))
        move = path.cutover if to is DataOwner.SERVICE else path.rollback
        try:
            with path.link() as link, conductor.admin() as admin:
                report = move(
                    link, admin, max_freeze_seconds=conductor.settings.max_freeze_seconds,
                    say=conductor.say, lease_seconds=conductor.settings.freeze_lease_seconds,
                )  # fmt: skip
        except (MoveRefused, ProxyAdminError, *DRAIN_TIMEOUTS) as error:
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


@dataclass(frozen=True)
class _DataPath:
    """The data path a context's data moves on: SQL to its service's database, or its items
    when it runs as functions; both keep their move's state in the monolith's database."""

    link: Callable[[], Any]  # a context manager: `strangler.datapath.link.Link` or an ItemsLink
    cutover: Move
    rollback: Move
    resolve_interrupted: Callable[..., str | None]


def _data_path(conductor: Conductor, context: str) -> _DataPath:
    if context in conductor.migration.serverless:
        from strangler.serverless.data import cutover as items

        return _DataPath(
            lambda: conductor.items_link(context), items.cutover, items.rollback,
            items.resolve_interrupted,
        )  # fmt: skip
    return _DataPath(
        lambda: conductor.link(context), cutover.cutover, cutover.rollback,
        cutover.resolve_interrupted,
    )  # fmt: skip


def _settle(path: _DataPath, link: Any, admin: ProxyAdmin, conductor: Conductor) -> str | None:
    """Finish or undo a cutover or rollback a crash left half-done."""
    try:
        return path.resolve_interrupted(link, admin, conductor.say)
    except (MoveRefused, ProxyAdminError) as error:
        raise GateFailed(
            f"a move of its data stopped half-way and could not be settled: {error}",
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
