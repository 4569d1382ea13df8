"""The admin API: read and change the route table, see its history, shadow diffs and breakers.

Mounted under a path prefix (`/_admin` by default), on the public port or on its own loopback
port, behind `admin_guard` (anti-forgery, token, body limit). The token's name is the actor
the audit log records; `X-Admin-Actor` or `actor` in a body is kept beside it as a claim only.
Changes are validated as a whole table and swapped atomically by `TableStore`. This module
must never forward client traffic.

    GET  /identity                    which system this proxy fronts
    GET  /routes                      the table in force, its version and source
    PATCH /routes/{name}              {"changes": {...}, "reason": str, "actor"?: str}
    PUT  /table                       a whole TOML table as the body (?reason=...)
    POST /table/reload                reload the migration state's routes (else the table file)
    GET  /audit?limit=N               the audit log, oldest first
    GET  /shadow                      mismatch counts per route and diff samples
    GET  /breakers                    breaker state per upstream
    GET  /analysis  POST /analysis/run  canary analysis decisions; run one tick now
    PATCH /routes                     {"routes": {name: {...}, ...}, "reason": str}: all or none
    PATCH ... "fence": {context: lease}  the live leases an owner move holds (with a state)
    GET  /freezes                     write freezes in force and writes in flight
    POST /freezes/{context}           {"reason", "max_seconds"?, "lease_seconds"?}: once drained
    POST /freezes/{context}/renew     {"lease": id}: extend the lease by its length
    DELETE /freezes/{context}?reason=&lease=  thaw
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
from strangler_proxy.freeze import AlreadyFrozen, Freezes, NoSuchLease, StillWriting
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


class AdminApi:
    """The admin API of one proxy process: a handler per endpoint, over the proxy's parts."""

    def __init__(
        self,
        store: TableStore,
        audit: AuditLog,
        shadow: ShadowRunner,
        breakers: Breakers,
        analyst: CanaryAnalyst,
        freezes: Freezes,
        freeze_drain_seconds: float,
        system_id: str | None = None,
    ) -> None:
        self.system_id = system_id
        self.store = store
        self.audit = audit
        self.shadow = shadow
        self.breakers = breakers
        self.analyst = analyst
        self.freezes = freezes
        self.freeze_drain_seconds = freeze_drain_seconds

    def routes(self) -> list[Route]:
        return [
            Route("/identity", self.identity, methods=["GET"]),
            Route("/routes", self.read_routes, methods=["GET"]),
            Route("/routes", self.change_routes, methods=["PATCH"]),
            Route("/routes/{name}", self.change_route, methods=["PATCH"]),
            Route("/freezes", self.read_freezes, methods=["GET"]),
            Route("/freezes/{context}", self.freeze, methods=["POST"]),
            Route("/freezes/{context}", self.thaw, methods=["DELETE"]),
            Route("/freezes/{context}/renew", self.renew, methods=["POST"]),
            Route("/table", self.replace_table, methods=["PUT"]),
            Route("/table/reload", self.reload_table, methods=["POST"]),
            Route("/audit", self.read_audit, methods=["GET"]),
            Route("/shadow", self.read_shadow, methods=["GET"]),
            Route("/breakers", self.read_breakers, methods=["GET"]),
            Route("/analysis", self.read_analysis, methods=["GET"]),
            Route("/analysis/run", self.run_analysis, methods=["POST"]),
        ]

    def table_view(self) -> dict[str, Any]:
        snapshot = self.store.current
        return {
            "version": snapshot.version,
            "source": snapshot.source,
            "file": str(self.store.file) if self.store.file else None,
            "upstreams": snapshot.upstream_urls,
            "last_error": self.store.last_error,
            "table": table_document(snapshot.table),
        }

    async def identity(self, request: Request) -> Response:
        """Which system this proxy fronts (None when started without one)."""
        return JSONResponse({"system": self.system_id})

    # The table.

    async def read_routes(self, request: Request) -> Response:
        return JSONResponse(self.table_view())

    async def change_route(self, request: Request) -> Response:
        document = await _json_object(request)
        if isinstance(document, Response):
            return document
        if not isinstance(document.get("changes"), dict):
            return _problem(request, 422, "the body needs an object 'changes' and a 'reason'")
        name = request.path_params["name"]
        return self._change(request, document, {name: document["changes"]})

    async def change_routes(self, request: Request) -> Response:
        document = await _json_object(request)
        if isinstance(document, Response):
            return document
        changes = document.get("routes")
        is_valid = isinstance(changes, dict) and all(
            isinstance(fields, dict) for fields in changes.values()
        )
        if not is_valid or not changes:
            return _problem(request, 422, "the body needs an object 'routes': {name: {changes}}")
        return self._change(request, document, changes)

    def _change(
        self, request: Request, document: dict[str, Any], changes: dict[str, Any]
    ) -> Response:
        """Apply route changes, all or none; `fence` names the leases an owner move holds."""
        reason = str(document.get("reason") or "").strip()
        if not reason:
            return _problem(request, 422, "a change needs a reason")
        fence = document.get("fence") or {}
        if not isinstance(fence, dict) or not all(isinstance(v, str) for v in fence.values()):
            return _problem(request, 422, "'fence' maps contexts to the ids of their leases")
        try:
            self.store.change_routes(changes, _actor(request, document), reason, fence)
        except KeyError as error:
            return _problem(request, 404, f"there is no route named {error.args[0]!r}")
        except TableError as error:
            return _problem(request, 422, "the change was refused", problems=error.problems)
        return JSONResponse(self.table_view())

    async def replace_table(self, request: Request) -> Response:
        raw = await request.body()  # at most MAX_BODY_BYTES: `guarded` read it
        reason = request.query_params.get("reason", "").strip() or "table replaced"
        try:
            self.store.replace_text(
                raw.decode("utf-8", errors="replace"), _actor(request), reason
            )
        except TableError as error:
            return _problem(request, 422, "the table was refused", problems=error.problems)
        return JSONResponse(self.table_view())

    async def reload_table(self, request: Request) -> Response:
        """Re-read the migration state (with one), else the table file."""
        reason = request.query_params.get("reason", "").strip() or "reload requested"
        if self.store.state is not None:
            if self.store.reload_if_changed() == "refused":
                return _problem(request, 422, "the state's routes were refused",
                                problems=self.store.last_error)  # fmt: skip
            return JSONResponse(self.table_view())
        if self.store.file is None:
            return _problem(request, 409, "the proxy was not started with a table file")
        try:
            self.store.load_file(self.store.file, _actor(request), reason)
        except TableError as error:
            return _problem(request, 422, "the table was refused", problems=error.problems)
        return JSONResponse(self.table_view())

    # Write freezes.

    async def read_freezes(self, request: Request) -> Response:
        return JSONResponse(self.freezes.describe())

    async def freeze(self, request: Request) -> Response:
        """Freeze a context's writes under a lease; answers once none is in flight."""
        document = await _json_object(request)
        if isinstance(document, Response):
            return document
        limit = self.freezes.max_seconds
        reason = str(document.get("reason") or "").strip()
        max_seconds = document.get("max_seconds", limit)
        lease_seconds = document.get("lease_seconds")
        if not reason or not _seconds(max_seconds, limit) or (
            lease_seconds is not None and not _seconds(lease_seconds, limit)
        ):
            return _problem(
                request, 422,
                f"a freeze needs a reason, and max_seconds and lease_seconds in (0, {limit}]",
            )  # fmt: skip
        context = request.path_params["context"]
        try:
            frozen = await self.freezes.freeze(
                context, float(max_seconds), self.freeze_drain_seconds,
                _actor(request, document), reason,
                float(lease_seconds) if lease_seconds is not None else None,
            )  # fmt: skip
        except AlreadyFrozen:
            return _problem(request, 409, f"{context} is frozen already; thaw it first")
        except StillWriting as error:
            detail = (
                f"{error.in_flight} writes to {context} were still in flight after "
                f"{self.freeze_drain_seconds}s; the freeze was abandoned"
            )
            return _problem(request, 504, detail)
        except OSError as error:
            return _problem(request, 503, f"the freeze could not be recorded: {error}")
        return JSONResponse(frozen)

    async def renew(self, request: Request) -> Response:
        document = await _json_object(request)
        if isinstance(document, Response):
            return document
        context = request.path_params["context"]
        try:
            return JSONResponse(self.freezes.renew(context, str(document.get("lease", ""))))
        except NoSuchLease:
            return _problem(request, 404, f"{context} is not frozen under that lease")
        except OSError as error:
            return _problem(request, 503, f"the renewal could not be recorded: {error}")

    async def thaw(self, request: Request) -> Response:
        context = request.path_params["context"]
        reason = request.query_params.get("reason", "").strip() or "thaw requested"
        lease = request.query_params.get("lease") or None
        thawed = self.freezes.thaw(context, _actor(request), reason, lease)
        if thawed is None:
            return _problem(request, 404, f"{context} is not frozen" +
                            (" under that lease" if lease else ""))  # fmt: skip
        return JSONResponse(thawed)

    # What the proxy saw.

    async def read_audit(self, request: Request) -> Response:
        raw_limit = request.query_params.get("limit", "200")
        limit = int(raw_limit) if raw_limit.isdigit() else 200
        return JSONResponse({"entries": self.audit.entries(max(1, min(limit, 10_000)))})

    async def read_shadow(self, request: Request) -> Response:
        return JSONResponse(self.shadow.describe())

    async def read_breakers(self, request: Request) -> Response:
        return JSONResponse({"upstreams": self.breakers.describe()})

    async def read_analysis(self, request: Request) -> Response:
        return JSONResponse({"decisions": list(self.analyst.decisions)})

    async def run_analysis(self, request: Request) -> Response:
        return JSONResponse({"decisions": self.analyst.analyse_once()})


def _seconds(value: Any, limit: float) -> bool:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return is_number and 0 < value <= limit


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
    system_id: str | None = None,
) -> ASGIApp:
    """The admin ASGI app for one proxy process, behind its guard."""
    api = AdminApi(
        store, audit, shadow, breakers, analyst, freezes, freeze_drain_seconds, system_id
    )
    handlers = {HTTPException: _http_problem, Exception: _server_problem}
    app = Starlette(routes=api.routes(), exception_handlers=handlers)
    return guarded(app, tokens, anti_forgery)


async def _http_problem(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (no such admin path, wrong method) as problems."""
    assert isinstance(error, HTTPException)
    detail = f"{request.method} {request.url.path} of the admin API: {error.detail}"
    response = _problem(request, error.status_code, detail)
    response.headers.update(error.headers or {})
    return response


async def _server_problem(request: Request, error: Exception) -> Response:
    return _problem(request, 500, "the admin API failed; the proxy's log has the details")
