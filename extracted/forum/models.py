"""The forum service's own schema: threads, posts, the authors replica, outbox and consumer
bookkeeping, SQLAlchemy 2.0 typed mappings.

`threads` and `posts` have the monolith's columns exactly, so a backfill copies rows unchanged.
`authors` is not the forum's data: it is a read replica of users' (id, display_name), fed by
users events (see `events`), so a post shows its author's name without a call to the users
service. A write by an author it lacks reads them through from the users service first (see
`service`); still no foreign key to it: the replica may be emptied and rebuilt by a replay.
`migrations/forum` creates these tables; a test checks that the two never drift apart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, foreign, mapped_column, relationship

from strangler.events.outbox import outbox_table
from strangler.events.tables import consumer_tables
from strangler.plumbing.clock import utcnow
from strangler.plumbing.database import NAMING_CONVENTION, Id


class Base(DeclarativeBase):
    # Named constraints, so that later migrations (batch mode on SQLite) can address them.
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Author(Base):
    """A user as the forum knows them: a replica row, written by a users event or, for a writer
    no event has reached yet, by the write's read-through (never over an existing row)."""

    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    display_name: Mapped[str] = mapped_column(String(64))
    # True until a users event confirmed the name (a write may come before the event).
    is_provisional: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Thread(Base):
    __tablename__ = "threads"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(Id, index=True)
    post_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[Author | None] = relationship(
        primaryjoin=lambda: foreign(Thread.author_id) == Author.id, lazy="joined", viewonly=True
    )

    @property
    def author_name(self) -> str | None:
        """The author's name in the replica; None when it does not know them yet."""
        return self.author.display_name if self.author is not None else None


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_thread_id_id", "thread_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    thread_id: Mapped[int] = mapped_column(Id, ForeignKey("threads.id"))
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(Id, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[Author | None] = relationship(
        primaryjoin=lambda: foreign(Post.author_id) == Author.id, lazy="joined", viewonly=True
    )

    @property
    def author_name(self) -> str | None:
        """The author's name in the replica; None when it does not know them yet."""
        return self.author.display_name if self.author is not None else None


outbox = outbox_table(Base.metadata)
consumed = consumer_tables(Base.metadata)
