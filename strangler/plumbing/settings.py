"""The settings every process shares, read from the environment (and a local `.env`).

Each process subclasses `ProcessSettings` with its own env prefix (`MONOLITH_`, `USERS_`, ...).
The token signing key is the one setting all of them read under the same name,
`STRANGLER_TOKEN_SECRET`, because a token issued by one side must be accepted by every other.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProcessSettings(BaseSettings):
    """Base of every process's settings class; subclasses set `env_prefix` and their fields."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite:///app.sqlite3"
    token_secret: SecretStr = Field(
        validation_alias=AliasChoices("STRANGLER_TOKEN_SECRET", "token_secret"),
        min_length=16,
    )
    token_ttl_seconds: int = Field(default=86400, ge=60)
    password_time_cost: int = Field(default=2, ge=1)
    password_memory_kib: int = Field(default=19456, ge=8)
    log_level: str = "INFO"
