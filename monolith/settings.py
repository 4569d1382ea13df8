"""The monolith's settings, from `MONOLITH_*` environment variables (and `.env`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from strangler.plumbing.settings import ProcessSettings


class MonolithSettings(ProcessSettings):
    """Everything the monolith process needs; defaults give a working local SQLite setup."""

    model_config = SettingsConfigDict(env_prefix="MONOLITH_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///monolith.sqlite3"
