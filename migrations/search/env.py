"""Alembic environment of the search service's own database (`alembic_version_search`).

The full-text index is backend-specific raw DDL in the migration; `is_modelled` keeps it out of
autogenerate and of the drift check.
"""

from extracted.search.models import Base, is_modelled
from strangler.datapath.alembic_env import run

run("search", Base.metadata, include_name=is_modelled)
