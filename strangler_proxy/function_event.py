"""An HTTP request as API Gateway's HTTP API event (payload format 2.0), and a function's
result back as an HTTP response.

The event is what a function behind the real gateway receives: headers lower-cased with
repeated ones comma-joined, cookies apart, the query both raw and as a dictionary, the path
parameters of the route template, a body base64-encoded unless it is text. The result may be
a dict with `statusCode` (plus `headers`, `multiValueHeaders`, `cookies`, `body`,
`isBase64Encoded`); as the gateway does, a dict without `statusCode` or a string is a 200 JSON
body. Anything else is malformed. This module must never invoke a function nor do any I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
# Headers of the proxy's own hop the function's gateway would not send.
_NOT_FORWARDED = frozenset({"cookie", "content-length", "transfer-encoding", "connection"})


class MalformedResult(ValueError):
    """A function answered something the gateway cannot turn into a response."""


@dataclass(frozen=True)
class FunctionRequest:
    """What the event is built from: the request as the proxy forwards it."""

    method: str
    path: str  # decoded
    raw_query: str
    headers: list[tuple[str, str]]  # lower-case names, as forwarded
    body: bytes | None
    request_id: str
    route_key: str = "$default"  # `GET /polls/{poll_id}` for a routed request
    route_template: str | None = None


@dataclass(frozen=True)
class FunctionResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    content_type: str


def path_parameters(template: str | None, path: str) -> dict[str, str] | None:
    """The values of a route template's `{name}` parameters in `path` (None: it has none)."""
    if not template or not _PARAMETER.search(template):
        return None
    pattern, position = [], 0
    for found in _PARAMETER.finditer(template):
        pattern.append(re.escape(template[position : found.start()]))
        pattern.append(f"(?P<{found.group(1)}>[^/]+)")
        position = found.end()
    pattern.append(re.escape(template[position:]))
    matched = re.fullmatch("".join(pattern), path.rstrip("/") or "/", re.IGNORECASE)
    return None if matched is None else dict(matched.groupdict())


def _is_text(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return (
        media.startswith(_TEXT_TYPES)
        or media.endswith(("+json", "+xml"))
        or (media == "application/x-www-form-urlencoded")
    )


def http_api_event(request: FunctionRequest, now: float | None = None) -> dict[str, Any]:
    """The payload 2.0 event of one request."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
        if name in _NOT_FORWARDED:
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    if request.body is not None:
        headers["content-length"] = str(len(request.body))
    query: dict[str, str] = {}
    for name, value in parse_qsl(request.raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    stamp = time.time() if now is None else now
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": request.route_key,
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "strangler",
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": headers.get("host", "localhost").split(".")[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": headers.get("x-real-ip", "127.0.0.1"),
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request.request_id,
            "routeKey": request.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(stamp)),
            "timeEpoch": int(stamp * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    parameters = path_parameters(request.route_template, request.path)
    if parameters is not None:
        event["pathParameters"] = parameters
    if request.body:
        if _is_text(headers.get("content-type", "")):
            try:
                event["body"] = request.body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = _encoded(request.body), True
        else:
            event["body"], event["isBase64Encoded"] = _encoded(request.body), True
    return event


def _encoded(body: bytes) -> str:
    return base64.b64encode(body).decode("ascii")


def route_key(method: str, template: str | None) -> str:
    return "$default" if template is None else f"{method} {template}"


def http_response(result: Any, request_id: str) -> FunctionResponse:
    """The HTTP response of a function's result, or raise MalformedResult."""
    if isinstance(result, str) or (isinstance(result, dict) and "statusCode" not in result):
        body = json.dumps(result).encode() if not isinstance(result, str) else result.encode()
        return _assembled(200, [("content-type", "application/json")], body, request_id)
    if not isinstance(result, dict):
        raise MalformedResult(f"the function returned a {type(result).__name__}, not a dict")
    status = result["statusCode"]
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResult(f"statusCode {status!r} is not an HTTP status")
    headers = _header_pairs(result.get("headers"), result.get("multiValueHeaders"))
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        raise MalformedResult("cookies is not a list of strings")
    headers.extend(("set-cookie", cookie) for cookie in cookies)
    return _assembled(status, headers, _body(result), request_id)


def _header_pairs(single: Any, multiple: Any) -> list[tuple[str, str]]:
    if single is not None and not isinstance(single, dict):
        raise MalformedResult("headers is not an object")
    if multiple is not None and not isinstance(multiple, dict):
        raise MalformedResult("multiValueHeaders is not an object")
    pairs = [(str(name).lower(), _header_value(value)) for name, value in (single or {}).items()]
    for name, values in (multiple or {}).items():
        if not isinstance(values, list):
            raise MalformedResult(f"multiValueHeaders.{name} is not a list")
        pairs.extend((str(name).lower(), _header_value(value)) for value in values)
    return pairs


def _header_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MalformedResult(f"a header value must be a string, not {type(value).__name__}")
    text = str(value)
    if "\r" in text or "\n" in text:
        raise MalformedResult("a header value holds a line break")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError as error:
        raise MalformedResult("a header value holds characters HTTP cannot carry") from error
    return text


def _body(result: dict[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedResult(f"body is a {type(body).__name__}, not a string")
    if result.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error as error:
            raise MalformedResult("body is flagged base64 but is not") from error
    return body.encode("utf-8")


_DROPPED = frozenset({"content-length", "transfer-encoding", "connection", "x-request-id"})


def _assembled(
    status: int, headers: Iterable[tuple[str, str]], body: bytes, request_id: str
) -> FunctionResponse:
    kept = [(name, value) for name, value in headers if name not in _DROPPED]
    content_type = next((value for name, value in kept if name == "content-type"), "")
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in kept]
    raw.append((b"content-length", str(len(body)).encode()))
    raw.append((b"x-request-id", request_id.encode()))
    return FunctionResponse(status, raw, body, content_type)
