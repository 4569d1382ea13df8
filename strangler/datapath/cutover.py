"""Cutover and rollback: move a context's data ownership, with a bounded write freeze.

Cutover (monolith -> service), under a freeze of the context's writes at the proxy:
drain the forward feed to zero lag; verify the keys it applied since the full pre-verify (and
any range that verify still doubted); stop the forward feed; start the reverse feed (capture on
the service's tables, applied to the monolith's, so monolith code that still reads them keeps
working and rollback is instant); move the service's id sequences past the copied ids; run the
context's pre-flip hook; flip its routes to the service (mode and data owner, atomically);
remove the forward capture; thaw. Rollback is the mirror image with the feeds swapped, and
verifies every key the reverse feed applied since cutover. Reads never stop: only writes wait.

Every step before the flip is undone if anything fails (the monolith keeps owning the data);
the state row records the step, so a re-run resumes or undoes an interrupted move
(`resolve_interrupted`). The freeze is a lease this process renews while it works: if it dies,
the proxy lets writes flow again within the lease, to whichever side the routes name, and the
old feeds are still there to carry them until the move is resumed or undone. The flip is
fenced by the lease: the proxy moves the owner only while this very freeze holds, so a freeze
that ended early (a stalled process, a restarted proxy) can never let writes reach the old
owner after the feeds switched. This module must never serve HTTP nor edit the route table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from strangler.datapath import apply, capture, change_log, checks, positions, rows, state, verify
from strangler.datapath.checks import MoveRefused
from strangler.datapath.contexts import Direction, Owner
from strangler.datapath.link import Link
from strangler.datapath.state import ContextState
from strangler_proxy.client import ProxyAdmin, ProxyAdminError

FLIP_MARGIN_SECONDS = 2.0
DEFAULT_LEASE_SECONDS = 5.0
Say = Callable[[str], None]


class LeaseKeeper:
    """Renews a freeze's lease from a thread, a third of its length apart, until stopped; a
    renewal the proxy refuses means the freeze is over, and `is_lost` says so."""

    def __init__(self, proxy: ProxyAdmin, context: str, lease: str, seconds: float) -> None:
        self.proxy, self.context, self.lease, self.seconds = proxy, context, lease, seconds
        self.lost: str | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=self.seconds)

    def _renew(self) -> None:
        while not self._stopping.wait(self.seconds / 3):
            try:
                self.proxy.renew(self.context, self.lease)
            except ProxyAdminError as error:
                self.lost = str(error)
                return



@dataclass
class MoveReport:
    """What a cutover or rollback did, and how long each step took (seconds)."""

    context: str
    owner: Owner
    freeze_seconds: float = 0.0  # freeze to thaw, by the proxy's clock
    steps: dict[str, float] = field(default_factory=dict)
    drained_entries: int = 0
    verified_keys: int = 0
    leaked_entries: int = 0  # writes that reached the old owner after the flip (should be 0)
    resumed: bool = False


class FreezingMove:
    """A cutover or a rollback under a write freeze, whatever its data path: this module's
    (SQL to SQL) and the items' of a context extracted to functions
    (`strangler.serverless.data.cutover`) are both one. Its steps are timed and recorded in
    the context's state row in the monolith's database; `frozen` runs the part under the
    freeze, the flip fenced by the freeze's lease."""

    link: Any  # the data path's link: it has the monolith's engine as `monolith`
    proxy: ProxyAdmin
    to: Owner
    max_freeze_seconds: float
    say: Say
    report: MoveReport
    lease_seconds: float
    lease: str | None
    keeper: LeaseKeeper | None

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def operation(self) -> str:
        return "cutover" if self.to is Owner.SERVICE else "rollback"

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.say(name)
        started = time.perf_counter()
        yield
        self.report.steps[name] = self.report.steps.get(name, 0.0) + time.perf_counter() - started

    def record(self, step: str, owner: Owner | None = None, operation: str | None = None) -> None:
        now = state.read(self.link.monolith, self.name)
        state.write(
            self.link.monolith,
            ContextState(
                self.name,
                owner or now.owner,
                self.operation if operation is None else operation,
                step,
                self.report.freeze_seconds or now.last_freeze_seconds,
            ),
        )

    def frozen(
        self, before_flip: Callable[[], None], after_flip: Callable[[], None],
        undo: Callable[[], None],
    ) -> MoveReport:  # fmt: skip
        """Freeze the context's writes, run `before_flip` (drain, verify, switch the feeds),
        flip the routes and the owner, run `after_flip`, thaw. Anything failing before the
        flip runs `undo`; the thaw happens whatever fails."""
        name = self.name
        reason = f"{self.operation} of {name}"
        self.record("freezing")
        try:
            with self.step("freeze"):
                frozen = self.proxy.freeze(
                    name, self.max_freeze_seconds, reason, self.lease_seconds
                )
        except ProxyAdminError as error:
            self.record("", operation="")
            raise MoveRefused(f"the proxy did not freeze the writes of {name}: {error}") from error
        self.lease = frozen.lease or None
        if self.lease:
            self.keeper = LeaseKeeper(self.proxy, name, self.lease, frozen.lease_seconds).start()
        is_flipped = False
        try:
            before_flip()
            with self.step("flip routes"):
                flip(self, reason)
                is_flipped = True
            with self.step("finish"):
                after_flip()
        except Exception:
            if not is_flipped:
                undo()
            raise
        finally:
            if self.keeper is not None:
                self.keeper.stop()
            self.report.freeze_seconds = thaw(self, reason)
        self.record("", owner=self.to, operation="")
        return self.report


