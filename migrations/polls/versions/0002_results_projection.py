"""The results projection (`poll_results`) and the bookkeeping of its event consumer.

Upgrading computes the projection of the polls already there, so their results stay right.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:12:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from strangler.plumbing.clock import utcnow

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "poll_results",
        sa.Column("poll_id", ID, nullable=False),
        sa.Column("option_id", ID, nullable=False),
        sa.Column("votes", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["option_id"],
            ["poll_options.id"],
            name=op.f("fk_poll_results_option_id_poll_options"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["poll_id"],
            ["polls.id"],
            name=op.f("fk_poll_results_poll_id_polls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("poll_id", "option_id", name=op.f("pk_poll_results")),
    )
    op.create_table(
        "consumed_events",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_consumed_events")),
    )
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
    op.execute(
        sa.text(
            "INSERT INTO poll_results (poll_id, option_id, votes, as_of)"
            " SELECT o.poll_id, o.id, COUNT(v.id), :now"
            " FROM poll_options o LEFT JOIN votes v ON v.option_id = o.id"
            " GROUP BY o.poll_id, o.id"
        ).bindparams(sa.bindparam("now", utcnow(), type_=sa.DateTime()))
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("failed_events")
    op.drop_table("consumed_events")
    op.drop_table("poll_results")
