"""How strict the gates are: `STRANGLER_GATE_*` variables (or a `.env`). This module must never
read anything else."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The demo and the load comparison judge latency loosely: they run on whatever laptop they are
# shown on, and a p95 of a few reads on a busy machine says more about the machine than about
# the service. Errors, differences and lost writes are judged as strictly as ever.
LOOSE_P95_RATIO = 10.0


class GateSettings(BaseSettings):
    """The gates' thresholds and patience."""

    model_config = SettingsConfigDict(env_prefix="STRANGLER_GATE_", env_file=".env", extra="ignore")

    timeout_seconds: Annotated[float, Field(gt=0)] = 120.0  # processes to start, a sync to catch up
    traffic_timeout_seconds: Annotated[float, Field(gt=0)] = 120.0  # shadow, canary: enough reads
    max_sync_lag: Annotated[int, Field(ge=0)] = 100  # changes behind, to call the sync caught up
    shadow_min_compared: Annotated[int, Field(ge=1)] = 40  # reads compared across the routes
    max_mismatch_rate: Annotated[float, Field(ge=0, le=1)] = 0.02
    canary_steps: list[float] = [10, 50, 100]
    canary_min_requests: Annotated[int, Field(ge=1)] = 5  # service reads per route per step
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_p95_ratio: Annotated[float, Field(gt=0)] = 3.0  # generous: a shared laptop is noisy
    max_freeze_seconds: Annotated[float, Field(gt=0)] = 30.0
    # Under the nginx data plane: how long a freeze waits for nginx to send its context
    # through the Python proxy (a reload waits for requests in flight on the old workers).
    plane_timeout_seconds: Annotated[float, Field(gt=0)] = 60.0
    # A freeze is a lease its command renews; if the command dies, writes flow again this soon.
    freeze_lease_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    probes: bool = True  # send sample reads through the proxy for shadow and canary
