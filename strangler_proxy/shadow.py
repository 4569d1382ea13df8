"""Parallel run: copy a safe request to the service in the background and compare the answers.

The monolith's answer has already gone to the client when a comparison starts; the copy runs
as a background task under a bounded semaphore and is dropped, not queued, when the bound is
reached, so shadowing can never change a client's response nor hold it up. The copy keeps the
original Host and headers and adds `X-Strangler-Shadow: 1`; with tracing on, the copy is a
client span (the aiohttp instrumentation's) under the request's span. Noise is learned by
sending every Nth request of a route to the monolith a second time: fields that differ between
two monolith answers are ignored from then on. A service's data trails the monolith's by the
sync's lag, so a comparison that differs is asked of both sides again (`Rechecks`) before it
counts: a pair that then agrees was a read racing a write ("settled"), a real difference differs
every time. This module must never shadow an unsafe method.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from opentelemetry import context as otel_context
from opentelemetry import trace
from yarl import URL

from strangler.plumbing.logs import get_logger
from strangler_proxy.comparison import differing_fields, generalise, unexplained
from strangler_proxy.forwarding import UpstreamFailed
from strangler_proxy.metrics import ProxyMetrics
from strangler_proxy.serverless_targets import is_serverless
from strangler_proxy.table import SAFE_METHODS, Route

SHADOW_HEADER = "X-Strangler-Shadow"
MAX_LEARNED_FIELDS = 100
MAX_FIELDS_PER_SAMPLE = 20

log = get_logger("shadow")


@dataclass(frozen=True)
class Answer:
    """One upstream's answer as the comparison needs it; `body` is None when too large."""

    status: int
    content_type: str
    body: bytes | None


@dataclass(frozen=True)
class Rechecks:
    """How many times, and how far apart, a differing comparison is asked of both sides again."""

    times: int = 0
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class ShadowJob:
    """Everything needed to replay one request against the service and compare."""

    route: Route
    method: str
    target: str  # path and query, encoded
    headers: list[tuple[str, str]]
    request_id: str
    service_url: str
    monolith_url: str
    monolith_answer: Answer
    ignore_fields: tuple[str, ...] = ()
    parent_span: Any = None  # the request's span, when tracing


@dataclass
class RouteShadowStats:
    compared: int = 0
    matched: int = 0
    settled: int = 0  # of the matched: differed at first, agreed when asked again
    mismatched: int = 0
    errors: int = 0
    dropped: int = 0
    raw_mismatched: int = 0  # differing before any noise rule (ignore rules, learned noise)
    learned_noise: dict[str, str] = field(default_factory=dict)
    fields: Counter[str] = field(default_factory=Counter)  # after the rules, how often each

    def describe(self) -> dict[str, Any]:
        rate = self.mismatched / self.compared if self.compared else 0.0
        raw_rate = self.raw_mismatched / self.compared if self.compared else 0.0
        return {
            "compared": self.compared,
            "matched": self.matched,
            "settled": self.settled,
            "mismatched": self.mismatched,
            "raw_mismatched": self.raw_mismatched,
            "errors": self.errors,
            "dropped": self.dropped,
            "mismatch_rate": round(rate, 4),
            "raw_mismatch_rate": round(raw_rate, 4),
            "top_fields": [
                {"field": name, "count": count} for name, count in self.fields.most_common(10)
            ],
            "learned_noise": [
                {"field": name, "reason": reason}
                for name, reason in sorted(self.learned_noise.items())
            ],
        }


def _decode_json(answer: Answer) -> Any:
    if answer.body is None or "json" not in answer.content_type:
        raise ValueError("not JSON")
    return json.loads(answer.body)


