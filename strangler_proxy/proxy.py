"""The request path of the proxy: canonicalise, route, choose a side, forward, fall back, record.

`Proxy.handle` is the hot path; it reads the current table snapshot once per request, so a
table swap never affects a request already in flight. A write of a context frozen for its
cutover waits for the thaw first and is then planned on the table in force (see `freeze`).
Safe requests fall back to the monolith when the service fails (refused, timeout, 5xx, breaker
open) while the monolith still owns the route's data; everything else gets a problem+json
502/503/504 with the request id. Safe requests wait less for an upstream than writes
(`read_timeout`), so that a fallback still comes in time. With tracing on (`tracing`), each
request is a server span and each upstream attempt a client span under it. This module must
never change the route table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from strangler.plumbing.request_id import current_request_id
from strangler_proxy.access_log import AccessLog
from strangler_proxy.analysis import CanaryAnalyst
from strangler_proxy.breaker import Breakers
from strangler_proxy.canary import CanaryAssigner
from strangler_proxy.forwarding import (
    SMALL_BODY_BYTES,
    BodyStream,
    BodyTooLarge,
    ClientGone,
    Forwarding,
    Receive,
    Send,
    Timeouts,
    UpstreamBroke,
    UpstreamFailed,
    UpstreamResponse,
    read_body,
    relay,
)
from strangler_proxy.freeze import Freezes
from strangler_proxy.headers import IncomingRequest, TrustedProxies, rewrite_request_headers
from strangler_proxy.limits import HeadLimits
from strangler_proxy.metrics import ProxyMetrics
from strangler_proxy.paths import CanonicalPath, UnsafePath, canonicalise
from strangler_proxy.responses import send_problem
from strangler_proxy.serverless_targets import ServerlessTargets, is_serverless
from strangler_proxy.settings import ProxySettings
from strangler_proxy.shadow import Answer, ShadowJob, ShadowRunner
from strangler_proxy.store import Snapshot, TableStore
from strangler_proxy.table import MONOLITH, SAFE_METHODS, DataOwner, Fallback, Mode, Route
from strangler_proxy.tracing import ProxyTracing, traceparent_of

UNMATCHED = "unmatched"


@dataclass(slots=True)  # not frozen: a frozen init costs a microsecond on the hot path
class Plan:
    """Where one request goes: the first upstream, whether it may fall back, what to shadow."""

    route: Route | None
    primary: str
    may_fall_back: bool
    shadow_to: str | None

    @property
    def route_name(self) -> str:
        return self.route.name if self.route else UNMATCHED


@dataclass(slots=True)
class Outcome:
    status: int = 0
    target: str = MONOLITH
    fell_back: str | None = None
    span: Any = None  # the request's server span, when tracing


class Proxy:
    """Everything the hot path needs, wired once by the app factory."""

    def __init__(
        self,
        settings: ProxySettings,
        store: TableStore,
        forwarder: Forwarding,
        breakers: Breakers,
        assigner: CanaryAssigner,
        shadow: ShadowRunner,
        analyst: CanaryAnalyst,
        metrics: ProxyMetrics,
        access_log: AccessLog | None,
        freezes: Freezes,
    ) -> None:
        self.access_log = access_log
        self.freezes = freezes
        self.settings = settings
        self.store = store
        self.forwarder = forwarder
        self.breakers = breakers
        self.assigner = assigner
        self.shadow = shadow
        self.analyst = analyst
        self.metrics = metrics
        self.trusted = TrustedProxies(settings.trusted_proxies)
        self.limits = HeadLimits(
            settings.max_target_bytes, settings.max_header_bytes, settings.max_headers
        )
        self.tracing: ProxyTracing | None = None  # set at startup when the process traces
        self.serverless: ServerlessTargets | None = None  # functions and buckets, when wired

    def plan(
        self,
        route: Route | None,
        method: str,
        incoming: IncomingRequest,
        client: str | None,
        unmatched: str = MONOLITH,
    ) -> Plan:
        if route is None:
            return Plan(None, unmatched, False, None)
        if route.mode is Mode.MONOLITH:
            return Plan(route, MONOLITH, False, None)
        if route.mode is Mode.SERVICE:
            to_service = True
        elif route.mode is Mode.SHADOW:
            to_service = self.assigner.forced_side(incoming.lookup) is True
        else:
            to_service = self.assigner.goes_to_service(
                route.canary_percent, incoming.lookup, client
            )
        if to_service:
            may_fall_back = (
                method in SAFE_METHODS
                and route.fallback is Fallback.MONOLITH
                and route.owner is DataOwner.MONOLITH
            )
            return Plan(route, route.service_upstream, may_fall_back, None)
        is_shadowed = route.mode is Mode.SHADOW or route.analysis is not None
        return Plan(route, MONOLITH, False, route.service_upstream if is_shadowed else None)

    async def handle(
        self, scope: dict[str, Any], receive: Receive, send: Send, path: CanonicalPath
    ) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        client = scope.get("client")
        client_address = client[0] if client else None
        incoming = rewrite_request_headers(
            scope["headers"], client_address, scope.get("scheme", "http"), self.trusted
        )
        token = current_request_id.set(incoming.request_id)
        snapshot = self.store.current
        route = snapshot.router.match(method, path.match_key)
        frozen = self.freezes.frozen_context(route, method)
        if frozen is not None and await self.freezes.wait_for_thaw(frozen):
            frozen, snapshot = None, self.store.current  # a thaw may come with routes moved
            route = snapshot.router.match(method, path.match_key)
        # Behind a trusted front (nginx) the client is the one it names, not the front itself:
        # anonymous callers keep their own canary side.
        plan = self.plan(route, method, incoming, incoming.client, snapshot.table.unmatched)
        outcome = Outcome(target=plan.primary)
        if self.tracing is not None:
            outcome.span = self.tracing.request(
                incoming.lookup.get("traceparent"), method, path.decoded
            )
        writing = None if frozen else self.freezes.enter(route, method)
        try:
            if frozen is not None:
                await self._refuse_frozen(send, frozen, incoming.request_id, outcome)
            else:
                await self._serve(scope, receive, send, path, snapshot, plan, incoming, outcome)
        finally:
            if writing is not None:
                self.freezes.leave(writing)
            elapsed = time.perf_counter() - started
            self._record(plan, method, path, outcome, elapsed, incoming)
            current_request_id.reset(token)

    async def _refuse_frozen(
        self, send: Send, context: str, request_id: str, outcome: Outcome
    ) -> None:
        outcome.status, outcome.target = 503, "proxy"
        seconds = self.freezes.retry_after(context)
        detail = f"writes to {context} are paused while its data moves; retry in {seconds}s"
        retry = [(b"retry-after", str(seconds).encode())]
        await send_problem(send, 503, detail, request_id, retry)

    async def _serve(
        self,
        scope: dict[str, Any],
        receive: Receive,
        send: Send,
        path: CanonicalPath,
        snapshot: Snapshot,
        plan: Plan,
        incoming: IncomingRequest,
        outcome: Outcome,
    ) -> None:
        method: str = scope["method"]
        limit = self.settings.max_body_bytes
        request_id = incoming.request_id
        query = scope.get("query_string", b"")
        target = path.forward + ("?" + query.decode("latin-1") if query else "")
        # Normalising may re-encode a path longer than it arrived (the front door saw the raw).
        refusal = self.limits.target_refusal(len(target))
        if refusal is not None:
            outcome.status = refusal.status
            await send_problem(send, refusal.status, refusal.detail, request_id)
            return
        if incoming.content_length is not None and incoming.content_length > limit:
            outcome.status = 413
            await send_problem(send, 413, f"the body is larger than {limit} bytes", request_id)
            return
        try:
            body = await self._request_body(method, receive, incoming)
            await self._forward(method, target, body, snapshot, plan, incoming, outcome, send)
        except BodyTooLarge:
            outcome.status = 413
            await send_problem(send, 413, f"the body is larger than {limit} bytes", request_id)
        except ClientGone:
            outcome.status = 499

    async def _request_body(
        self, method: str, receive: Receive, incoming: IncomingRequest
    ) -> bytes | BodyStream | None:
        """Small or safe bodies whole (so a failed request can be retried), others streamed."""
        limit = self.settings.max_body_bytes
        length = incoming.content_length
        if length is None and not incoming.is_chunked:
            return None  # HTTP/1.1 framing: no length and not chunked means no body at all
        if method in SAFE_METHODS or (length is not None and length <= SMALL_BODY_BYTES):
            body = await read_body(receive, limit)
            # An empty chunked body is no body: send none, not `Content-Length: 0`.
            return body if body or length is not None else None
        return BodyStream(receive, limit, length)

    def _attempts(self, plan: Plan) -> list[str]:
        return (
            [plan.primary, MONOLITH]
            if plan.may_fall_back and plan.primary != MONOLITH
            else [plan.primary]
        )

    async def _forward(
        self,
        method: str,
        target: str,
        body: bytes | BodyStream | None,
        snapshot: Snapshot,
        plan: Plan,
        incoming: IncomingRequest,
        outcome: Outcome,
        send: Send,
    ) -> None:
        route = plan.route
        timeout = self.forwarder.timeout(
            (route.connect_timeout if route else None) or self.settings.connect_timeout,
            read_timeout(route, method, self.settings),
        )
        failure: UpstreamFailed | None = None
        for upstream in self._attempts(plan):
            if failure is not None:
                outcome.fell_back = failure.reason
                self.metrics.fallbacks.labels(plan.route_name, plan.primary, failure.reason).inc()
            outcome.target = upstream
            breaker = self.breakers.for_upstream(upstream)
            if not breaker.allows_request():
                failure = UpstreamFailed(
                    "breaker-open", 503, f"the {upstream} upstream is unavailable"
                )
                continue
            base_url = snapshot.upstream_urls[upstream]
            attempt = None
            if self.tracing is not None:
                attempt = self.tracing.attempt(outcome.span, upstream, method)
                incoming.continue_trace(traceparent_of(attempt))
            try:
                opened = await self._open(method, base_url, target, route, body, timeout, incoming)
            except UpstreamFailed as error:
                if attempt is not None:
                    ProxyTracing.finish_attempt(attempt, None, error.reason)
                breaker.record_failure()
                self.metrics.upstream_failures.labels(upstream, error.reason).inc()
                failure = error
                continue
            if attempt is not None:
                ProxyTracing.finish_attempt(attempt, opened.status)
            is_server_error = opened.status >= 500 and upstream != MONOLITH
            if is_server_error and upstream != self._attempts(plan)[-1]:
                breaker.record_failure()
                self.metrics.upstream_failures.labels(upstream, "status-5xx").inc()
                opened.close()
                failure = UpstreamFailed("status-5xx", opened.status, "the service failed")
                continue
            if is_server_error:
                breaker.record_failure()
            else:
                breaker.record_success()
            outcome.status = opened.status
            if opened.status >= 400 and method != "HEAD":
                opened.replace_error_page(upstream, incoming.request_id)
            tee_limit = self.settings.shadow_max_body_bytes if plan.shadow_to else 0
            try:
                kept = await relay(opened, send, tee_limit)
            except UpstreamBroke:
                breaker.record_failure()
                self.metrics.upstream_failures.labels(upstream, "broken-mid-response").inc()
                raise
            if (
                plan.shadow_to
                and plan.route is not None
                and plan.shadow_to in snapshot.upstream_urls
            ):
                self._submit_shadow(
                    method, target, snapshot, plan, incoming, opened, kept, outcome.span
                )
            return
        assert failure is not None
        outcome.status = failure.status
        await send_problem(send, failure.status, failure.detail, incoming.request_id)

    async def _open(
        self,
        method: str,
        base_url: str,
        target: str,
        route: Route | None,
        body: bytes | BodyStream | None,
        timeout: Timeouts,
        incoming: IncomingRequest,
    ) -> UpstreamResponse:
        """The upstream's response head: an HTTP server's, or a function's or bucket's."""
        if self.serverless is not None and is_serverless(base_url):
            return await self.serverless.open_response(
                base_url, method, target, route, incoming.forward, body, timeout.read,
                incoming.request_id,
            )  # fmt: skip
        return await self.forwarder.open_response(
            method, base_url, target, incoming.forward, body, timeout, incoming.request_id
        )

    def _submit_shadow(
        self,
        method: str,
        target: str,
        snapshot: Snapshot,
        plan: Plan,
        incoming: IncomingRequest,
        opened: UpstreamResponse,
        kept: bytes | None,
        span: Any,
    ) -> None:
        route = plan.route
        assert route is not None and plan.shadow_to is not None
        answer = Answer(opened.status, opened.content_type, kept)
        ignore = tuple(rule.field for rule in (*snapshot.table.shadow_ignore, *route.shadow_ignore))
        self.shadow.submit(
            ShadowJob(
                route=route,
                method=method,
                target=target,
                headers=incoming.forward,
                request_id=incoming.request_id,
                service_url=snapshot.upstream_urls[plan.shadow_to],
                monolith_url=snapshot.upstream_urls[MONOLITH],
                monolith_answer=answer,
                ignore_fields=ignore,
                parent_span=span,
            )
        )

    def _record(
        self,
        plan: Plan,
        method: str,
        path: CanonicalPath,
        outcome: Outcome,
        elapsed: float,
        incoming: IncomingRequest,
    ) -> None:
        status = outcome.status or 500
        self.metrics.observe(plan.route_name, outcome.target, method, status, elapsed)
        if outcome.span is not None:
            ProxyTracing.finish_request(
                outcome.span, method, plan.route_name, outcome.target, status, outcome.fell_back
            )
        route = plan.route
        if route is not None and route.analysis is not None:
            is_error = status >= 500 or outcome.fell_back is not None
            self.analyst.record(route.name, plan.primary != MONOLITH, is_error, elapsed)
        if self.access_log is not None:
            self.access_log.record(
                request_id=current_request_id.get(),
                method=method,
                path=path.decoded,
                route=plan.route_name,
                target=outcome.target,
                status=status,
                fallback=outcome.fell_back,
                seconds=elapsed,
                trace_id=incoming.traceparent[3:35],
                client=incoming.client,
            )


def read_timeout(route: Route | None, method: str, settings: ProxySettings) -> float:
    """Seconds an upstream may take to start answering (and between two of its chunks).

    The route's own wins; else a safe request gets the short default, so that a hung
    service leaves time to fall back to the monolith, and a write the longer one.
    """
    if route is not None and route.read_timeout is not None:
        return route.read_timeout
    return settings.safe_read_timeout if method in SAFE_METHODS else settings.write_read_timeout


async def reject_path(send: Send, error: UnsafePath, request_id: str) -> None:
    """The answer to a request target that has no single meaning."""
    await send_problem(send, 400, f"the request path is not acceptable: {error}", request_id)


def canonical_or_none(scope: dict[str, Any]) -> CanonicalPath | UnsafePath:
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    try:
        return canonicalise(raw)
    except UnsafePath as error:
        return error
