"""Alembic environment of the users service's own database (`alembic_version_users`)."""

from extracted.users.models import Base
from strangler.datapath.alembic_env import run

run("users", Base.metadata)
