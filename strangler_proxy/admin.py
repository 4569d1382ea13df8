"""The admin API: read and change the route table, see its history, shadow diffs and breakers.

Mounted under a path prefix (`/_admin` by default), on the public port or on its own loopback
port, behind `admin_guard` (anti-forgery, token, body limit). The token's name is the actor
the audit log records; `X-Admin-Actor` or `actor` in a body is kept beside it as a claim only.
Changes are validated as a whole table and swapped atomically by `TableStore`. This module
must never forward client traffic.

    GET  /routes                      the table in force, its version and source
    PATCH /routes/{name}              {"changes": {...}, "reason": str, "actor"?: str}
    PUT  /table                       a whole TOML table as the body (?reason=...)
    POST /table/reload                reload the table file
    GET  /audit?limit=N               the audit log, oldest first
    GET  /shadow                      mismatch counts per route and diff samples
    GET  /breakers                    breaker state per upstream
    GET  /analysis  POST /analysis/run  canary analysis decisions; run one tick now
    PATCH /routes                     {"routes": {name: {...}, ...}, "reason": str}: all or none
    GET  /freezes                     write freezes in force and writes in flight
    POST /freezes/{context}           {"reason": str, "max_seconds"?: n}: returns once drained
    DELETE /freezes/{context}?reason=  thaw
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from strangler.plumbing.errors import PROBLEM_CONTENT_TYPE
from strangler.plumbing.request_id import accept_or_mint
from strangler_proxy.admin_guard import CALLER_KEY, ASGIApp, guarded
from strangler_proxy.admin_tokens import AdminTokens
from strangler_proxy.analysis import CanaryAnalyst
from strangler_proxy.anti_forgery import AntiForgery
from strangler_proxy.audit import Actor, AuditLog
from strangler_proxy.breaker import Breakers
from strangler_proxy.freeze import AlreadyFrozen, Freezes, StillWriting
from strangler_proxy.responses import problem
from strangler_proxy.shadow import ShadowRunner
from strangler_proxy.store import TableStore
from strangler_proxy.table import TableError, table_document


def _problem(request: Request, status: int, detail: str, **extra: Any) -> Response:
    request_id = accept_or_mint(request.headers.get("x-request-id"))
    return JSONResponse(
        problem(status, detail, request_id, **extra),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers={"X-Request-ID": request_id},
    )


def _actor(request: Request, document: dict[str, Any] | None = None) -> Actor:
    """The token's name as the actor; what the caller says of itself only as a claim."""
    claimed = (document or {}).get("actor") or request.headers.get("x-admin-actor")
    return Actor(request.scope[CALLER_KEY], str(claimed)[:100] if claimed else None)


async def _json_object(request: Request) -> dict[str, Any] | Response:
    try:
        document = await request.json()
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return _problem(request, 400, "the body is not JSON")
    if not isinstance(document, dict):
        return _problem(request, 422, "the body must be a JSON object")
    return document


def _freeze_routes(freezes: Freezes, drain_seconds: float) -> list[Route]:
    """GET /freezes, POST /freezes/{context} (returns once drained), DELETE to thaw."""

    async def read_freezes(request: Request) -> Response:
        return JSONResponse(freezes.describe())

    async def freeze(request: Request) -> Response:
        document = await _json_object(request)
        if isinstance(document, Response):
            return document
        reason = str(document.get("reason") or "").strip()
        max_seconds = document.get("max_seconds", freezes.max_seconds)
        is_number = isinstance(max_seconds, int | float) and not isinstance(max_seconds, bool)
        if not reason or not is_number or not 0 < max_seconds <= freezes.max_seconds:
            return _problem(
                request,
                422,
                f"a freeze needs a reason and max_seconds in (0, {freezes.max_seconds}]",
            )
        context = request.path_params["context"]
        try:
            frozen = await freezes.freeze(
                context, float(max_seconds), drain_seconds, _actor(request, document), reason
            )
        except AlreadyFrozen:
            return _problem(request, 409, f"{context} is frozen already; thaw it first")
        except StillWriting as error:
            detail = (
                f"{error.in_flight} writes to {context} were still in flight after "
                f"{drain_seconds}s; the freeze was abandoned"
            )
            return _problem(request, 504, detail)
        return JSONResponse(frozen)

    async def thaw(request: Request) -> Response:
        context = request.path_params["context"]
        reason = request.query_params.get("reason", "").strip() or "thaw requested"
        thawed = freezes.thaw(context, _actor(request), reason)
        if thawed is None:
            return _problem(request, 404, f"{context} is not frozen")
        return JSONResponse(thawed)

    return [
        Route("/freezes", read_freezes, methods=["GET"]),
        Route("/freezes/{context}", freeze, methods=["POST"]),
        Route("/freezes/{context}", thaw, methods=["DELETE"]),
    ]


