"""An in-memory stand-in for the proxy's forwarding: each upstream is a Python function.

`FakeUpstreams({"http://monolith": answer, ...})` answers `open_response` by calling the
function of the request's upstream with (method, target, headers, body); the function returns
(status, headers, body), or raises `UpstreamFailed` (a refused connection, a timeout). It keeps
every request it was asked to forward, so a test can tell who was asked. No socket is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strangler.plumbing.errors import PROBLEM_CONTENT_TYPE
from strangler_proxy.forwarding import BodyStream, Timeouts, UpstreamFailed

Answer = tuple[int, dict[str, str], bytes]
Upstream = Callable[[str, str, list[tuple[str, str]], bytes], Answer]


def json_answer(status: int, body: bytes) -> Answer:
    return status, {"content-type": "application/json"}, body


def refused(method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> Answer:
    raise UpstreamFailed("connect", 502, "the upstream refused the connection")


@dataclass
class FakeResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes | None
    content_type: str

    async def read_chunk(self) -> bytes:
        return b""

    def replace_error_page(self, upstream: str, request_id: str) -> None:
        if self.content_type.startswith(("application/json", PROBLEM_CONTENT_TYPE)):
            return
        self.body = b'{"title": "replaced"}'
        self.content_type = PROBLEM_CONTENT_TYPE

    def release(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class FakeUpstreams:
    upstreams: dict[str, Upstream]
    asked: list[tuple[str, str, str]] = field(default_factory=list)  # (base URL, method, target)

    async def start(self, trace_configs: object = None) -> None: ...

    async def close(self) -> None: ...

    @property
    def session(self) -> Any:
        raise RuntimeError("the fake forwards no shadow copies")

    def timeout(self, connect: float, read: float) -> Timeouts:
        return Timeouts(connect, read)

    async def open_response(
        self,
        method: str,
        base_url: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | BodyStream | None,
        timeout: Timeouts,
        request_id: str,
    ) -> FakeResponse:
        self.asked.append((base_url, method, target))
        if isinstance(body, BodyStream):
            body = b"".join([chunk async for chunk in body])
        status, answer_headers, content = self.upstreams[base_url](
            method, target, headers, body or b""
        )
        raw = [(name.encode(), value.encode()) for name, value in answer_headers.items()]
        raw.append((b"content-length", str(len(content)).encode()))
        raw.append((b"x-request-id", request_id.encode()))
        kind = answer_headers.get("content-type", "")
        return FakeResponse(status, raw, content, kind)

    def asked_of(self, base_url: str) -> int:
        return sum(1 for asked in self.asked if asked[0] == base_url)
