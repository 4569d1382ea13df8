"""Structured logs: one JSON object per line, always with the request id and the trace id.

`configure_logging` is called by app factories and workers first, never at import; it also
sets up the process's tracing (`strangler.plumbing.tracing`), so that every line logged inside
a span names its trace. Outside any span (tracing off), a request's line names the trace of
the `traceparent` it came with. This module must never print anything but log lines.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from strangler.plumbing.request_id import current_request_id, current_trace_id
from strangler.plumbing.tracing import configure_tracing, current_ids


def _add_request_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    event.setdefault("request_id", current_request_id.get())
    return event


def _add_trace_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    ids = current_ids()
    if ids is not None:
        event.setdefault("trace_id", ids[0])
        event.setdefault("span_id", ids[1])
    else:
        event.setdefault("trace_id", current_trace_id.get())
    return event


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route structlog and stdlib logging to JSON lines on stderr, tagged with `service`, and
    set up the process's tracing as the environment says."""
    configure_tracing(service)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
        _add_trace_id,
        structlog.processors.dict_tracebacks,
        structlog.processors.JSONRenderer(),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
