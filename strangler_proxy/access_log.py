"""The proxy's access log: one JSON line per request, with the request id, written in batches.

structlog's full pipeline costs more per request than forwarding itself on this machine, so
the hot path only appends a small dict; a background task writes the lines every
`flush_seconds` (and on shutdown) in the same shape as `plumbing.logs` lines. This module must
never block the event loop on a slow terminal for more than one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO


class AccessLog:
    """Buffers access records and writes them as JSON lines to a stream."""

    def __init__(self, stream: TextIO | None = None, flush_seconds: float = 0.2) -> None:
        self._stream = stream
        self._flush_seconds = flush_seconds
        self._pending: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    def record(self, **fields: Any) -> None:
        fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self._pending.append(fields)

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        stream = self._stream or sys.stderr
        lines = (
            json.dumps(
                {
                    "event": "request",
                    "level": "info",
                    "service": "proxy",
                    "logger": "access",
                    **item,
                },
                default=str,
            )
            for item in pending
        )
        stream.write("\n".join(lines) + "\n")
        stream.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            self.flush()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()