@dataclass
class _Move(FreezingMove):
    """One move in progress: where it goes and what it reports."""

    link: Link
    proxy: ProxyAdmin
    to: Owner
    max_freeze_seconds: float
    say: Say
    report: MoveReport
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    lease: str | None = None
    keeper: LeaseKeeper | None = None

    @property
    def name(self) -> str:
        return self.link.context.name

    @property
    def old(self) -> Direction:  # the feed that flows now, toward the replica
        return Direction.FORWARD if self.to is Owner.SERVICE else Direction.REVERSE

    @property
    def new(self) -> Direction:
        return Direction.REVERSE if self.to is Owner.SERVICE else Direction.FORWARD


def cutover(
    link: Link,
    proxy: ProxyAdmin,
    max_freeze_seconds: float = 30.0,
    chunk_rows: int = verify.DEFAULT_CHUNK_ROWS,
    say: Say | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> MoveReport:
    """Move the context's data to its service (see the module doc); raises MoveRefused."""
    move = _begin(link, proxy, Owner.SERVICE, max_freeze_seconds, say, lease_seconds)
    if move is None:
        return MoveReport(link.context.name, Owner.SERVICE, resumed=True)
    with move.step("pre-verify"):
        doubtful = checks.pre_verify(link, chunk_rows)
    with move.step("verify changes"):
        doubtful = checks.narrow(link, Direction.FORWARD, doubtful)
    return _frozen_move(move, doubtful)


def rollback(
    link: Link,
    proxy: ProxyAdmin,
    max_freeze_seconds: float = 30.0,
    say: Say | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> MoveReport:
    """Give the context's data back to the monolith, every service-side write included."""
    move = _begin(link, proxy, Owner.MONOLITH, max_freeze_seconds, say, lease_seconds)
    if move is None:
        return MoveReport(link.context.name, Owner.MONOLITH, resumed=True)
    with move.step("verify changes"):
        doubtful = checks.narrow(link, Direction.REVERSE, [])
    return _frozen_move(move, doubtful)


def resolve_interrupted(link: Link, proxy: ProxyAdmin, say: Say | None = None) -> str | None:
    """Finish a cutover or rollback of the context that stopped after its flip, or undo one
    that stopped before it; what was done (None: no move was under way)."""
    now = state.read(link.monolith, link.context.name)
    if not now.operation:
        return None
    to = Owner.SERVICE if now.operation == "cutover" else Owner.MONOLITH
    move = _Move(link, proxy, to, 0.0, say or (lambda message: None), MoveReport(now.context, to))
    finished = _resumed(move)
    return f"{now.operation} {'finished' if finished else 'undone'} after a stop at {now.step!r}"


def _begin(
    link: Link,
    proxy: ProxyAdmin,
    to: Owner,
    max_freeze_seconds: float,
    say: Say | None,
    lease_seconds: float,
) -> _Move | None:
    """Settle an interrupted move first (None: this very move, now finished), check, and
    catch up."""
    report = MoveReport(link.context.name, to)
    move = _Move(
        link, proxy, to, max_freeze_seconds, say or (lambda message: None), report, lease_seconds
    )
    interrupted = state.read(link.monolith, link.context.name).operation
    if interrupted and interrupted != move.operation:
        resolve_interrupted(link, proxy, say)  # the other move, stopped half-way
    elif _resumed(move):
        return None
    checks.preflight(link, proxy, to)
    with move.step("catch up"):
        apply.drain(link, link.context.directions(to.other()))
    return move


def _frozen_move(move: _Move, doubtful: list[verify.Difference]) -> MoveReport:
    link = move.link

    def before_flip() -> None:
        with move.step("drain"):
            old_feeds = link.context.directions(move.to.other())
            drained = apply.drain(link, old_feeds, timeout=move.max_freeze_seconds)
            move.report.drained_entries = sum(drained.entries.values())
        with move.step("verify"):
            move.report.verified_keys = checks.verify_frozen(link, move.old, doubtful)
        with move.step("switch feeds"):
            _switch_feeds(move)
        if move.to is Owner.SERVICE and link.context.before_flip is not None:
            with move.step("pre-flip hook"):
                link.context.before_flip(link.service, link.service_settings)

    return move.frozen(before_flip, lambda: _finish(move), lambda: _undo(move))


def thaw(move: FreezingMove, reason: str) -> float:
    """Thaw (the freeze would end by itself at its maximum if the proxy cannot be told)."""
    try:
        return move.proxy.thaw(move.name, f"{reason}: done", move.lease) or 0.0
    except ProxyAdminError as error:
        move.say(f"warning: could not thaw ({error}); the freeze ends at its maximum")
        return 0.0


def _switch_feeds(move: _Move) -> None:
    """Stop the old feed and start the new one, before any write can reach the new owner."""
    link, main = move.link, move.link.context.main
    move.record("switching feeds")
    positions.change(link.target(move.old), main.position_key(move.old), is_active=False)
    capture.install(link.source(move.new), main, move.new)  # the log exists before the position
    positions.reset(
        link.target(move.new),
        main.position_key(move.new),
        is_tracking=move.new is Direction.REVERSE,
    )
    with link.source(move.new).begin() as connection:  # the new owner's tables
        for table in main.tables:
            rows.advance_sequences(connection, link.context.source_table(table, move.new))


def flip(move: FreezingMove, reason: str) -> None:
    """Move the routes and the data's owner, only while this move's freeze holds with a
    margin left (the proxy also refuses it unless the lease is this freeze's)."""
    name = move.name
    if move.keeper is not None and move.keeper.lost is not None:
        raise MoveRefused(f"the freeze of {name} ended before the flip ({move.keeper.lost})")
    frozen = [f for f in move.proxy.freezes() if f["context"] == name]
    if not frozen or float(frozen[0]["thaws_in_seconds"]) < margin(move):
        raise MoveRefused(
            f"the freeze of {name} is ending (or ended) before the flip; nothing moved: "
            "allow a longer freeze (--max-freeze)"
        )
    move.proxy.move(name, move.to, reason, move.lease)  # refused unless this freeze holds
    move.record("flipped")


def margin(move: FreezingMove) -> float:
    """What must be left of the freeze at the flip: the flip takes one admin call; a lease
    being renewed has a third of its length left at the worst moment."""
    if move.keeper is not None:
        return min(FLIP_MARGIN_SECONDS, move.keeper.seconds / 4)
    return FLIP_MARGIN_SECONDS


def _finish(move: _Move) -> None:
    """After the flip: make sure nothing slipped past the freeze, then drop the old capture."""
    link, main = move.link, move.link.context.main
    position = positions.current(link.target(move.old), main.position_key(move.old))
    if position is not None:
        leaked = change_log.lag(link.source(move.old), main.name, position).entries
        move.report.leaked_entries = leaked
        if leaked:
            move.say(f"warning: {leaked} writes reached the old owner after the freeze")
    capture.remove(link.source(move.old), main, move.old)


def _undo(move: _Move) -> None:
    """Before the flip: put the feeds back as they were; the old owner keeps the data."""
    link, main = move.link, move.link.context.main
    capture.remove(link.source(move.new), main, move.new)
    positions.change(link.target(move.new), main.position_key(move.new), is_active=False)
    old = main.position_key(move.old)
    if move.old is Direction.FORWARD:  # a later cutover tracks afresh; stop filling the table
        positions.change(link.target(move.old), old, is_active=True, is_tracking=False)
    else:  # the reverse feed keeps every key since cutover, for rollback's verify
        positions.change(link.target(move.old), old, is_active=True)
    move.record("", owner=move.to.other(), operation="")


def _resumed(move: _Move) -> bool:
    """Finish or undo a move of the same kind that was interrupted; True if finished."""
    now = state.read(move.link.monolith, move.link.context.name)
    if now.operation != move.operation:
        return False
    move.report.resumed = True
    # Its freeze was held by the command that stopped (only one moves a migration at a time):
    # end it now rather than when its lease runs out. Writes then go where the routes say,
    # and the old owner's capture, still installed, carries any until the move is settled.
    move.proxy.thaw(move.link.context.name, f"{move.operation} resumed")
    if move.proxy.owner_of(move.link.context.name) is move.to:
        _finish(move)
        move.record("", owner=move.to, operation="")
        return True
    _undo(move)
    return False
