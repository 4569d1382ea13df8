"""The console's web app: sign-in, the page, its live document, its actions, /healthz, /metrics.

Every request passes `ConsoleGuard` first (request id, a JSON log line, metrics, security
headers, the body limit); every page and API but /signin, /healthz, /metrics and the static
files needs a session (`sessions`), and every request that changes something also passes the
proxy's anti-forgery check with the session's token as its verifier: no other site can make a
signed-in browser act. The live document (`snapshot`) is gathered in a background task every
`refresh_seconds` while a page is open (an idle console gathers nothing) and pushed to every
open page as server-sent events. Errors are problem+json.
This module must never gather a fact nor run a command itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from anyio import to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strangler.console import traces
from strangler.console.actions import ActionRefused, Runner, command_for
from strangler.console.sessions import (
    Session,
    SessionCsrf,
    Sessions,
    cookie_header,
)
from strangler.console.settings import ConsoleSettings
from strangler.console.snapshot import Watcher
from strangler.plumbing.errors import PROBLEM_CONTENT_TYPE, problem_body
from strangler.plumbing.logs import configure_logging, get_logger
from strangler.plumbing.metrics import HttpMetrics
from strangler.plumbing.request_id import accept_or_mint, current_request_id
from strangler.runtime.home import Home
from strangler.runtime.run_record import read_run
from strangler.state import StateFile
from strangler.workspace import find_workspace
from strangler_proxy.admin_tokens import AdminTokens
from strangler_proxy.anti_forgery import AntiForgery

STATIC = Path(__file__).parent / "static"
log = get_logger("console")
OPEN_PATHS = ("/signin", "/healthz", "/metrics", "/static/")
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        b" connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # "no-referrer" makes a form's Origin "null"
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
SESSION_KEY = "strangler.console.session"


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    slugs = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
             405: "method-not-allowed", 409: "conflict", 413: "payload-too-large",
             422: "validation"}  # fmt: skip
    slug = slugs.get(status, "internal")
    body = {**problem_body(status, slug, slug.replace("-", " ").capitalize(), detail), **extra}
    body["request_id"] = current_request_id.get()
    return JSONResponse(body, status_code=status, media_type=PROBLEM_CONTENT_TYPE)


class Live:
    """The latest document, its version, a way to wait for the next one, and who wants one.

    Gathering costs a scrape of every process, so it happens only while someone looks: an open
    event stream, or a recent request for the document. An idle console costs nothing.
    """

    def __init__(self) -> None:
        self.document: dict[str, Any] | None = None
        self.version = 0
        self.published_at = 0.0
        self.watchers = 0
        self._changed = asyncio.Event()
        self._wanted = asyncio.Event()

    def publish(self, document: dict[str, Any]) -> None:
        self.document = {**document, "version": self.version + 1}
        self.version += 1
        self.published_at = time.monotonic()
        self._changed.set()
        self._changed = asyncio.Event()

    def want(self) -> None:
        """Ask for one gathering even with no stream open (a page asking for the document)."""
        self._wanted.set()

    async def demand(self) -> None:
        """Return once someone wants a document: a stream is open, or `want` was called."""
        if self.watchers == 0:
            await self._wanted.wait()
        self._wanted.clear()

    async def next_after(self, version: int, timeout: float) -> None:
        if self.version > version:
            return
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)


class ConsoleGuard:
    """Pure ASGI: request id, access log line, metrics, security headers, the body limit and
    the session and anti-forgery checks, before the app sees a request."""

    def __init__(
        self,
        app: ASGIApp,
        sessions: Sessions,
        anti_forgery: AntiForgery,
        metrics: HttpMetrics,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.anti_forgery = anti_forgery
        self.sign_in_forgery = AntiForgery(_AnyToken())  # no session yet: the origin checks
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = accept_or_mint(headers.get("x-request-id"))
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                kept = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                message = {
                    **message,
                    "headers": [*kept, (b"x-request-id", request_id.encode()), *SECURITY_HEADERS],
                }
            await send(message)

        try:
            refusal = self._refusal(scope, headers)
            if refusal is not None:
                await refusal(scope, receive, sending)
                return
            session = self.sessions.of_headers(headers)
            scope["state"] = {**scope.get("state", {}), SESSION_KEY: session}
            await self.app(scope, _limited(receive, self.max_body_bytes), sending)
        except _TooLarge:
            await problem(413, f"a body is at most {self.max_body_bytes} bytes")(
                scope, receive, sending
            )
        finally:
            elapsed = time.perf_counter() - started
            route = _route_of(scope["path"])
            self.metrics.observe(scope["method"], route, status, elapsed)
            log.info("request", method=scope["method"], path=scope["path"], status=status,
                     duration_ms=round(elapsed * 1000, 2))  # fmt: skip
            current_request_id.reset(token)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> Response | None:
        path: str = scope["path"]
        method: str = scope["method"]
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return problem(413, f"a body is at most {self.max_body_bytes} bytes")
        changes = method not in ("GET", "HEAD")
        if path == "/signin" and changes:
            forged = self.sign_in_forgery.refusal(headers, scope.get("scheme", "http"))
            return problem(403, forged.replace("admin API", "console")) if forged else None
        if path.startswith(OPEN_PATHS):
            return None
        if self.sessions.of_headers(headers) is None:
            if method == "GET" and not path.startswith("/api/"):
                return RedirectResponse("/signin", status_code=303)
            return problem(401, "sign in with the admin token first (/signin)")
        if changes:
            forged = self.anti_forgery.refusal(headers, scope.get("scheme", "http"))
            if forged is not None:
                return problem(403, forged.replace("admin API", "console"))
        return None


class _AnyToken:
    def verify(self, headers: Any) -> bool:
        return True


class _TooLarge(Exception):
    pass


def _limited(receive: Receive, limit: int) -> Callable[[], Awaitable[Message]]:
    size = 0

    async def receiving() -> Message:
        nonlocal size
        message = await receive()
        size += len(message.get("body", b""))
        if size > limit:
            raise _TooLarge()
        return message

    return receiving


def _route_of(path: str) -> str:
    for prefix in ("/api/logs/", "/api/traces/", "/static/"):
        if path.startswith(prefix):
            return prefix + "{name}"
    return path


def session_of(request: Request) -> Session:
    session: Session | None = request.scope["state"].get(SESSION_KEY)
    assert session is not None  # the guard let only signed-in requests through
    return session


class Console:
    """The handlers, over the watcher, the runner and the sessions of one console process."""

    def __init__(self, settings: ConsoleSettings, home: Home, sessions: Sessions) -> None:
        self.settings = settings
        self.home = home
        self.sessions = sessions
        self.runner = Runner(settings.folder)
        self.watcher = Watcher(home, self.runner)
        self.live = Live()
        self.metrics = HttpMetrics("console")
        self.verified: deque[str] = deque(maxlen=20)

    def routes(self) -> list[Route | Mount]:
        return [
            Route("/", self.page, methods=["GET"]),
            Route("/signin", self.sign_in_page, methods=["GET"]),
            Route("/signin", self.sign_in, methods=["POST"]),
            Route("/signout", self.sign_out, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics_page, methods=["GET"]),
            Route("/api/session", self.session, methods=["GET"]),
            Route("/api/state", self.state, methods=["GET"]),
            Route("/api/events", self.events, methods=["GET"]),
            Route("/api/actions", self.act, methods=["POST"]),
            Route("/api/logs/{name}", self.log_lines, methods=["GET"]),
            Route("/api/traces/{trace_id}", self.trace, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]

    async def watch(self) -> None:
        """Gather the document every `refresh_seconds` while someone looks (`Live.demand`)."""
        while True:
            await self.live.demand()
            started = time.monotonic()
            try:
                self.live.publish(await to_thread.run_sync(self.watcher.collect))
            except Exception as error:  # one failed gathering must not stop the next
                log.exception("gathering failed", error=type(error).__name__)
            pause = self.settings.refresh_seconds - (time.monotonic() - started)
            await asyncio.sleep(max(pause, 0.1))

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def sign_in_page(self, request: Request) -> Response:
        return FileResponse(STATIC / "signin.html")

    async def sign_in(self, request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", errors="replace")
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                presented = str(json.loads(raw).get("token", ""))
            except (ValueError, AttributeError):
                return problem(400, "the body is not a JSON object with a token")
        else:
            presented = parse_qs(raw).get("token", [""])[0]
        session = self.sessions.sign_in(presented.strip())
        if session is None:
            log.warning("sign-in refused")
            return RedirectResponse("/signin?failed=1", status_code=303)
        log.info("signed in", actor=session.actor)
        answer = RedirectResponse("/", status_code=303)
        answer.headers["set-cookie"] = cookie_header(
            session, self.settings.secure_cookie, int(self.settings.session_seconds)
        )
        return answer

    async def sign_out(self, request: Request) -> Response:
        self.sessions.sign_out(session_of(request).id)
        answer = RedirectResponse("/signin", status_code=303)
        answer.headers["set-cookie"] = cookie_header(None, self.settings.secure_cookie, 0)
        return answer

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics_page(self, request: Request) -> Response:
        payload, content_type = self.metrics.exposition()
        return Response(payload, media_type=content_type)

    async def session(self, request: Request) -> Response:
        session = session_of(request)
        return JSONResponse({"actor": session.actor, "csrf_token": session.csrf})

    async def state(self, request: Request) -> Response:
        if time.monotonic() - self.live.published_at > self.settings.refresh_seconds:
            version = self.live.version
            self.live.want()
            await self.live.next_after(version, 10.0)
        return JSONResponse(self.live.document or {})

    async def events(self, request: Request) -> Response:
        """The live document as server-sent events: one `state` event per new version."""

        async def stream() -> AsyncIterator[str]:
            seen = 0
            self.live.watchers += 1
            self.live.want()
            try:
                while not await request.is_disconnected():
                    await self.live.next_after(seen, 15.0)
                    if self.live.version > seen and self.live.document is not None:
                        seen = self.live.version
                        yield f"event: state\ndata: {json.dumps(self.live.document)}\n\n"
                    else:
                        yield ": still here\n\n"
            finally:
                self.live.watchers -= 1

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def act(self, request: Request) -> Response:
        try:
            document = json.loads(await request.body())
        except ValueError:
            return problem(400, "the body is not JSON")
        if not isinstance(document, dict) or not isinstance(document.get("action"), str):
            return problem(422, 'the body needs {"action": ...}')
        action = document["action"]
        session = session_of(request)
        try:
            if action == "pause":
                run = self.runner.pause()
            else:
                state = StateFile(self.home.state_file).read()
                stage = document.get("stage")
                argv = command_for(
                    action, state, self.home.workspace.migration(),
                    int(stage) if isinstance(stage, int | str) and str(stage).isdigit() else None,
                    document.get("context") if isinstance(document.get("context"), str) else None,
                )  # fmt: skip
                run = self.runner.start(action, argv, session.actor)
        except ActionRefused as error:
            return problem(409, str(error))
        except (ValueError, LookupError) as error:
            return problem(422, str(error))
        log.info("action", action=action, actor=session.actor, command=run.describe()["command"])
        return JSONResponse(run.describe(), status_code=202)

    async def log_lines(self, request: Request) -> Response:
        name = request.path_params["name"]
        record = read_run(self.home.run_file)
        if record is None or name not in record.processes:
            return problem(404, f"no process named {name!r} runs in this system")
        wanted = request.query_params.get("lines", "")
        count = min(int(wanted), 5000) if wanted.isdigit() else self.settings.log_lines
        lines = await to_thread.run_sync(_tail, Path(record.processes[name].log), count)
        return JSONResponse({"process": name, "log": record.processes[name].log, "lines": lines})

    async def trace(self, request: Request) -> Response:
        found = traces.waterfall(self.watcher.spans, request.path_params["trace_id"])
        if found is None:
            return problem(404, "no recent trace has that id")
        return JSONResponse(found)


def _tail(path: Path, count: int) -> list[str]:
    try:
        with path.open("rb") as log_file:
            log_file.seek(0, 2)
            size = log_file.tell()
            log_file.seek(max(0, size - 256 * 1024))
            text = log_file.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-count:]


def create_app(settings: ConsoleSettings | None = None, home: Home | None = None) -> ASGIApp:
    """The console's ASGI app; settings default to `ConsoleSettings()` from the environment."""
    settings = settings or ConsoleSettings()  # type: ignore[call-arg]  # from the environment
    configure_logging("console", settings.log_level)
    home = home or Home(settings.home.resolve(), find_workspace())
    sessions = Sessions(
        AdminTokens({"admin": settings.admin_token.get_secret_value()}),
        settings.session_seconds,
        settings.max_sessions,
    )
    console = Console(settings, home, sessions)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        watching = asyncio.create_task(console.watch())
        yield
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        console.runner.stop()

    async def http_problem(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return problem(error.status_code, f"{request.method} {request.url.path}: {error.detail}")

    async def server_problem(request: Request, error: Exception) -> Response:
        log.exception("console failed", error=type(error).__name__)
        return problem(500, "the console failed; its log has the details")

    app = Starlette(
        routes=console.routes(),
        lifespan=lifespan,
        exception_handlers={HTTPException: http_problem, Exception: server_problem},
    )
    app.state.console = console
    guard = ConsoleGuard(
        app, sessions, AntiForgery(SessionCsrf(sessions)), console.metrics,
        settings.max_body_bytes,
    )  # fmt: skip
    return guard
