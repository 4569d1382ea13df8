"""The polls service's settings, from `POLLS_*` environment variables (and `.env`).

The token signing key is read from `STRANGLER_TOKEN_SECRET`, shared with every other process.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from plumbing.settings import ProcessSettings


class PollsSettings(ProcessSettings):
    """Everything the polls process needs; defaults give a working local SQLite setup."""

    model_config = SettingsConfigDict(env_prefix="POLLS_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///polls.sqlite3"
