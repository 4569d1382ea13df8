"""The users service's own schema: users and the outbox, SQLAlchemy 2.0 typed mappings.

The table has the monolith's `users` columns exactly, so a backfill copies rows unchanged and
the Argon2 hashes keep verifying. `migrations/users` creates these tables; a test checks that
the two never drift apart. Nothing here knows HTTP.
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


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(64))
    bio: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


outbox = outbox_table(Base.metadata)
