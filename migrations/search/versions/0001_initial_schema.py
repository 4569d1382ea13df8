"""Initial schema of the search service: documents with a full-text index (FTS5 on SQLite,
a generated tsvector with a GIN index on PostgreSQL) and the consumer bookkeeping.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 05:46:18.271124

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SQLITE_INDEX = [
    # External-content FTS5: the text lives once, in `documents`; triggers keep the index in step.
    """CREATE VIRTUAL TABLE documents_fts USING fts5(
        heading, body, content='documents', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents BEGIN
        INSERT INTO documents_fts(rowid, heading, body) VALUES (new.id, new.heading, new.body);
    END""",
    """CREATE TRIGGER documents_fts_delete AFTER DELETE ON documents BEGIN
        INSERT INTO documents_fts(documents_fts, rowid, heading, body)
        VALUES ('delete', old.id, old.heading, old.body);
    END""",
    """CREATE TRIGGER documents_fts_update AFTER UPDATE ON documents BEGIN
        INSERT INTO documents_fts(documents_fts, rowid, heading, body)
        VALUES ('delete', old.id, old.heading, old.body);
        INSERT INTO documents_fts(rowid, heading, body) VALUES (new.id, new.heading, new.body);
    END""",
]

POSTGRES_INDEX = [
    # 'simple': no stemming and no stop words, the same matching as the SQLite tokenizer.
    """ALTER TABLE documents ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', heading), 'A') ||
        setweight(to_tsvector('simple', body), 'B')) STORED""",
    "CREATE INDEX ix_documents_search_vector ON documents USING gin (search_vector)",
]


def _full_text_index(create: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        statements = (
            POSTGRES_INDEX
            if create
            else [
                "DROP INDEX IF EXISTS ix_documents_search_vector",
                "ALTER TABLE documents DROP COLUMN IF EXISTS search_vector",
            ]
        )
    else:
        statements = (
            SQLITE_INDEX
            if create
            else [
                "DROP TRIGGER IF EXISTS documents_fts_update",
                "DROP TRIGGER IF EXISTS documents_fts_delete",
                "DROP TRIGGER IF EXISTS documents_fts_insert",
                "DROP TABLE IF EXISTS documents_fts",
            ]
        )
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "consumed_events",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_consumed_events")),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column(
            "source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "thread_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("heading", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("kind", "source_id", name=op.f("uq_documents_kind")),
    )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_documents_thread_id"), ["thread_id"], unique=False)

    _full_text_index(create=True)

    op.create_table(
        "failed_events",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.Column("parked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_failed_events")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("failed_events")
    _full_text_index(create=False)
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_documents_thread_id"))

    op.drop_table("documents")
    op.drop_table("consumed_events")
