"""Settings of a relay or consumer process, read from the environment of its context.

A relay for `forum` reads `FORUM_DATABASE_URL` (the very variable the forum service reads) and
`FORUM_EVENT_*` tuning; every event process shares the bus URL `STRANGLER_BUS_URL`, the way
every service shares the token secret. Nothing is read at import.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BUS_URL = "sqlite:///bus.sqlite3"


class EventSettings(BaseSettings):
    """What one relay or consumer process needs; build it with `event_settings(context)`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = ""
    bus_url: str = Field(
        default=DEFAULT_BUS_URL,
        validation_alias=AliasChoices("STRANGLER_BUS_URL", "bus_url"),
    )
    event_batch_size: int = Field(default=100, ge=1, le=10_000)
    event_poll_seconds: float = Field(default=0.05, gt=0, le=60)
    event_max_attempts: int = Field(default=5, ge=1)
    event_retry_seconds: float = Field(default=0.2, ge=0, le=60)
    event_metrics_port: int | None = None
    log_level: str = "INFO"


def event_settings(context: str) -> EventSettings:
    """The settings of `context`'s event processes, from `<CONTEXT>_*` variables."""
    settings = EventSettings(_env_prefix=f"{context.upper()}_")  # type: ignore[call-arg]
    if not settings.database_url:
        settings.database_url = f"sqlite:///{context}.sqlite3"
    return settings
