"""Cutover and rollback of a context extracted to functions, with a bounded write freeze.

The same move as the SQL data path's (`strangler.datapath.cutover`), with the items on the
service's side. Cutover (monolith -> functions), under a freeze of the context's writes at the
proxy: drain the forward feed (the monolith's change log into the items) to zero lag; verify, key
by key, every row changed since the full verify that ran before the freeze (by counts and per-range
checksums, while writes went on) and every key it doubted; stop the forward feed; start the reverse
feed at the stream's current end (the table's stream back into the monolith's rows, so monolith
code that still reads them keeps working and rollback is instant); raise the items' id counters
past the copied ids; flip the routes to the functions (mode and data owner, atomically, fenced by
the freeze's lease); remove the forward capture; thaw. Rollback is the mirror image: drain the
reverse feed, verify, stop it, capture the monolith's tables again into a fresh forward feed over
items known equal, move the monolith's id sequences past the items' ids, flip back.

Every step before the flip is undone if anything fails (the old owner keeps the data). Each step is
recorded in the context's state row in the monolith's database (the same row as the SQL path's), so
a re-run resumes a move that stopped after its flip and undoes one that stopped before it. The
freeze is a lease renewed while this process works: if it dies, writes flow again within the lease
to the side the routes name, and the old feed, still there, carries them until the move is settled.
Reads never stop. This module must never serve HTTP nor edit the route table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strangler.datapath import state
from strangler.datapath.checks import MoveRefused
from strangler.datapath.contexts import Owner
from strangler.datapath.cutover import (
    DEFAULT_LEASE_SECONDS,
    FreezingMove,
    LeaseKeeper,
    MoveReport,
    Say,
)
from strangler.datapath.keys import Key
from strangler.datapath.positions import Position
from strangler.serverless.data import backfill, forward, reverse, sequences, verify
from strangler.serverless.data.link import ItemsLink
from strangler_proxy.client import ProxyAdmin

Keys = dict[str, set[Key]]  # rows by the monolith's table


@dataclass
class _Move(FreezingMove):
    """One move in progress: where it goes and what it reports."""

    link: ItemsLink
    proxy: ProxyAdmin
    to: Owner
    max_freeze_seconds: float
    say: Say
    report: MoveReport
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    lease: str | None = None
    keeper: LeaseKeeper | None = None
    mark: Position | reverse.Ends | None = None  # the old feed's place before the full verify
    doubtful: Keys = field(default_factory=dict)  # keys the full verify left in doubt
    stream_ends: reverse.Ends | None = None  # the stream's ends before the freeze (cutover)

    @property
    def name(self) -> str:
        return self.link.context

    def drain_old(self, timeout: float) -> int:
        """Apply what the feed toward the replica still holds."""
        if self.to is Owner.SERVICE:
            return forward.drain(self.link, timeout)
        return reverse.drain(self.link, timeout)


def cutover(
    link: ItemsLink,
    proxy: ProxyAdmin,
    max_freeze_seconds: float = 30.0,
    say: Say | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> MoveReport:
    """Move the context's data to its functions (see the module doc); raises MoveRefused."""
    return _move(link, proxy, Owner.SERVICE, max_freeze_seconds, say, lease_seconds)


