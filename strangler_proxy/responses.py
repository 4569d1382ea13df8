"""Answers the proxy writes itself (problems, JSON, text) as raw ASGI messages.

Every error a client gets from the proxy itself is RFC 9457 problem+json carrying the request
id, built here and nowhere else; so is the problem that replaces an upstream's error page (an
HTML 414 from gunicorn, uvicorn's plain-text 500), since the contract allows no other error
body. This module must never talk to an upstream.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from strangler.plumbing.errors import PROBLEM_CONTENT_TYPE, problem_body

Send = Any

PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    408: ("request-timeout", "Request timeout"),
    413: ("payload-too-large", "Payload too large"),
    414: ("uri-too-long", "URI too long"),
    422: ("validation", "Validation failed"),
    431: ("request-header-fields-too-large", "Request header fields too large"),
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
    slug, title = PROBLEMS.get(status, ("http-error", _phrase(status)))
    return {**problem_body(status, slug, title, detail), "request_id": request_id, **extra}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def is_json(content_type: str) -> bool:
    """Whether a body of this type is JSON (`application/json`, a problem, any `+json`)."""
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


# An upstream's headers that describe the body it sent, not the problem sent in its place.
_BODY_HEADERS = frozenset(
    {b"content-type", b"content-length", b"content-encoding", b"content-language", b"etag"}
)


def problem_in_place_of(
    status: int, headers: list[tuple[bytes, bytes]], detail: str, request_id: str
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of a problem+json answer replacing an upstream's error page.

    The status and every other header (`Allow`, `Retry-After`, `X-Request-ID`...) stay.
    """
    body = json.dumps(problem(status, detail, request_id)).encode()
    kept = [(name, value) for name, value in headers if name not in _BODY_HEADERS]
    kept.append((b"content-type", PROBLEM_CONTENT_TYPE.encode()))
    kept.append((b"content-length", str(len(body)).encode()))
    return kept, body


def problem_document(
    status: int, detail: str, request_id: str
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A problem's body and the headers that describe it (type, length, request id)."""
    body = json.dumps(problem(status, detail, request_id)).encode()
    headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    return body, headers


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
