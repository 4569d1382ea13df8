"""Alembic environment of the monolith's one database (all four contexts in one schema)."""

from migrations.environment import run
from monolith.models import Base

run("monolith", Base.metadata)
