"""Alembic environment of the polls service's own database (`alembic_version_polls`)."""

from extracted.polls.models import Base
from strangler.datapath.alembic_env import run

run("polls", Base.metadata)
