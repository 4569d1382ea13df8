"""The schemas of the data-path suite's `library` workspace: every shape a real schema has.

Both sides, as SQLAlchemy metadata: a table keyed by a UUID (`accounts`), one keyed by text
(`tags`), an integer key with a nullable reference to another table and one to itself
(`documents`), an association table with a composite key of two references and no surrogate
key (`document_tags`), and a composite key of two integers (`revisions`). Timestamps with and
without a time zone, text, binary, booleans. Between the sides: a renamed column
(`documents.title` is the service's `heading`), a column only the monolith has
(`accounts.legacy_flags`, with a server default) and columns only the service has
(`accounts.imported_at`, a model default; `tags.origin`, given by the workspace). On
PostgreSQL the service's tag slugs sort under an ICU collation, not by code point.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
)

from strangler.plumbing.clock import utcnow

monolith = MetaData()

Table(
    "accounts",
    monolith,
    Column("id", Uuid, primary_key=True),
    Column("handle", String(80), nullable=False),
    Column("display_name", Text, nullable=False),
    Column("joined_at", DateTime(timezone=True), nullable=False),
    Column("legacy_flags", Integer, nullable=False, server_default="0"),
)
Table(
    "tags",
    monolith,
    Column("slug", String(64), primary_key=True),
    Column("label", Text, nullable=False),
)
Table(
    "documents",
    monolith,
    Column("id", Integer, primary_key=True),
    Column("account_id", Uuid, ForeignKey("accounts.id"), nullable=True),
    Column("parent_id", Integer, ForeignKey("documents.id"), nullable=True),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("attachment", LargeBinary, nullable=True),
    Column("edited_at", DateTime, nullable=False),
    Column("is_public", Boolean, nullable=False),
)
Table(
    "document_tags",
    monolith,
    Column("document_id", Integer, ForeignKey("documents.id"), primary_key=True),
    Column("tag_slug", String(64), ForeignKey("tags.slug"), primary_key=True),
)
Table(
    "revisions",
    monolith,
    Column("document_id", Integer, ForeignKey("documents.id"), primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("note", Text, nullable=False),
    Column("made_at", DateTime(timezone=True), nullable=False),
)

service = MetaData()
SLUG = String(64).with_variant(String(64, collation="und-x-icu"), "postgresql")

Table(
    "accounts",
    service,
    Column("id", Uuid, primary_key=True),
    Column("handle", String(80), nullable=False),
    Column("display_name", Text, nullable=False),
    Column("joined_at", DateTime(timezone=True), nullable=False),
    Column("imported_at", DateTime, nullable=False, default=utcnow),
)
Table(
    "tags",
    service,
    Column("slug", SLUG, primary_key=True),
    Column("label", Text, nullable=False),
    Column("origin", String(16), nullable=False),
)
Table(
    "documents",
    service,
    Column("id", Integer, primary_key=True),
    Column("account_id", Uuid, ForeignKey("accounts.id"), nullable=True),
    Column("parent_id", Integer, ForeignKey("documents.id"), nullable=True),
    Column("heading", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("attachment", LargeBinary, nullable=True),
    Column("edited_at", DateTime, nullable=False),
    Column("is_public", Boolean, nullable=False),
)
Table(
    "document_tags",
    service,
    Column("document_id", Integer, ForeignKey("documents.id"), primary_key=True),
    Column("tag_slug", SLUG, ForeignKey("tags.slug"), primary_key=True),
)
Table(
    "revisions",
    service,
    Column("document_id", Integer, ForeignKey("documents.id"), primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("note", Text, nullable=False),
    Column("made_at", DateTime(timezone=True), nullable=False),
)