def rollback(
    link: ItemsLink,
    proxy: ProxyAdmin,
    max_freeze_seconds: float = 30.0,
    say: Say | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> MoveReport:
    """Give the context's data back to the monolith, every write made on the items included."""
    return _move(link, proxy, Owner.MONOLITH, max_freeze_seconds, say, lease_seconds)


def resolve_interrupted(link: ItemsLink, proxy: ProxyAdmin, say: Say | None = None) -> str | None:
    """Finish a cutover or rollback that stopped after its flip, or undo one that stopped
    before it; what was done (None: no move was under way)."""
    now = state.read(link.monolith, link.context)
    if not now.operation:
        return None
    to = Owner.SERVICE if now.operation == "cutover" else Owner.MONOLITH
    move = _Move(link, proxy, to, 0.0, say or (lambda message: None), MoveReport(link.context, to))
    finished = _resumed(move)
    return f"{now.operation} {'finished' if finished else 'undone'} after a stop at {now.step!r}"


def _move(
    link: ItemsLink,
    proxy: ProxyAdmin,
    to: Owner,
    max_freeze_seconds: float,
    say: Say | None,
    lease_seconds: float,
) -> MoveReport:
    link.ensure_bookkeeping()
    report = MoveReport(link.context, to)
    move = _Move(
        link, proxy, to, max_freeze_seconds, say or (lambda message: None), report, lease_seconds
    )
    interrupted = state.read(link.monolith, link.context).operation
    if interrupted and interrupted != move.operation:
        resolve_interrupted(link, proxy, say)  # the other move, stopped half-way
    elif _resumed(move):
        return report
    _preflight(move)
    with move.step("catch up"):
        move.drain_old(max(60.0, max_freeze_seconds))
    with move.step("pre-verify"):
        move.mark = _mark(move)
        move.doubtful = _pre_verify(move)
        if move.to is Owner.SERVICE:  # where the reverse feed will start, read before the freeze
            move.stream_ends = reverse.stream_ends(link)
    return _frozen_move(move)


def _mark(move: _Move) -> Position | reverse.Ends:
    """Where the old feed stands before the full verify: whatever changes after it is verified
    again, key by key, under the freeze."""
    if move.to is Owner.SERVICE:
        stored = forward.read_position(move.link)
        if stored is None:
            raise MoveRefused(f"the forward feed of {move.name} was never started")
        return stored.position
    return reverse.stream_ends(move.link)


def _changed_since(move: _Move) -> Keys:
    """The rows changed since the mark, by the monolith's table."""
    if isinstance(move.mark, Position):
        return forward.keys_since(move.link, move.mark)
    assert move.mark is not None
    return reverse.keys_since(move.link, move.mark)


def _preflight(move: _Move) -> None:
    """Refuse early, before anything changes, when the move cannot work."""
    link, name = move.link, move.name
    if state.read(link.monolith, name).owner is move.to:
        raise MoveRefused(f"{name} is already owned by the {move.to.value}")
    if move.to is Owner.SERVICE:
        stored = forward.read_position(link)
        if stored is None or not stored.position.is_active:
            raise MoveRefused(f"the forward feed of {name} is not active: capture first")
        if not backfill.is_complete(link):
            raise MoveRefused(f"the backfill of {name} is not complete")
    elif not reverse.is_active(link):
        raise MoveRefused(f"the reverse feed of {name} is not active")


def _pre_verify(move: _Move) -> Keys:
    """Every table by counts and per-range checksums while writes go on; the keys that still
    differ after a few drains (they may be the writes' lag: the verify under the freeze
    checks them again, with every key changed since the mark)."""
    report = verify.verify(move.link)
    for _ in range(verify.SETTLE_ROUNDS):
        if report.is_equal:
            return {}
        move.drain_old(max(60.0, move.max_freeze_seconds))
        report = verify.verify_keys(move.link, _keys_of(report))
    doubtful = _keys_of(report)
    if doubtful:
        move.say(f"{sum(map(len, doubtful.values()))} keys still differ under live writes")
    return doubtful


def _keys_of(report: verify.ItemsReport) -> Keys:
    found: Keys = {}
    for difference in report.differences:
        found.setdefault(difference.table, set()).update(difference.keys)
    return found


def _verified_frozen(move: _Move) -> int:
    """Under the freeze, after the drain: every row changed since the mark and every key the
    full verify doubted, compared with its items; any difference refuses the move. The keys
    compared."""
    keys = _changed_since(move)
    for table, doubted in move.doubtful.items():
        keys.setdefault(table, set()).update(doubted)
    report = verify.verify_keys(move.link, keys)
    if not report.is_equal:
        shown = "; ".join(difference.describe() for difference in report.differences[:5])
        raise MoveRefused(f"the items and the monolith's rows differ under the freeze: {shown}")
    return sum(map(len, keys.values()))


def _frozen_move(move: _Move) -> MoveReport:
    def before_flip() -> None:
        with move.step("drain"):
            move.report.drained_entries = move.drain_old(move.max_freeze_seconds)
        with move.step("verify"):
            move.report.verified_keys = _verified_frozen(move)
        with move.step("switch feeds"):
            _switch_feeds(move)

    return move.frozen(before_flip, lambda: _finish(move), lambda: _undo(move))


def _switch_feeds(move: _Move) -> None:
    """Stop the old feed and start the new one, before any write can reach the new owner."""
    link = move.link
    move.record("switching feeds")
    if move.to is Owner.SERVICE:
        forward.set_active(link, False)
        reverse.start(link, move.stream_ends)
        sequences.raise_item_counters(link)
    else:
        reverse.set_active(link, False)
        forward.resume(link)
        sequences.advance_monolith_sequences(link)


def _finish(move: _Move) -> None:
    """After the flip: make sure nothing slipped past the freeze, then drop the old feed."""
    link = move.link
    if move.to is Owner.SERVICE:
        lag = forward.lag(link)
        leaked = lag.entries if lag is not None else 0
        forward.remove_capture(link)
    else:
        leaked = reverse.lag(link).records
    move.report.leaked_entries = leaked
    if leaked:
        move.say(f"warning: {leaked} writes reached the old owner after the freeze")


def _undo(move: _Move) -> None:
    """Before the flip: put the feeds back as they were; the old owner keeps the data."""
    link = move.link
    if move.to is Owner.SERVICE:
        reverse.stop(link)
        forward.set_active(link, True)
    else:
        forward.stop(link)
        reverse.set_active(link, True)
    move.record("", owner=move.to.other(), operation="")


def _resumed(move: _Move) -> bool:
    """Finish or undo a move of the same kind that was interrupted; True if finished."""
    now = state.read(move.link.monolith, move.name)
    if now.operation != move.operation:
        return False
    move.report.resumed = True
    # Its freeze was held by the command that stopped: end it now rather than when its lease
    # runs out. Writes then go where the routes say, and the old feed carries any.
    move.proxy.thaw(move.name, f"{move.operation} resumed")
    if move.proxy.owner_of(move.name) is move.to:
        _finish(move)
        move.record("", owner=move.to, operation="")
        return True
    _undo(move)
    return False