def create_admin_app(
    tokens: AdminTokens,
    anti_forgery: AntiForgery,
    store: TableStore,
    audit: AuditLog,
    shadow: ShadowRunner,
    breakers: Breakers,
    analyst: CanaryAnalyst,
    freezes: Freezes,
    freeze_drain_seconds: float,
) -> ASGIApp:
    """Build the admin ASGI app for one proxy process."""

    def table_view() -> dict[str, Any]:
        snapshot = store.current
        return {
            "version": snapshot.version,
            "source": snapshot.source,
            "file": str(store.file) if store.file else None,
            "upstreams": snapshot.upstream_urls,
            "last_error": store.last_error,
            "table": table_document(snapshot.table),
        }

    async def read_routes(request: Request) -> Response:
        return JSONResponse(table_view())

    async def change_route(request: Request) -> Response:
        document = await _json_object(request)
        if isinstance(document, Response):
            return document
        if not isinstance(document.get("changes"), dict):
            return _problem(request, 422, "the body needs an object 'changes' and a 'reason'")
        reason = str(document.get("reason") or "").strip()
        if not reason:
            return _problem(request, 422, "a change needs a reason")
        name = request.path_params["name"]
        try:
            store.change_route(name, document["changes"], _actor(request, document), reason)
        except KeyError:
            return _problem(request, 404, f"there is no route named {name!r}")
        except TableError as error:
            return _problem(request, 422, "the change was refused", problems=error.problems)
        return JSONResponse(table_view())

    async def change_routes(request: Request) -> Response:
        document = await _json_object(request)
        if isinstance(document, Response):
            return document
        changes = document.get("routes")
        is_valid = isinstance(changes, dict) and all(
            isinstance(fields, dict) for fields in changes.values()
        )
        if not is_valid or not changes:
            return _problem(request, 422, "the body needs an object 'routes': {name: {changes}}")
        reason = str(document.get("reason") or "").strip()
        if not reason:
            return _problem(request, 422, "a change needs a reason")
        try:
            store.change_routes(changes, _actor(request, document), reason)
        except KeyError as error:
            return _problem(request, 404, f"there is no route named {error.args[0]!r}")
        except TableError as error:
            return _problem(request, 422, "the change was refused", problems=error.problems)
        return JSONResponse(table_view())

    async def replace_table(request: Request) -> Response:
        raw = await request.body()  # at most MAX_BODY_BYTES: `guarded` read it
        reason = request.query_params.get("reason", "").strip() or "table replaced"
        try:
            store.replace_text(raw.decode("utf-8", errors="replace"), _actor(request), reason)
        except TableError as error:
            return _problem(request, 422, "the table was refused", problems=error.problems)
        return JSONResponse(table_view())

    async def reload_table(request: Request) -> Response:
        if store.file is None:
            return _problem(request, 409, "the proxy was not started with a table file")
        reason = request.query_params.get("reason", "").strip() or "reload requested"
        try:
            store.load_file(store.file, _actor(request), reason)
        except TableError as error:
            return _problem(request, 422, "the table was refused", problems=error.problems)
        return JSONResponse(table_view())

    async def read_audit(request: Request) -> Response:
        raw_limit = request.query_params.get("limit", "200")
        limit = int(raw_limit) if raw_limit.isdigit() else 200
        return JSONResponse({"entries": audit.entries(max(1, min(limit, 10_000)))})

    async def read_shadow(request: Request) -> Response:
        return JSONResponse(shadow.describe())

    async def read_breakers(request: Request) -> Response:
        return JSONResponse({"upstreams": breakers.describe()})

    async def read_analysis(request: Request) -> Response:
        return JSONResponse({"decisions": list(analyst.decisions)})

    async def run_analysis(request: Request) -> Response:
        return JSONResponse({"decisions": analyst.analyse_once()})

    routes = [
        Route("/routes", read_routes, methods=["GET"]),
        Route("/routes", change_routes, methods=["PATCH"]),
        Route("/routes/{name}", change_route, methods=["PATCH"]),
        *_freeze_routes(freezes, freeze_drain_seconds),
        Route("/table", replace_table, methods=["PUT"]),
        Route("/table/reload", reload_table, methods=["POST"]),
        Route("/audit", read_audit, methods=["GET"]),
        Route("/shadow", read_shadow, methods=["GET"]),
        Route("/breakers", read_breakers, methods=["GET"]),
        Route("/analysis", read_analysis, methods=["GET"]),
        Route("/analysis/run", run_analysis, methods=["POST"]),
    ]
    handlers = {HTTPException: _http_problem, Exception: _server_problem}
    return guarded(Starlette(routes=routes, exception_handlers=handlers), tokens, anti_forgery)


async def _http_problem(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (no such admin path, wrong method) as problems."""
    assert isinstance(error, HTTPException)
    detail = f"{request.method} {request.url.path} of the admin API: {error.detail}"
    response = _problem(request, error.status_code, detail)
    response.headers.update(error.headers or {})
    return response


async def _server_problem(request: Request, error: Exception) -> Response:
    return _problem(request, 500, "the admin API failed; the proxy's log has the details")
