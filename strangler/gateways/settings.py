"""The settings every gateway rendering reads: timeouts, limits, pools, trust and logs.

Defaults are the Python proxy's (`strangler_proxy.settings.ProxySettings`), so a route is held
to the same numbers whichever data plane serves it. Read from `STRANGLER_GATEWAY_*` variables
when built as `GatewaySettings()`; nothing is read at import. This module must never render a
configuration nor start a process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """What a rendered gateway needs beyond the route table and the upstream URLs."""

    model_config = SettingsConfigDict(env_prefix="STRANGLER_GATEWAY_", extra="ignore")

    listen_host: str = "127.0.0.1"
    listen_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    # nginx: one worker per core serves more; one keeps CPU accounting and tests simple.
    worker_processes: Annotated[int, Field(ge=1, le=64)] = 1
    # The live plane's Linux scheduling policy. "batch" (SCHED_BATCH): a woken nginx waits for
    # the running process's time slice instead of preempting it, so on cores it shares with the
    # applications it forwards many requests per wake-up and does not interrupt a Python
    # worker holding its GIL (docs/gateways.md, "Benchmark": 0.76x -> 0.83x of direct through
    # nginx at 32 connections). "normal": the system's default. Ignored where the system has
    # no such policy (macOS). Exports never carry it.
    cpu_policy: Literal["batch", "normal"] = "batch"

    # A reload waits this long at most for the old workers' requests in flight.
    shutdown_timeout: Annotated[float, Field(gt=0, le=3600)] = 30.0

    # Per route unless the table says otherwise; the same defaults as the Python proxy.
    connect_timeout: Annotated[float, Field(gt=0, le=60)] = 2.0
    read_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    # The client's side: a request head must arrive within this, and an idle kept-alive
    # connection is closed after that.
    header_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    idle_timeout: Annotated[float, Field(gt=0, le=3600)] = 30.0

    # The front door's limits (docs/proxy.md, "The front door").
    max_body_bytes: Annotated[int, Field(ge=1)] = 1024 * 1024
    max_target_bytes: Annotated[int, Field(ge=16)] = 4000
    max_header_bytes: Annotated[int, Field(ge=1024)] = 8192

    # Keep-alive pools to each upstream, and the passive health check standing in for the
    # Python proxy's circuit breaker: this many failures mark a server down for that long.
    keepalive_connections: Annotated[int, Field(ge=1)] = 64
    upstream_keepalive_seconds: Annotated[float, Field(gt=0)] = 20.0
    breaker_failure_threshold: Annotated[int, Field(ge=1)] = 5
    breaker_open_seconds: Annotated[float, Field(gt=0)] = 10.0

    # Networks whose X-Forwarded-* headers are believed (none: every one is overwritten).
    trusted_proxies: list[str] = []
    # The anonymous client's cookie for a sticky canary (the Python proxy's default).
    client_id_cookie: str = "strangler_client"
    # How long the Python proxy may hold a frozen write before answering (its wait setting).
    freeze_wait_seconds: Annotated[float, Field(ge=0, le=60)] = 2.0
    # Paths the Python proxy itself answers (its admin API and metrics) when it runs behind.
    proxy_paths: list[str] = ["/_admin", "/metrics"]

    # Where logs go; relative paths are inside the plane's folder (None: access log off).
    access_log: Path | None = Path("access.log")
    error_log: Path = Path("error.log")
