"""The Flask adapter of the plumbing: request ids, access logs, metrics and problem+json.

`install` wires one Flask app; it is the only place where a Flask app turns exceptions into
responses. With tracing on, the OpenTelemetry Flask instrumentation traces its requests
(`strangler.plumbing.tracing.instrument_flask`). Nothing here knows the app's domain.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, json, request
from werkzeug.exceptions import HTTPException

from strangler.plumbing.bodies import MAX_BODY_BYTES
from strangler.plumbing.errors import PROBLEM_CONTENT_TYPE, AppError, problem_body, routing_problem
from strangler.plumbing.logs import get_logger
from strangler.plumbing.metrics import HttpMetrics
from strangler.plumbing.request_id import (
    HEADER,
    accept_or_mint,
    current_request_id,
    current_trace_id,
)
from strangler.plumbing.tracing import instrument_flask, trace_id_of

log = get_logger("http")


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status=body["status"], mimetype=PROBLEM_CONTENT_TYPE)
    response.headers.update(headers or {})
    return response


def _http_problem(error: HTTPException) -> Response:
    status = error.code or 500
    body = routing_problem(
        status, request.method, request.path, error.name, error.description or error.name
    )
    headers = {}
    if status == 405 and (allowed := error.get_response().headers.get("Allow")):
        headers["Allow"] = allowed
    return problem_response(body, headers)


# How much of a refused body we read and discard before answering; past that we close instead.
DRAIN_LIMIT_BYTES = 8 * MAX_BODY_BYTES


def _drain_refused_body(response: Response) -> None:
    """Read what is left of a body we refused, so the client gets to read our 413.

    A server that closes a connection with unread bytes in it makes the kernel send a reset,
    which can destroy the response on its way to the client. Past the limit we stop reading and
    close the connection instead.
    """
    stream = request.environ.get("wsgi.input")
    drained = 0
    while stream is not None and drained <= DRAIN_LIMIT_BYTES:
        chunk = stream.read(64 * 1024)
        if not chunk:
            return
        drained += len(chunk)
    response.headers["Connection"] = "close"


def install(app: Flask, metrics: HttpMetrics, is_healthy: Callable[[], bool]) -> None:
    """Add request ids, access logs, metrics, /healthz, /metrics, problem+json errors and,
    with tracing on, a span per request."""
    instrument_flask(app)

    @app.before_request
    def _start() -> None:
        g.request_id = accept_or_mint(request.headers.get(HEADER))
        g.request_id_token = current_request_id.set(g.request_id)
        g.trace_id_token = current_trace_id.set(trace_id_of(request.headers.get("traceparent")))
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        if response.status_code == 413:
            _drain_refused_body(response)
        response.headers[HEADER] = g.get("request_id") or accept_or_mint(None)
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.observe(request.method, route, response.status_code, elapsed)
        log.info(
            "request",
            method=request.method,
            path=request.path,
            route=route,
            status=response.status_code,
            duration_ms=round(elapsed * 1000, 2),
        )
        return response

    @app.teardown_request
    def _forget(_: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            current_request_id.reset(token)
        trace_token = g.pop("trace_id_token", None)
        if trace_token is not None:
            current_trace_id.reset(trace_token)

    @app.errorhandler(AppError)
    def _app_error(error: AppError) -> Response:
        return problem_response(error.problem())

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        return _http_problem(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error", error=type(error).__name__)
        return problem_response(
            problem_body(
                500, "internal", "Internal server error", "the request could not be served"
            )
        )

    @app.get("/healthz")
    def healthz() -> tuple[dict[str, str], int]:
        return ({"status": "ok"}, 200) if is_healthy() else ({"status": "unavailable"}, 503)

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        payload, content_type = metrics.exposition()
        return Response(payload, mimetype=content_type.split(";")[0], content_type=content_type)
