"""OpenTelemetry tracing for every process of a system, from the standard `OTEL_*` variables.

`configure_tracing(service)` is called once per process (by `configure_logging`, which every
app factory and worker calls first). It sets the global tracer provider when there is
somewhere to send spans: an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, over http/protobuf), and/or the system's trace spool
(`STRANGLER_TRACES_DIR`, which `strangler up` sets: the console reads recent traces from it).
With neither, or with `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`, nothing is
configured and the OpenTelemetry API stays a no-op costing nothing.

Who records which spans, each exactly once:
- FastAPI services: FastAPI's own telemetry (it traces every request once a provider is set;
  `fastapi_telemetry()` leaves out /healthz and /metrics); no ASGI middleware is added.
- the Flask monolith: `opentelemetry-instrumentation-flask` (`instrument_flask`).
- databases: `opentelemetry-instrumentation-sqlalchemy`, on every engine `make_engine` builds.
- outgoing HTTP: `opentelemetry-instrumentation-httpx` (a service calling another); the proxy's
  shadow copies through `opentelemetry-instrumentation-aiohttp-client`; the proxy's own
  forwarding client is not a library, so the proxy records its spans itself
  (`strangler_proxy.tracing`).
- events: the outbox carries the W3C trace context of the write that recorded the event
  (`traceparent_now`), and the relay and the consumer continue that trace (`span_from`).
This module must never read a variable at import, nor configure anything twice.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

TRACES_DIR_VARIABLE = "STRANGLER_TRACES_DIR"
# Requests every supervisor, scraper and probe sends: never worth a span.
UNTRACED_PATHS = frozenset({"/healthz", "/metrics"})
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_PROPAGATOR = TraceContextTextMapPropagator()
_lock = threading.Lock()
_configured: dict[str, bool] = {}  # {"enabled": bool} once configured in this process


class TracingSettings(BaseSettings):
    """The standard OpenTelemetry variables this toolkit honours, and its trace spool."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    sdk_disabled: bool = Field(default=False, validation_alias="OTEL_SDK_DISABLED")
    traces_exporter: str = Field(default="otlp", validation_alias="OTEL_TRACES_EXPORTER")
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
    )
    service_name: str | None = Field(default=None, validation_alias="OTEL_SERVICE_NAME")
    traces_dir: Path | None = Field(default=None, validation_alias=TRACES_DIR_VARIABLE)

    @property
    def exports(self) -> bool:
        return self.traces_exporter.strip().lower() != "none" and not self.sdk_disabled

    @property
    def is_wanted(self) -> bool:
        return self.exports and (self.otlp_endpoint is not None or self.traces_dir is not None)


def configure_tracing(service: str, settings: TracingSettings | None = None) -> bool:
    """Set this process's tracer provider as the environment says; whether tracing is on.

    The first call decides; later calls (another app factory in the same process) return
    what it decided.
    """
    with _lock:
        if "enabled" in _configured:
            return _configured["enabled"]
        settings = settings or TracingSettings()
        enabled = settings.is_wanted
        if enabled:
            _install_provider(service, settings)
        _configured["enabled"] = enabled
        return enabled


def tracing_enabled() -> bool:
    """Whether `configure_tracing` turned tracing on in this process."""
    return _configured.get("enabled", False)


def _install_provider(service: str, settings: TracingSettings) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from strangler.plumbing.trace_spool import SpoolExporter

    name = settings.service_name or service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if settings.otlp_endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if settings.traces_dir is not None:
        provider.add_span_processor(BatchSpanProcessor(SpoolExporter(settings.traces_dir, name)))
    trace.set_tracer_provider(provider)
    # Its declared range stops below SQLAlchemy 2.1, whose engine events it uses unchanged.
    SQLAlchemyInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)


def instrument_flask(app: Any) -> None:
    """Trace every request of a Flask app (but /healthz and /metrics), when tracing is on."""
    if not tracing_enabled():
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor.instrument_app(app, excluded_urls=",".join(UNTRACED_PATHS))


def fastapi_telemetry() -> dict[str, Any]:
    """FastAPI's own telemetry settings (`FastAPI(telemetry=...)`): spans for every request
    but /healthz and /metrics; metrics stay Prometheus's, logs stay our JSON lines."""
    return {"metrics": False, "logs": False, "exclude": _untraced}


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id a W3C `traceparent` header carries (None if it carries none)."""
    if not traceparent:
        return None
    found = _TRACEPARENT.fullmatch(traceparent.strip())
    return found.group(1) if found else None


def current_ids() -> tuple[str, str] | None:
    """The trace id and span id of the span current here, as hex; None outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def traceparent_now() -> str | None:
    """The W3C `traceparent` of the span current here (for an event to carry), or None."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> otel_context.Context:
    """The context a `traceparent` continues (an empty one when it is None or malformed)."""
    if not traceparent:
        return otel_context.Context()
    return _PROPAGATOR.extract({"traceparent": traceparent}, context=otel_context.Context())


@contextmanager
def span_from(
    traceparent: str | None,
    name: str,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> Iterator[Span]:
    """A span continuing the trace `traceparent` names, current inside the block."""
    tracer = trace.get_tracer("strangler")
    with tracer.start_as_current_span(
        name, context=context_of(traceparent), kind=kind, attributes=attributes or {}
    ) as span:
        yield span
