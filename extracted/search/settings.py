"""The search service's settings, from `SEARCH_*` environment variables (and `.env`).

The token signing key is read from `STRANGLER_TOKEN_SECRET`, shared with every other process
(search itself needs no token, but every process reads the same settings base).
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from strangler.plumbing.settings import ProcessSettings


class SearchSettings(ProcessSettings):
    """Everything the search process needs; defaults give a working local SQLite setup."""

    model_config = SettingsConfigDict(env_prefix="SEARCH_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///search.sqlite3"
