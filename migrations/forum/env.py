"""Alembic environment of the forum service's own database (`alembic_version_forum`)."""

from extracted.forum.models import Base
from migrations.environment import run

run("forum", Base.metadata)
