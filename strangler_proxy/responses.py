"""Answers the proxy writes itself (problems, JSON, text) as raw ASGI messages.

Every error a client gets from the proxy itself is RFC 9457 problem+json carrying the request
id, built here and nowhere else. This module must never talk to an upstream.
"""

from __future__ import annotations

import json
from typing import Any

from plumbing.errors import PROBLEM_CONTENT_TYPE, problem_body

Send = Any

PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Payload too large"),
    422: ("validation", "Validation failed"),
    502: ("bad-gateway", "Bad gateway"),
    503: ("unavailable", "Service unavailable"),
    504: ("gateway-timeout", "Gateway timeout"),
}


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: list[tuple[bytes, bytes]],
    is_head: bool = False,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if is_head else body})


def problem(status: int, detail: str, request_id: str, **extra: Any) -> dict[str, Any]:
    slug, title = PROBLEMS.get(status, ("http-error", "Error"))
    return {**problem_body(status, slug, title, detail), "request_id": request_id, **extra}


async def send_problem(
    send: Send,
    status: int,
    detail: str,
    request_id: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps(problem(status, detail, request_id)).encode()
    extra = [(b"x-request-id", request_id.encode()), *(headers or [])]
    await send_bytes(send, status, body, PROBLEM_CONTENT_TYPE, extra)
