"""The users service's settings, from `USERS_*` environment variables (and `.env`).

The token signing key is read from `STRANGLER_TOKEN_SECRET`, shared with every other process.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from strangler.plumbing.settings import ProcessSettings


class UsersSettings(ProcessSettings):
    """Everything the users process needs; defaults give a working local SQLite setup."""

    model_config = SettingsConfigDict(env_prefix="USERS_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///users.sqlite3"
