"""The forum service's settings, from `FORUM_*` environment variables (and `.env`).

The token signing key is read from `STRANGLER_TOKEN_SECRET`, shared with every other process.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from plumbing.settings import ProcessSettings


class ForumSettings(ProcessSettings):
    """Everything the forum process needs; defaults give a working local SQLite setup."""

    model_config = SettingsConfigDict(env_prefix="FORUM_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///forum.sqlite3"
