"""Alembic environment of the forum service's own database (`alembic_version_forum`)."""

from extracted.forum.models import Base
from strangler.datapath.alembic_env import run

run("forum", Base.metadata)
