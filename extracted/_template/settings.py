"""The template service's settings, from `TEMPLATE_*` environment variables (and `.env`).

The token signing key is read from `STRANGLER_TOKEN_SECRET`, shared with every other process.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from strangler.plumbing.settings import ProcessSettings


class TemplateSettings(ProcessSettings):
    """Everything the process needs; defaults give a working local SQLite setup."""

    model_config = SettingsConfigDict(env_prefix="TEMPLATE_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///template.sqlite3"
