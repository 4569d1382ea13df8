"""A pool of function worker processes per handler, and the invocation of one event in it.

Like Lambda's execution environments: a worker starts on demand (up to `size` per handler),
imports the handler once and serves one event at a time; its cold start (the import plus its
first invocation) is measured once per worker. A worker that dies is dropped and the event's
caller gets a failure at once (a new worker starts for the next event), never a hang; an
invocation past its timeout kills its worker. Workers run in their own process group and are
stopped with the pool. This module must never build an event or an HTTP response (that is
`function_event`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from strangler.plumbing.logs import get_logger
from strangler_proxy import function_worker
from strangler_proxy.function_worker import HEADER

log = get_logger("proxy.functions")
STARTUP_SECONDS = 60.0
_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class FunctionFailed(Exception):
    """An invocation gave no result: `reason` for the metrics, the client's `status`."""

    def __init__(self, reason: str, status: int, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.status = status
        self.detail = detail


class FunctionMetrics:
    """Cold starts, invocations and worker exits, in the proxy's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.cold_start = Histogram(
            "proxy_function_cold_start_seconds",
            "Per worker: importing the handler plus its first invocation",
            ["function"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.import_seconds = Histogram(
            "proxy_function_import_seconds",
            "Per worker: importing the handler",
            ["function"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.worker_start = Histogram(
            "proxy_function_worker_start_seconds",
            "Per worker: from spawning its process to its handler imported (interpreter included)",
            ["function"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.invocation = Histogram(
            "proxy_function_invocation_seconds",
            "Time the handler ran per invocation, by start (cold: a worker's first)",
            ["function", "start"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.failures = Counter(
            "proxy_function_failures_total",
            "Invocations without a result (error, worker-died, timeout, start-failed)",
            ["function", "reason"],
            registry=registry,
        )
        self.workers = Gauge(
            "proxy_function_workers", "Live worker processes", ["function"], registry=registry
        )


@dataclass(eq=False)
class Worker:
    process: asyncio.subprocess.Process
    import_seconds: float
    invocations: int = 0

    async def exchange(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        data = json.dumps(message).encode("utf-8")
        self.process.stdin.write(HEADER.pack(len(data)) + data)
        await self.process.stdin.drain()
        return await read_reply(self.process.stdout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


async def read_reply(stream: asyncio.StreamReader) -> dict[str, Any]:
    (length,) = HEADER.unpack(await stream.readexactly(HEADER.size))
    found: dict[str, Any] = json.loads(await stream.readexactly(length))
    return found


class FunctionPool:
    """Up to `size` workers of one handler."""

    def __init__(
        self,
        import_path: str,
        size: int,
        metrics: FunctionMetrics,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.import_path = import_path
        self.metrics = metrics
        self._environment = {**os.environ, **(environment or {})}
        self._idle: list[Worker] = []
        self._slots = asyncio.Semaphore(size)
        self._live: set[Worker] = set()
        self._reaping: set[asyncio.Task[None]] = set()

    async def invoke(self, event: dict[str, Any], request_id: str, timeout: float) -> Any:
        """The handler's result for `event`, or raise FunctionFailed."""
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._start()
            deadline = time.time() + timeout
            message = {"event": event, "request_id": request_id, "deadline": deadline}
            try:
                reply = await asyncio.wait_for(worker.exchange(message), timeout)
            except TimeoutError:
                self._drop(worker, "timeout")
                raise FunctionFailed(
                    "timeout", 504, f"the function did not answer within {timeout}s"
                ) from None
            except (asyncio.IncompleteReadError, ConnectionError, ValueError) as error:
                self._drop(worker, "worker-died")
                raise FunctionFailed(
                    "worker-died", 502, "the function's worker process died"
                ) from error
            except BaseException:  # a cancelled request leaves its worker mid-invocation
                self._drop(worker, "cancelled")
                raise
            self._observe(worker, float(reply.get("seconds", 0.0)))
            self._idle.append(worker)
            if "error" in reply:
                self.metrics.failures.labels(self.import_path, "error").inc()
                raise FunctionFailed("error", 502, f"the function failed: {reply['error']}")
            return reply.get("result")

    def _observe(self, worker: Worker, seconds: float) -> None:
        is_cold = worker.invocations == 0
        worker.invocations += 1
        start = "cold" if is_cold else "warm"
        self.metrics.invocation.labels(self.import_path, start).observe(seconds)
        if is_cold:
            self.metrics.cold_start.labels(self.import_path).observe(
                worker.import_seconds + seconds
            )

    async def _start(self) -> Worker:
        spawned = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-P", function_worker.__file__, self.import_path,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=self._environment, start_new_session=True,
        )  # fmt: skip
        assert process.stdout is not None
        worker = Worker(process, 0.0)
        self._live.add(worker)
        self.metrics.workers.labels(self.import_path).set(len(self._live))
        try:
            ready = await asyncio.wait_for(read_reply(process.stdout), STARTUP_SECONDS)
        except (TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            self._drop(worker, "start-failed")
            raise FunctionFailed(
                "start-failed", 502, "the function's worker did not start"
            ) from error
        if not ready.get("ready"):
            self._drop(worker, "start-failed")
            raise FunctionFailed(
                "start-failed", 502, f"the function could not be imported: {ready.get('error')}"
            )
        worker.import_seconds = float(ready["import_seconds"])
        self.metrics.import_seconds.labels(self.import_path).observe(worker.import_seconds)
        self.metrics.worker_start.labels(self.import_path).observe(time.perf_counter() - spawned)
        log.info("function worker started", function=self.import_path, pid=process.pid,
                 import_seconds=round(worker.import_seconds, 4))  # fmt: skip
        return worker

    def _drop(self, worker: Worker, reason: str) -> None:
        worker.kill()
        self._live.discard(worker)
        self.metrics.workers.labels(self.import_path).set(len(self._live))
        self.metrics.failures.labels(self.import_path, reason).inc()
        log.warning("function worker dropped", function=self.import_path,
                    pid=worker.process.pid, reason=reason)  # fmt: skip
        task = asyncio.get_running_loop().create_task(_reap(worker.process))
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    async def close(self) -> None:
        """Stop every worker: close its input (it exits), then kill what is left."""
        workers, self._idle = list(self._live), []
        self._live.clear()
        for worker in workers:
            if worker.process.stdin is not None:
                worker.process.stdin.close()
        for worker in workers:
            try:
                await asyncio.wait_for(worker.process.wait(), 2.0)
            except TimeoutError:
                worker.kill()
                await worker.process.wait()
        await asyncio.gather(*self._reaping)
        self.metrics.workers.labels(self.import_path).set(0)


async def _reap(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        await process.wait()