class ShadowRunner:
    """Schedules, runs and records shadow comparisons for one proxy process."""

    def __init__(
        self,
        session_factory: Any,
        metrics: ProxyMetrics,
        concurrency: int,
        noise_sample_every: int,
        max_body_bytes: int,
        diff_samples: int,
        rechecks: Rechecks = Rechecks(),
        serverless_factory: Any = lambda: None,
    ) -> None:
        self._session_factory = session_factory
        # The function and bucket targets (`serverless_targets.ServerlessTargets`), when wired:
        # a context served as functions is shadowed as its service would be.
        self._serverless_factory = serverless_factory
        self._metrics = metrics
        self._slots = asyncio.Semaphore(concurrency)
        self._noise_sample_every = noise_sample_every
        self._rechecks = rechecks
        self.max_body_bytes = max_body_bytes
        self.samples: deque[dict[str, Any]] = deque(maxlen=diff_samples)
        self.stats: dict[str, RouteShadowStats] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: dict[str, int] = {}

    def _stats(self, route: str) -> RouteShadowStats:
        found = self.stats.get(route)
        if found is None:
            found = self.stats[route] = RouteShadowStats()
        return found

    def submit(self, job: ShadowJob) -> bool:
        """Start a comparison in the background; False (and counted) when dropped."""
        if job.method not in SAFE_METHODS:
            return False
        if self._slots.locked():
            self._stats(job.route.name).dropped += 1
            self._metrics.shadow.labels(job.route.name, "dropped").inc()
            return False
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def drain(self) -> None:
        """Wait for running comparisons (shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _fetch(self, base_url: str, job: ShadowJob, is_shadow: bool) -> Answer:
        headers = list(job.headers)
        if is_shadow:
            headers.append((SHADOW_HEADER, "1"))
        serverless = self._serverless_factory()
        if serverless is not None and is_serverless(base_url):
            return await self._invoke(serverless, base_url, job, headers)
        timeout = aiohttp.ClientTimeout(
            sock_connect=job.route.connect_timeout or 2.0,
            sock_read=job.route.read_timeout or 10.0,
        )
        session: aiohttp.ClientSession = self._session_factory()
        async with session.request(
            job.method,
            URL(base_url + job.target, encoded=True),
            headers=headers,
            allow_redirects=False,
            timeout=timeout,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        ) as response:
            body = await response.content.read(self.max_body_bytes + 1)
            too_large = len(body) > self.max_body_bytes
            return Answer(
                response.status,
                response.headers.get("Content-Type", ""),
                None if too_large else body,
            )

    async def _invoke(
        self, serverless: Any, base_url: str, job: ShadowJob, headers: list[tuple[str, str]]
    ) -> Answer:
        """The answer of a function or a bucket, as the proxy would have served it."""
        try:
            held = await serverless.open_response(
                base_url, job.method, job.target, job.route, headers, None,
                job.route.read_timeout or 10.0, job.request_id,
            )  # fmt: skip
        except UpstreamFailed as failed:
            raise ValueError(f"{failed.reason}: {failed.detail}") from failed
        body = held.body
        too_large = body is not None and len(body) > self.max_body_bytes
        return Answer(held.status, held.content_type, None if too_large else body)

    async def _run(self, job: ShadowJob) -> None:
        if job.parent_span is None:
            await self._run_compared(job)
            return
        token = otel_context.attach(trace.set_span_in_context(job.parent_span))
        try:
            await self._run_compared(job)
        finally:
            otel_context.detach(token)

    async def _run_compared(self, job: ShadowJob) -> None:
        async with self._slots:
            name = job.route.name
            stats = self._stats(name)
            try:
                service = await self._fetch(job.service_url, job, is_shadow=True)
                await self._maybe_learn(job, stats)
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                stats.errors += 1
                self._metrics.shadow.labels(name, "error").inc()
                log.info(
                    "shadow failed",
                    route=name,
                    error=type(error).__name__,
                    request_id=job.request_id,
                )
                return
            fields, raw = self._differences(job, job.monolith_answer, service, stats)
            settled = bool(fields) and await self._settles(job, stats)
            self._record(job, service, [] if settled else fields, raw, stats, settled)

    async def _settles(self, job: ShadowJob, stats: RouteShadowStats) -> bool:
        """Whether both sides, asked again, agree: the difference was the sync's lag."""
        for _ in range(self._rechecks.times):
            await asyncio.sleep(self._rechecks.delay_seconds)
            try:
                monolith, service = await asyncio.gather(
                    self._fetch(job.monolith_url, job, is_shadow=False),
                    self._fetch(job.service_url, job, is_shadow=True),
                )
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return False
            if not self._differences(job, monolith, service, stats)[0]:
                return True
        return False

    async def _maybe_learn(self, job: ShadowJob, stats: RouteShadowStats) -> None:
        if not self._noise_sample_every or len(stats.learned_noise) >= MAX_LEARNED_FIELDS:
            return
        seen = self._seen.get(job.route.name, 0)
        self._seen[job.route.name] = seen + 1
        if seen % self._noise_sample_every:
            return
        again = await self._fetch(job.monolith_url, job, is_shadow=False)
        try:
            first, second = _decode_json(job.monolith_answer), _decode_json(again)
        except ValueError:
            return
        for path in differing_fields(first, second):
            general = generalise(path)
            if general not in stats.learned_noise:
                stats.learned_noise[general] = (
                    f"learned: differed between two monolith answers to {job.method} {job.target}"
                )

    def _ignore_patterns(self, job: ShadowJob, stats: RouteShadowStats) -> list[str]:
        return [*job.ignore_fields, *stats.learned_noise]

    def _differences(
        self, job: ShadowJob, monolith: Answer, service: Answer, stats: RouteShadowStats
    ) -> tuple[list[str], list[str]]:
        """The fields that differ after the ignore rules and learned noise, and before them."""
        if monolith.status != service.status:
            return ["status"], ["status"]
        try:
            first, second = _decode_json(monolith), _decode_json(service)
        except ValueError:
            is_same = monolith.body is not None and monolith.body == service.body
            return ([], []) if is_same else (["body"], ["body"])
        fields = unexplained(first, second, self._ignore_patterns(job, stats))
        return fields, fields or unexplained(first, second, [])

    def _record(
        self,
        job: ShadowJob,
        service: Answer,
        fields: list[str],
        raw: list[str],
        stats: RouteShadowStats,
        settled: bool,
    ) -> None:
        """Count one comparison: `fields` what still differs, `raw` the first difference."""
        monolith = job.monolith_answer
        stats.compared += 1
        stats.raw_mismatched += bool(raw)
        stats.fields.update(generalise(name) for name in fields[:MAX_FIELDS_PER_SAMPLE])
        if not fields:
            stats.matched += 1
            stats.settled += settled
            outcome = "settled" if settled else "match"
            self._metrics.shadow.labels(job.route.name, outcome).inc()
            return
        stats.mismatched += 1
        self._metrics.shadow.labels(job.route.name, "mismatch").inc()
        self.samples.append(
            {
                "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "route": job.route.name,
                "request_id": job.request_id,
                "method": job.method,
                "target": job.target,
                "status": {"monolith": monolith.status, "service": service.status},
                "fields": fields[:MAX_FIELDS_PER_SAMPLE],
                "monolith_excerpt": _excerpt(monolith.body),
                "service_excerpt": _excerpt(service.body),
            }
        )

    def describe(self) -> dict[str, Any]:
        return {
            "routes": {name: stats.describe() for name, stats in sorted(self.stats.items())},
            "samples": list(self.samples),
        }


def _excerpt(body: bytes | None, limit: int = 4000) -> str | None:
    if body is None:
        return None
    return body[:limit].decode("utf-8", errors="replace")
