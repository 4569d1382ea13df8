"""The upstreams that are not HTTP servers: a function (`function:package.module:handler`) and
a bucket of static pages (`bucket:NAME/KEY_TEMPLATE`).

A function's request becomes an API Gateway HTTP API event (`function_event`), is invoked in
the handler's worker pool (`function_pool`) within the route's read timeout, and its result
becomes the response; an exception, a malformed result or a dead worker is a 502 and a timeout
a 504, each a problem+json with the request id. A bucket's request is a GET of the key the
template names with the route's path parameters (`results/{poll_id}.html`), read with a
presigned URL (signed locally by botocore with the process's credentials) from the S3
endpoint of the settings (the emulator's locally): a missing key is a 404 problem, the page's
content type passes through. Both answer as an `UpstreamResponse` held whole, so the proxy's
routing, fallback, breakers and metrics treat them as any upstream. This module must never
choose the upstream nor interpret the route table.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from strangler.plumbing.errors import PROBLEM_CONTENT_TYPE
from strangler_proxy.forwarding import BodyStream, ErrorPagesAsProblems, UpstreamFailed
from strangler_proxy.function_event import (
    FunctionRequest,
    MalformedResult,
    http_api_event,
    http_response,
    path_parameters,
    route_key,
)
from strangler_proxy.function_pool import FunctionFailed, FunctionMetrics, FunctionPool
from strangler_proxy.responses import problem_document
from strangler_proxy.table import BUCKET, FUNCTION, Route, target_problem

_BUCKET = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^/].*)$")
_PASSED = (b"content-type", b"etag", b"last-modified", b"cache-control", b"content-encoding")


def is_serverless(base_url: str) -> bool:
    return base_url.startswith((FUNCTION, BUCKET))


@dataclass
class HeldResponse(ErrorPagesAsProblems):
    """An answer held whole in memory (`forwarding.UpstreamResponse`)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes | None
    content_type: str

    async def read_chunk(self) -> bytes:
        return b""

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None


def problem_response(status: int, detail: str, request_id: str) -> HeldResponse:
    body, headers = problem_document(status, detail, request_id)
    return HeldResponse(status, headers, body, PROBLEM_CONTENT_TYPE)


class ServerlessTargets:
    """The function pools of one proxy process and its way to the bucket endpoint."""

    def __init__(
        self,
        pool_size: int,
        metrics: FunctionMetrics,
        bucket_endpoint: str,
        session: Callable[[], aiohttp.ClientSession],
        environment: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self._pool_size = pool_size
        self._metrics = metrics
        self._bucket_endpoint = bucket_endpoint.rstrip("/")
        self._session = session
        self._environment = environment or {}
        self._pools: dict[str, FunctionPool] = {}
        self._signer: Any = None

    def pool(self, import_path: str) -> FunctionPool:
        found = self._pools.get(import_path)
        if found is None:
            found = self._pools[import_path] = FunctionPool(
                import_path, self._pool_size, self._metrics, self._environment.get(import_path)
            )
        return found

    async def open_response(
        self,
        base_url: str,
        method: str,
        target: str,
        route: Route | None,
        headers: list[tuple[str, str]],
        body: bytes | BodyStream | None,
        timeout: float,
        request_id: str,
    ) -> HeldResponse:
        """The answer of a function or a bucket; raise UpstreamFailed when it gives none."""
        problem = target_problem(base_url)
        if problem is not None:
            raise UpstreamFailed("misconfigured", 502, problem)
        path, _, query = target.partition("?")
        if base_url.startswith(BUCKET):
            return await self._page(base_url[len(BUCKET) :], method, path, route, timeout,
                                    request_id)  # fmt: skip
        whole = b"".join([chunk async for chunk in body]) if isinstance(body, BodyStream) else body
        template = route.path if route is not None else None
        request = FunctionRequest(
            method, path, query, headers, whole, request_id, route_key(method, template), template
        )
        event = http_api_event(request)
        try:
            result = await self.pool(base_url[len(FUNCTION) :]).invoke(event, request_id, timeout)
            answer = http_response(result, request_id)
        except FunctionFailed as error:
            raise UpstreamFailed(f"function-{error.reason}", error.status, error.detail) from error
        except MalformedResult as error:
            detail = f"the function's result is malformed: {error}"
            raise UpstreamFailed("function-malformed", 502, detail) from error
        held_body = b"" if method == "HEAD" else answer.body
        return HeldResponse(answer.status, answer.headers, held_body, answer.content_type)

    async def _page(
        self, spec: str, method: str, path: str, route: Route | None, timeout: float,
        request_id: str,
    ) -> HeldResponse:  # fmt: skip
        if method not in ("GET", "HEAD"):
            answer = problem_response(405, f"{method} is not allowed on a page", request_id)
            answer.headers.append((b"allow", b"GET, HEAD"))
            return answer
        matched = _BUCKET.match(spec)
        assert matched is not None
        values = path_parameters(route.path if route else None, path) or {}
        try:
            key = matched["key"].format_map(values)
        except KeyError:
            return problem_response(404, f"there is no page at {path}", request_id)
        try:
            url = self._presigned(matched["bucket"], key)
        except ImportError as error:
            detail = "reading a bucket needs botocore (the toolkit's serverless extra)"
            raise UpstreamFailed("bucket-unavailable", 502, detail) from error
        try:
            async with self._session().get(
                url, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as fetched:
                content = await fetched.read()
                passed = [
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in fetched.headers.items()
                    if name.lower().encode("latin-1") in _PASSED
                ]
                status = fetched.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise UpstreamFailed("bucket-unreachable", 502, "the bucket did not answer") from error
        if status == 404:
            return problem_response(404, f"there is no page at {path}", request_id)
        if status != 200:
            raise UpstreamFailed("bucket-failed", 502, f"the bucket answered {status}")
        content_type = next((v.decode() for n, v in passed if n == b"content-type"), "")
        passed.append((b"content-length", str(len(content)).encode()))
        passed.append((b"x-request-id", request_id.encode()))
        return HeldResponse(200, passed, b"" if method == "HEAD" else content, content_type)

    def _presigned(self, bucket: str, key: str) -> str:
        """A presigned GET of the key (signing is local: no I/O), with the credentials and
        region of this process's environment; the client is made once."""
        if self._signer is None:
            import botocore.session  # only a proxy serving a bucket needs it
            from botocore.config import Config

            session = botocore.session.get_session()
            self._signer = session.create_client(
                "s3", endpoint_url=self._bucket_endpoint,
                region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            )  # fmt: skip
        url: str = self._signer.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300
        )
        return url

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            with contextlib.suppress(Exception):
                await pool.close()
