"""Request ids: accept a sane client-supplied `X-Request-ID`, otherwise mint a new one.

The current id lives in a context variable so that logs anywhere in the request carry it; so
does the trace id of the request's `traceparent`, for the log lines written outside any span.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

current_request_id: ContextVar[str] = ContextVar("request_id", default="-")
current_trace_id: ContextVar[str | None] = ContextVar("trace_id", default=None)


def accept_or_mint(supplied: str | None) -> str:
    """Return the client's id when it is short and plain, else a fresh uuid4 hex."""
    if supplied is not None and _SANE.fullmatch(supplied):
        return supplied
    return uuid.uuid4().hex
