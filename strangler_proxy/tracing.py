"""The proxy's spans: one server span per request, one client span per upstream attempt.

The forwarding client is the proxy's own (`upstream_pool`), not a library an instrumentation
package knows, so the proxy records its spans itself, through the OpenTelemetry SDK that
`strangler.plumbing.tracing` configured: a `SERVER` span for the request (continuing the
client's `traceparent`, if it sent one), and under it a `CLIENT` span for each upstream it
tries (the service, then the monolith when a safe read falls back), whose context is the
`traceparent` that upstream receives, so the service's own span hangs under the hop that
reached it. A shadow copy is traced by the aiohttp instrumentation under the same server span
(`shadow_trace_configs`). With tracing off none of this exists and the hot path pays one
`is None` test. This module must never choose a route nor change a request's answer.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
)

from strangler.plumbing.tracing import tracing_enabled

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def parent_context(traceparent: str | None) -> Context | None:
    """The context of a well-formed incoming `traceparent` (None: start a new trace)."""
    if not traceparent or len(traceparent) != 55 or traceparent[:3] != "00-":
        return None
    try:
        trace_id = int(traceparent[3:35], 16)
        span_id = int(traceparent[36:52], 16)
        flags = TraceFlags(int(traceparent[53:55], 16))
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    remote = SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(remote))


def traceparent_of(span: Span) -> str:
    """The W3C `traceparent` that makes the next hop a child of `span`."""
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


class ProxyTracing:
    """Starts and ends the proxy's spans (only built when tracing is on)."""

    def __init__(self, tracer: trace.Tracer | None = None) -> None:
        self.tracer = tracer or trace.get_tracer("strangler_proxy")

    def request(self, traceparent: str | None, method: str, path: str) -> Span:
        """The server span of one request, continuing the client's trace if it sent one."""
        return self.tracer.start_span(
            method,
            context=parent_context(traceparent),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        )

    def attempt(self, request: Span, upstream: str, method: str) -> Span:
        """A client span for one try of one upstream, under the request's span."""
        return self.tracer.start_span(
            f"{method} {upstream}",
            context=trace.set_span_in_context(request),
            kind=SpanKind.CLIENT,
            attributes={"strangler.upstream": upstream, "http.request.method": method},
        )

    @staticmethod
    def finish_attempt(span: Span, status: int | None, failure: str | None = None) -> None:
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        if failure is not None or (status is not None and status >= 500):
            span.set_attribute("error.type", failure or str(status))
            span.set_status(StatusCode.ERROR)
        span.end()

    @staticmethod
    def finish_request(
        span: Span, method: str, route: str, target: str, status: int, fallback: str | None
    ) -> None:
        span.update_name(f"{method} {route}")
        attributes: dict[str, Any] = {
            "strangler.route": route,
            "strangler.upstream": target,
            "http.response.status_code": status,
        }
        if fallback is not None:
            attributes["strangler.fallback"] = fallback
        span.set_attributes(attributes)
        if status >= 500:
            span.set_attribute("error.type", str(status))
            span.set_status(StatusCode.ERROR)
        span.end()


def proxy_tracing() -> ProxyTracing | None:
    """The proxy's tracing when this process traces (`configure_tracing` ran), else None."""
    return ProxyTracing() if tracing_enabled() else None


def shadow_trace_configs() -> list[Any]:
    """aiohttp trace configs for the shadow session: a client span per copy, when tracing."""
    if not tracing_enabled():
        return []
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config

    return [create_trace_config()]
