"""What a workspace's hooks promise: the signatures behind the import paths of `strangler.toml`.

- `monolith.seed`: `(engine, scale, seed_value, progress) -> SeedReport | None` seeds an empty
  monolith database (None: it holds data already); `progress(table, done, total)`.
- `load.steady`: `(base_url, rate) -> BackgroundLoad`, the demo's light background load with a
  ledger of every acknowledged write.
- `load.plan_data`: `(scale, token_secret) -> dict`, what the seeded data holds, handed to the
  locustfile of `compare` in its plan.
- `contexts.*.hooks.on_service_rows`, `before_flip`, `build`: see `strangler.workspace.model`.
- `contexts.*.serverless.handler`: `(event, context) -> dict`, an API Gateway HTTP API payload
  2.0 event in, its response (statusCode, headers, body...) out; run in the proxy's function
  workers.
- `contexts.*.serverless.stream_handler`: `(event, context) -> dict | None` with
  `event = {"Records": [...]}` in DynamoDB Streams' record shape, at least once per record;
  it raises to have the batch retried.
- `contexts.*.serverless.table`: a dict, DynamoDB `create_table`'s keyword arguments.

This module must never run a hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class SeedReport(Protocol):
    """How many rows a seed wrote, how fast, and what a person trying the system should know."""

    @property
    def total_rows(self) -> int: ...

    @property
    def seconds(self) -> float: ...

    @property
    def note(self) -> str: ...


@dataclass(frozen=True)
class FreezeWindow:
    """Writes to `context` were held or refused on purpose from `started` to `ended` (epoch
    seconds): a failed write inside it is the freeze's, not a loss."""

    context: str
    started: float
    ended: float


@dataclass(frozen=True)
class LoadReport:
    """What a background load saw: requests sent, failures (and those outside any freeze),
    acknowledged writes, how many were read back at the end, and what was missing."""

    requests: int
    failures: int
    unexplained_failures: int
    acknowledged: int
    read_back: int
    missing: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # a few unexplained failures

    @property
    def is_complete(self) -> bool:
        return not self.missing and self.read_back == self.acknowledged


class BackgroundLoad(Protocol):
    """A steady load run while a migration moves; started and stopped around it."""

    def start(self) -> object: ...

    def stop(self) -> None: ...

    def report(self, freezes: Sequence[FreezeWindow]) -> LoadReport:
        """Read every acknowledged write back, and count what failed outside `freezes`."""
        ...
