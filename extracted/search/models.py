"""The search service's own schema: the indexed documents and the consumer bookkeeping.

A `Document` is one searchable thing, a thread or a post, denormalised for display (a post
carries its thread's title). `heading` and `body` are what the full-text index reads: a
thread's title and body, a post's body only (a post is not found by its thread's title, as in
the monolith). The index itself is backend-specific and created by `migrations/search` only:
on SQLite the FTS5 table `documents_fts` (kept in step by triggers), on PostgreSQL the
generated `documents.search_vector` tsvector column with a GIN index. Neither can be a
SQLAlchemy model, so `is_modelled` tells alembic's comparison to leave them out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from strangler.events.tables import consumer_tables
from strangler.plumbing.database import NAMING_CONVENTION, Id

FTS_TABLE = "documents_fts"
VECTOR_COLUMN = "search_vector"
VECTOR_INDEX = "ix_documents_search_vector"


class Base(DeclarativeBase):
    # Named constraints, so that later migrations (batch mode on SQLite) can address them.
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("kind", "source_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    source_id: Mapped[int] = mapped_column(Id)
    thread_id: Mapped[int] = mapped_column(Id, index=True)
    title: Mapped[str] = mapped_column(String(200))
    heading: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


consumed = consumer_tables(Base.metadata)


def is_modelled(name: str | None, type_: str, _: Any) -> bool:
    """alembic `include_name`: skip the full-text objects the models cannot describe."""
    if type_ == "table" and name is not None and name.startswith(FTS_TABLE):
        return False
    return not (type_ == "column" and name == VECTOR_COLUMN) and not (
        type_ == "index" and name == VECTOR_INDEX
    )
