"""Alembic environment of the monolith's one database (all four contexts in one schema)."""

from monolith.models import Base
from strangler.datapath.alembic_env import run

run("monolith", Base.metadata)
