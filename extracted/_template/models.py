"""The template service's own schema: notes and the outbox, SQLAlchemy 2.0 typed mappings.

`alembic/` creates these tables; the template's tests check that the two never drift apart.
Nothing here knows HTTP.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from strangler.events.outbox import outbox_table
from strangler.plumbing.clock import utcnow
from strangler.plumbing.database import NAMING_CONVENTION, Id


class Base(DeclarativeBase):
    # Named constraints, so that later migrations (batch mode on SQLite) can address them.
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    text: Mapped[str] = mapped_column(String(500))
    author_id: Mapped[int] = mapped_column(Id, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


outbox = outbox_table(Base.metadata)
