"""The forum service's settings, from `FORUM_*` environment variables (and `.env`).

The token signing key is read from `STRANGLER_TOKEN_SECRET`, shared with every other process.
`FORUM_USERS_URL` is the users service's base URL, asked only on a write by an author the
replica does not know yet; unset, such an author is shown provisionally (a warning at start).
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from strangler.plumbing.settings import ProcessSettings


class ForumSettings(ProcessSettings):
    """Everything the forum process needs; defaults give a working local SQLite setup."""

    model_config = SettingsConfigDict(env_prefix="FORUM_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///forum.sqlite3"
    # e.g. http://127.0.0.1:8101; None keeps the provisional-name fallback (not for production).
    users_url: str | None = None
