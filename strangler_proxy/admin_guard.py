"""What every admin request passes before the admin API sees it, in this order.

1. The anti-forgery check (`anti_forgery`): a request a web page could have made a browser
   send -> 403.
2. The token (`admin_tokens`): none of the configured ones as `Authorization: Bearer` -> 401;
   with none configured the API is closed.
3. The body: a declared length over `MAX_BODY_BYTES` -> 413 before any of it is read; a
   chunked body is read only until it passes the limit -> 413.
The app behind then finds the token's name in its scope (`CALLER_KEY`) and the body, already
read, given to it as it arrived; every answer carries `X-Request-ID`. This module must never
change anything the admin API manages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from strangler.plumbing.request_id import accept_or_mint
from strangler_proxy.admin_tokens import AdminTokens
from strangler_proxy.anti_forgery import AntiForgery
from strangler_proxy.forwarding import BodyTooLarge, ClientGone, read_body
from strangler_proxy.responses import send_problem

# Every admin body (a whole table is the largest) is read up to this and no further.
MAX_BODY_BYTES = 1024 * 1024
# Where `guarded` leaves the name of the caller's token in the request's scope.
CALLER_KEY = "strangler.admin_token_name"

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def guarded(app: ASGIApp, tokens: AdminTokens, anti_forgery: AntiForgery) -> ASGIApp:
    """`app` behind the anti-forgery check, the token check and the body limit, in that order.

    The body is read here, up to `MAX_BODY_BYTES`, and handed to `app` as it arrived: a
    declared length over the limit is refused before any of it is read, a chunked body as soon
    as it passes the limit.
    """

    async def guard(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        request_id = accept_or_mint(headers.get("x-request-id"))
        forged = anti_forgery.refusal(headers, scope.get("scheme", "http"))
        if forged is not None:
            await send_problem(send, 403, forged, request_id)
            return
        name = tokens.name_in(headers.get("authorization"))
        if name is None:
            detail = "the admin API needs an admin token as `Authorization: Bearer <token>`"
            challenge = [(b"www-authenticate", b"Bearer")]
            await send_problem(send, 401, detail, request_id, challenge)
            return
        declared = headers.get("content-length", "").strip()
        too_large = f"an admin request body is at most {MAX_BODY_BYTES} bytes"
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await send_problem(send, 413, too_large, request_id)
            return
        try:
            body = await read_body(receive, MAX_BODY_BYTES)
        except BodyTooLarge:
            await send_problem(send, 413, too_large, request_id)
            return
        except ClientGone:
            return
        await app({**scope, CALLER_KEY: name}, _replay(body, receive), _with_id(send, request_id))

    return guard


def _with_id(send: Any, request_id: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """A `send` that adds `X-Request-ID` to a response that does not carry one."""

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"x-request-id" for name, _ in headers):
                headers.append((b"x-request-id", request_id.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return sending


def _replay(body: bytes, receive: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A `receive` that gives `body` (already read) once, then whatever the client sends."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> dict[str, Any]:
        if pending:
            return pending.pop()
        message: dict[str, Any] = await receive()
        return message

    return replayed
