"""A small builder of API Gateway HTTP API events (payload format 2.0) and reader of the answers.

For the tests of the polls functions, which call `handler` directly, as API Gateway would. The
proxy's own builder (the function target) turns real HTTP requests into the same events.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


def http_event(
    method: str,
    target: str,
    *,
    json_body: Any = None,
    raw_body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The event of `method target` (a path with an optional query), as API Gateway sends it."""
    path, query = urlsplit(target).path, urlsplit(target).query
    sent = {name.lower(): value for name, value in (headers or {}).items()}
    body: bytes | None = raw_body
    if json_body is not None:
        body = json.dumps(json_body).encode()
        sent.setdefault("content-type", "application/json")
    if body is not None:
        sent["content-length"] = str(len(body))
    sent.setdefault("host", "polls.local")
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": sent,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "polls.local",
            "domainPrefix": "polls",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "tests",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": body is not None,
    }
    if body is not None:
        event["body"] = base64.b64encode(body).decode()
    return event


@dataclass(frozen=True)
class Answer:
    """A function's answer (payload 2.0 response), its body decoded."""

    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def of(cls, response: dict[str, Any]) -> Answer:
        raw = response.get("body") or ""
        body = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
        headers = {name.lower(): value for name, value in response.get("headers", {}).items()}
        return cls(int(response["statusCode"]), headers, body)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()
