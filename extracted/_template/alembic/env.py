"""Alembic environment of the template service's own database.

It sits inside the template (not under `migrations/`, where every `env.py` is a real database);
a copy moves it to `migrations/<context>/` and renames `template` to the context's name, and
`strangler.datapath.schemas` then runs it like every other (version table
`alembic_version_<context>`).
"""

from extracted._template.models import Base
from strangler.datapath.alembic_env import run

run("template", Base.metadata)
