"""The bookshelf's tables.

Revision ID: 0001
Revises:
Create Date: 2026-12-04 21:13:54.316591

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "books",
        sa.Column("isbn", sa.String(length=17), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("published_on", sa.Date(), nullable=True),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("in_print", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("isbn"),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "tags",
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("parent_slug", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["parent_slug"], ["tags.slug"]),
        sa.PrimaryKeyConstraint("slug"),
    )
    op.create_table(
        "book_tags",
        sa.Column("isbn", sa.String(length=17), nullable=False),
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["isbn"], ["books.isbn"]),
        sa.ForeignKeyConstraint(["slug"], ["tags.slug"]),
        sa.PrimaryKeyConstraint("isbn", "slug"),
    )
    op.create_table(
        "loans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("isbn", sa.String(length=17), nullable=False),
        sa.Column("borrowed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["isbn"], ["books.isbn"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("loans")
    op.drop_table("book_tags")
    op.drop_table("tags")
    op.drop_table("members")
    op.drop_table("books")
