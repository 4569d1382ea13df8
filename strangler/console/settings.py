"""The console's settings, from `CONSOLE_*` environment variables (and a local `.env`).

`strangler up` sets `CONSOLE_HOME` (the system's `.strangler/` folder) and `CONSOLE_ADMIN_TOKEN`
(the admin token people sign in with); everything else has a default. Nothing is read at
import: build a `ConsoleSettings()` in the process's entry point. This module must never read
anything but its own variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """Everything one console process needs."""

    model_config = SettingsConfigDict(env_prefix="CONSOLE_", env_file=".env", extra="ignore")

    home: Path = Path(".strangler")  # the system's folder: run.json, migration.json, logs
    admin_token: SecretStr  # signing in means presenting it
    refresh_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    session_seconds: Annotated[float, Field(gt=0)] = 12 * 3600.0
    max_sessions: Annotated[int, Field(ge=1)] = 100
    secure_cookie: bool = False  # set behind TLS: the cookie then travels only over https
    max_body_bytes: Annotated[int, Field(ge=256)] = 16 * 1024
    log_lines: Annotated[int, Field(ge=1, le=5000)] = 200
    log_level: str = "INFO"

    @property
    def folder(self) -> Path:
        """Where the commands the console runs are run: the folder `.strangler/` is in."""
        return self.home.resolve().parent
