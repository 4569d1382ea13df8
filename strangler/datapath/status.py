"""What `strangler data status` shows: every fact about a context's data path, gathered.

Ownership and any move under way (the state row), which captures are installed, how far the
backfill got, and each live feed's lag. This module must never change anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from strangler.datapath import apply, backfill, capture, state
from strangler.datapath.change_log import Lag
from strangler.datapath.contexts import Direction
from strangler.datapath.link import Link
from strangler.datapath.state import ContextState


@dataclass
class ContextStatus:
    state: ContextState
    capturing: list[str] = field(default_factory=list)  # "forum forward", "forum-authors ..."
    backfill: list[backfill.TableReport] = field(default_factory=list)
    lags: dict[str, Lag] = field(default_factory=dict)

    @property
    def is_backfilled(self) -> bool:
        return bool(self.backfill) and all(table.is_complete for table in self.backfill)


def describe(link: Link) -> ContextStatus:
    """The context's data path as it stands (creates nothing, changes nothing)."""
    found = ContextStatus(state.read(link.monolith, link.context.name))
    for direction in Direction:
        for feed in capture.feeds_flowing(link.context, direction):
            if capture.is_installed(link.source(direction), feed, direction):
                found.capturing.append(f"{feed.name} {direction.value}")
    found.backfill = backfill.checkpoints_of(link)
    if _has_positions(link):
        try:
            found.lags = apply.lags(link, link.context.directions(found.state.owner))
        except SQLAlchemyError:  # a feed whose log is gone (its database was replaced)
            found.lags = {}
    return found


def _has_positions(link: Link) -> bool:
    from strangler.datapath.tables import positions

    for engine in (link.monolith, link.service):
        with engine.connect() as connection:
            if not connection.dialect.has_table(connection, positions.name):
                return False
    return True
