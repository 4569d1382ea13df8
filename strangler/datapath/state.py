"""Where each context stands: who owns its data, and any cutover or rollback under way.

One row per context in the monolith's database (`strangler_contexts`), written at each step of
a cutover or rollback so that an interrupted one can be resumed and `status` can show it. The
facts it summarises live elsewhere (capture triggers, positions, checkpoints, the proxy's
routes); this row never overrides them. This module must never move data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select

from strangler.datapath import tables
from strangler.datapath.contexts import Owner

IDLE = ""


@dataclass(frozen=True)
class ContextState:
    context: str
    owner: Owner = Owner.MONOLITH
    operation: str = IDLE  # "cutover" or "rollback" while one is under way
    step: str = IDLE
    last_freeze_seconds: float | None = None


def read(monolith: Engine, context: str) -> ContextState:
    """The context's state; a context never cut over is owned by the monolith."""
    with monolith.connect() as connection:
        if not connection.dialect.has_table(connection, tables.contexts.name):
            return ContextState(context)
        row = connection.execute(
            select(tables.contexts).where(tables.contexts.c.context == context)
        ).first()
    if row is None:
        return ContextState(context)
    return ContextState(context, Owner(row.owner), row.operation, row.step, row.last_freeze_seconds)


def write(monolith: Engine, state: ContextState) -> None:
    with monolith.begin() as connection:
        connection.execute(
            delete(tables.contexts).where(tables.contexts.c.context == state.context)
        )
        connection.execute(
            insert(tables.contexts).values(
                context=state.context,
                owner=state.owner.value,
                operation=state.operation,
                step=state.step,
                last_freeze_seconds=state.last_freeze_seconds,
                updated_at=time.time(),
            )
        )
