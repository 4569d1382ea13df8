"""The polls service's own schema: polls, options, votes, the outbox, and the results projection
with its consumer bookkeeping (SQLAlchemy 2.0).

Columns of `polls`, `poll_options` and `votes` match the monolith's tables so a backfill copies
rows unchanged; `poll_results` is this service's alone (see `projection`). `author_id` and
`user_id` name users of another context, so they are plain ids without a foreign key: this
database has no users table. `migrations/polls` creates these tables; a test checks that the
two never drift apart. Nothing here knows HTTP.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from strangler.events.outbox import outbox_table
from strangler.events.tables import consumer_tables
from strangler.plumbing.clock import utcnow
from strangler.plumbing.database import NAMING_CONVENTION, Id


class Base(DeclarativeBase):
    # Named constraints, so that later migrations (batch mode on SQLite) can address them.
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Poll(Base):
    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    question: Mapped[str] = mapped_column(String(300))
    author_id: Mapped[int] = mapped_column(Id, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    options: Mapped[list[PollOption]] = relationship(
        lazy="selectin", order_by="PollOption.position", back_populates="poll"
    )


class PollOption(Base):
    __tablename__ = "poll_options"
    __table_args__ = (UniqueConstraint("poll_id", "position"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    poll_id: Mapped[int] = mapped_column(Id, ForeignKey("polls.id"))
    position: Mapped[int]
    text: Mapped[str] = mapped_column(String(100))

    poll: Mapped[Poll] = relationship(back_populates="options")


class Vote(Base):
    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("poll_id", "user_id"),
        Index("ix_votes_option_id", "option_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    poll_id: Mapped[int] = mapped_column(Id, ForeignKey("polls.id"))
    option_id: Mapped[int] = mapped_column(Id, ForeignKey("poll_options.id"))
    user_id: Mapped[int] = mapped_column(Id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PollResult(Base):
    """One option's count in the results projection, as of when its poll was last recomputed.

    A poll's total is the sum of its rows; every row of a poll shares one `as_of`.
    """

    __tablename__ = "poll_results"

    # Derived rows never stand in the way of a change to the rows they count.
    poll_id: Mapped[int] = mapped_column(
        Id, ForeignKey("polls.id", ondelete="CASCADE"), primary_key=True
    )
    option_id: Mapped[int] = mapped_column(
        Id, ForeignKey("poll_options.id", ondelete="CASCADE"), primary_key=True
    )
    votes: Mapped[int]
    as_of: Mapped[datetime]


outbox = outbox_table(Base.metadata)
consumed = consumer_tables(Base.metadata)
