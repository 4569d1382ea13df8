"""The proxy's settings, read from `PROXY_*` environment variables (and a local `.env`).

Upstreams are URLs only: the proxy knows the monolith and each service by address, never by
code. `STRANGLER_TOKEN_SECRET` is shared with every process so the proxy can read the verified
subject of a bearer token for sticky canary assignment. Nothing here is read at import time:
build a `ProxySettings()` in the process's entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from strangler_proxy.table import MONOLITH


class ProxySettings(BaseSettings):
    """Everything one proxy process needs; see docs/proxy.md for each variable."""

    model_config = SettingsConfigDict(env_prefix="PROXY_", env_file=".env", extra="ignore")

    monolith_url: str = "http://127.0.0.1:8001"
    # Any further upstream, as JSON: PROXY_UPSTREAMS='{"billing": "http://127.0.0.1:9000"}'.
    upstreams: dict[str, str] = {}

    route_table_path: Path | None = None
    # The migration's durable state (`strangler.state`): served on start, every change written
    # there first. `strangler up` sets it; without it the table lives in memory and its file.
    state_path: Path | None = None
    # Which system this proxy fronts (`strangler up` sets it): the admin API's `/identity` says
    # it, so a command never mistakes another folder's system on the same port for its own.
    system_id: str | None = None
    table_watch_seconds: Annotated[float, Field(ge=0)] = 2.0
    audit_log_path: Path = Path(".strangler/proxy-audit.jsonl")

    # Admin tokens, each with the name the audit log records as the actor (docs/proxy.md,
    # "Admin API"): `PROXY_ADMIN_TOKEN` is the one named "admin"; `PROXY_ADMIN_TOKENS` is JSON
    # {name: token}; `PROXY_ADMIN_TOKENS_FILE` a file holding the same JSON.
    admin_token: SecretStr | None = None
    admin_tokens: dict[str, SecretStr] = {}
    admin_tokens_file: Path | None = None
    admin_prefix: Annotated[str, Field(pattern=r"^/_[a-z]+$")] = "/_admin"
    # Set: the admin API answers only on this port of `admin_host` (same process, same state),
    # and the public port answers 404 under the admin prefix.
    admin_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    admin_host: str = "127.0.0.1"
    token_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("STRANGLER_TOKEN_SECRET", "token_secret")
    )
    client_id_cookie: str = "strangler_client"

    trusted_proxies: list[str] = []
    max_body_bytes: Annotated[int, Field(ge=1)] = 1024 * 1024
    # The request head (docs/proxy.md, "The front door"): within what gunicorn accepts.
    max_target_bytes: Annotated[int, Field(ge=16)] = 4000
    max_header_bytes: Annotated[int, Field(ge=64)] = 8000
    max_headers: Annotated[int, Field(ge=8)] = 90

    # Client connections (docs/proxy.md, "The front door"), defaults as nginx's
    # client_header_timeout and keepalive_timeout.
    header_timeout: Annotated[float, Field(gt=0, le=3600)] = 60.0
    idle_timeout: Annotated[float, Field(gt=0, le=3600)] = 75.0
    max_connections: Annotated[int, Field(ge=1)] = 1000

    # Upstream timeouts unless a route says otherwise. Safe reads are short so that a hung
    # service's read falls back to the monolith while the client still waits; writes, which
    # never fall back, get longer.
    connect_timeout: Annotated[float, Field(gt=0)] = 2.0
    safe_read_timeout: Annotated[float, Field(gt=0)] = 5.0
    write_read_timeout: Annotated[float, Field(gt=0)] = 30.0
    read_timeout: float | None = None  # split in two; refused when set (see below)
    pool_limit: Annotated[int, Field(ge=1)] = 200
    pool_limit_per_upstream: Annotated[int, Field(ge=1)] = 100
    keepalive_seconds: Annotated[float, Field(gt=0)] = 30.0

    breaker_failure_threshold: Annotated[int, Field(ge=1)] = 5
    breaker_open_seconds: Annotated[float, Field(gt=0)] = 10.0

    shadow_concurrency: Annotated[int, Field(ge=1)] = 16
    shadow_noise_sample_every: Annotated[int, Field(ge=0)] = 10
    shadow_max_body_bytes: Annotated[int, Field(ge=1)] = 256 * 1024
    shadow_diff_samples: Annotated[int, Field(ge=1)] = 50
    # A service's copy of the data trails the monolith's by the sync's lag, so a read that races
    # a write can differ for a moment: a comparison that differs is asked of both sides again
    # this many times, this long apart, before it counts as a mismatch (docs/proxy.md "Shadow").
    shadow_rechecks: Annotated[int, Field(ge=0, le=10)] = 2
    shadow_recheck_delay_seconds: Annotated[float, Field(ge=0, le=10)] = 0.25

    analysis_interval_seconds: Annotated[float, Field(ge=0)] = 30.0

    # Write freezes (cutover): how long a frozen write waits for the thaw before a 503, the
    # longest freeze anyone may ask for, and how long a freeze waits for writes in flight.
    freeze_wait_seconds: Annotated[float, Field(ge=0, le=60)] = 2.0
    freeze_max_seconds: Annotated[float, Field(gt=0, le=600)] = 60.0
    freeze_drain_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0

    # Functions (`function:` upstreams, docs/proxy.md "Target kinds"): worker processes per
    # handler, and extra environment of each handler's workers as JSON {import path: {name:
    # value}} (`strangler up` sets the emulator's endpoint, the table's and bucket's names).
    function_workers: Annotated[int, Field(ge=1, le=64)] = 2
    function_env: dict[str, dict[str, str]] = {}
    # Where `bucket:` upstreams are read from: the S3 endpoint (the emulator's locally).
    bucket_endpoint: str = Field(
        default="https://s3.amazonaws.com",
        validation_alias=AliasChoices(
            "PROXY_BUCKET_ENDPOINT", "AWS_ENDPOINT_URL", "bucket_endpoint"
        ),
    )

    access_log: bool = True
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _no_single_read_timeout(self) -> Self:
        if self.read_timeout is not None:
            raise ValueError(
                "PROXY_READ_TIMEOUT was split in two: set PROXY_SAFE_READ_TIMEOUT (GET, HEAD,"
                " OPTIONS) and PROXY_WRITE_READ_TIMEOUT (every other method)"
            )
        return self

    def upstream_urls(self) -> dict[str, str]:
        """Every upstream this process was told about, by context name (without trailing /)."""
        merged = {MONOLITH: self.monolith_url, **self.upstreams}
        return {name: url.rstrip("/") for name, url in merged.items()}
