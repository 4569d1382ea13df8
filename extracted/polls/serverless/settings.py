"""The polls functions' settings, from the environment the runtime (or Lambda) gives them.

`StoreSettings` is what both functions read: the table (`POLLS_TABLE`), the pages' bucket
(`POLLS_BUCKET`), the region and the log level. `FunctionSettings` adds what the HTTP function
alone needs: the token key shared by every process (`STRANGLER_TOKEN_SECRET`). The endpoint
(`AWS_ENDPOINT_URL`, the emulator's, unset on AWS) and the credentials are boto3's to read,
never ours. No `.env` file: a function's environment is its whole configuration.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from extracted.polls.serverless.table import DEFINITION

BUCKET = "polls-results"


class StoreSettings(BaseSettings):
    """Where the polls' items and pages are."""

    model_config = SettingsConfigDict(env_prefix="POLLS_", extra="ignore", frozen=True)

    table: str = DEFINITION["TableName"]
    bucket: str = BUCKET
    region: str = Field(default="us-east-1", validation_alias="AWS_DEFAULT_REGION")
    log_level: str = Field(
        default="INFO", validation_alias=AliasChoices("LOG_LEVEL", "POLLS_LOG_LEVEL")
    )


class FunctionSettings(StoreSettings):
    """The HTTP function's: the store, and the key that checks callers' tokens."""

    token_secret: SecretStr = Field(
        validation_alias=AliasChoices("STRANGLER_TOKEN_SECRET", "token_secret"), min_length=16
    )
