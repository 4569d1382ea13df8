"""The monolith's one schema: every context's tables, SQLAlchemy 2.0 typed mappings.

The alembic environment in `migrations/monolith` creates exactly these tables; a test checks
that the two never drift apart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

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


class Thread(Base):
    __tablename__ = "threads"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id"), index=True)
    post_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_thread_id_id", "thread_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    thread_id: Mapped[int] = mapped_column(Id, ForeignKey("threads.id"))
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class Poll(Base):
    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    question: Mapped[str] = mapped_column(String(300))
    author_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id"), index=True)
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
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
