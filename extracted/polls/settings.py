"""The polls processes' settings, from `POLLS_*` environment variables (and `.env`).

`PollsSettings` is the service's. The token signing key is read from `STRANGLER_TOKEN_SECRET`,
shared with every other process. `ResultsSettings` is what the results consumer and the
rebuild command read: the same database and the same results folder, and no secret.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from strangler.plumbing.settings import ProcessSettings

DATABASE_URL = "sqlite:///polls.sqlite3"
# Where the static results pages are written (by the consumer) and served from (by the service).
RESULTS_DIR = Path("polls-results")


class PollsSettings(ProcessSettings):
    """Everything the polls process needs; defaults give a working local SQLite setup."""

    model_config = SettingsConfigDict(env_prefix="POLLS_", env_file=".env", extra="ignore")

    database_url: str = DATABASE_URL
    results_dir: Path = RESULTS_DIR


class ResultsSettings(BaseSettings):
    """The results projection's processes: its database, its pages folder, its log level."""

    model_config = SettingsConfigDict(env_prefix="POLLS_", env_file=".env", extra="ignore")

    database_url: str = DATABASE_URL
    results_dir: Path = RESULTS_DIR
    log_level: str = "INFO"
