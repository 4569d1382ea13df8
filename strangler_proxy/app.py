"""The proxy's ASGI application and its factory: wiring, lifespan and top-level dispatch.

`create_app(settings)` builds every part (table store, forwarder, breakers, canary, shadow,
analysis, metrics, admin) and returns a plain ASGI callable; nothing connects or starts until the
server runs the lifespan. Dispatch: every request's head passes the front door's checks first
(`limits`); `/healthz` and `/metrics` are the proxy's own, the admin prefix goes to the admin
API (or, when it has its own port, answers 404 here and is served by `admin_port_app` there),
everything else is proxied. A websocket handshake is refused with a problem. This module must
never contain routing or forwarding logic itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from typing import Any

from strangler.plumbing.logs import configure_logging, get_logger
from strangler.plumbing.request_id import accept_or_mint
from strangler.state import StateError, StateFile
from strangler_proxy.access_log import AccessLog
from strangler_proxy.admin import create_admin_app
from strangler_proxy.admin_tokens import load_admin_tokens
from strangler_proxy.analysis import CanaryAnalyst
from strangler_proxy.anti_forgery import AntiForgery
from strangler_proxy.audit import AuditLog
from strangler_proxy.breaker import Breakers
from strangler_proxy.canary import CanaryAssigner
from strangler_proxy.forwarding import Forwarder, Forwarding, Receive, Send
from strangler_proxy.freeze import Freezes
from strangler_proxy.function_pool import FunctionMetrics
from strangler_proxy.limits import UPGRADE_REFUSED, Refusal
from strangler_proxy.metrics import ProxyMetrics
from strangler_proxy.paths import CanonicalPath, UnsafePath
from strangler_proxy.proxy import Proxy, canonical_or_none, reject_path
from strangler_proxy.responses import problem_document, send_bytes, send_problem
from strangler_proxy.serverless_targets import ServerlessTargets
from strangler_proxy.settings import ProxySettings
from strangler_proxy.shadow import Rechecks, ShadowRunner
from strangler_proxy.store import TableStore
from strangler_proxy.table import TableError
from strangler_proxy.tracing import proxy_tracing, shadow_trace_configs

log = get_logger("proxy")
BREAKER_STATES = ("closed", "half_open", "open")


class ProxyApp:
    """The ASGI entry point of one proxy process."""

    def __init__(self, settings: ProxySettings, forwarder: Forwarding | None = None) -> None:
        self.settings = settings
        self.metrics = ProxyMetrics()
        self.audit = AuditLog(settings.audit_log_path)
        state = StateFile(settings.state_path) if settings.state_path is not None else None
        self.store = TableStore(settings.upstream_urls(), self.audit, state)
        self.forwarder: Forwarding = forwarder or Forwarder(
            settings.pool_limit, settings.pool_limit_per_upstream, settings.keepalive_seconds
        )
        self.breakers = Breakers(settings.breaker_failure_threshold, settings.breaker_open_seconds)
        self.shadow = ShadowRunner(
            lambda: self.forwarder.session,
            self.metrics,
            settings.shadow_concurrency,
            settings.shadow_noise_sample_every,
            settings.shadow_max_body_bytes,
            settings.shadow_diff_samples,
            Rechecks(settings.shadow_rechecks, settings.shadow_recheck_delay_seconds),
            self._serverless_targets,
        )
        self.analyst = CanaryAnalyst(self.store, self.shadow, self.audit)
        self.freezes = Freezes(
            self.audit,
            settings.freeze_wait_seconds,
            settings.freeze_max_seconds,
            self.metrics.registry,
            state,
            before_release=self.store.reload_if_changed,
        )
        self.access_log = AccessLog() if settings.access_log else None
        admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
        token_secret = settings.token_secret.get_secret_value() if settings.token_secret else None
        self.proxy = Proxy(
            settings,
            self.store,
            self.forwarder,
            self.breakers,
            CanaryAssigner(token_secret, admin_token, settings.client_id_cookie),
            self.shadow,
            self.analyst,
            self.metrics,
            self.access_log,
            self.freezes,
        )
        self.proxy.serverless = ServerlessTargets(
            settings.function_workers,
            FunctionMetrics(self.metrics.registry),
            settings.bucket_endpoint,
            lambda: self.forwarder.session,
            settings.function_env,
        )
        self.admin = create_admin_app(
            load_admin_tokens(
                settings.admin_token, settings.admin_tokens, settings.admin_tokens_file
            ),
            AntiForgery(),
            self.store,
            self.audit,
            self.shadow,
            self.breakers,
            self.analyst,
            self.freezes,
            settings.freeze_drain_seconds,
            settings.system_id,
        )
        self._admin_prefix = settings.admin_prefix
        self._admin_on_public_port = settings.admin_port is None
        self._background: list[asyncio.Task[None]] = []
        self.is_ready = False

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":  # under a server that upgrades by itself (plain uvicorn)
            await self._refuse_websocket(scope, receive, send)

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        path = self._front_door(scope)
        if not isinstance(path, CanonicalPath):
            await self._refuse(scope, send, path)
            return
        decoded = path.decoded
        if decoded in ("/healthz", "/metrics"):
            await self._operations(scope, send, decoded)
            return
        prefix = self._admin_prefix
        if decoded == prefix or decoded.startswith(prefix + "/"):
            if self._admin_on_public_port:
                await self._admin(scope, receive, send, decoded)
            else:
                request_id = accept_or_mint(_header(scope, b"x-request-id"))
                await send_problem(send, 404, f"there is nothing at {decoded}", request_id)
            return
        await self.proxy.handle(scope, receive, send, path)

    async def admin_port_app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """The ASGI app of the admin port: the admin API under its prefix, and `/healthz`."""
        if scope["type"] != "http":
            return  # no lifespan here: the public server runs the proxy's
        path = self._front_door(scope)
        if not isinstance(path, CanonicalPath):
            await self._refuse(scope, send, path)
            return
        decoded = path.decoded
        if decoded == "/healthz":
            await self._operations(scope, send, decoded)
        elif self._is_admin(decoded):
            await self._admin(scope, receive, send, decoded)
        else:
            request_id = accept_or_mint(_header(scope, b"x-request-id"))
            await send_problem(send, 404, f"there is nothing at {decoded}", request_id)


    def _serverless_targets(self) -> ServerlessTargets | None:
        """The proxy's function and bucket targets (for the shadow runner, made before them)."""
        return self.proxy.serverless if hasattr(self, "proxy") else None
    def _front_door(self, scope: dict[str, Any]) -> CanonicalPath | Refusal | UnsafePath:
        """The request's canonical path, or why its head is refused (`limits`, `paths`)."""
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        query = scope.get("query_string", b"")
        refusal = self.proxy.limits.refusal(
            raw_path, query, scope["headers"], scope.get("http_version", "1.1")
        )
        return refusal if refusal is not None else canonical_or_none(scope)

    async def _refuse(
        self, scope: dict[str, Any], send: Send, refused: Refusal | UnsafePath
    ) -> None:
        request_id = accept_or_mint(_header(scope, b"x-request-id"))
        if isinstance(refused, UnsafePath):
            await reject_path(send, refused, request_id)
            self.metrics.observe("rejected", "proxy", scope["method"], 400, 0.0)
            return
        closing = [(b"connection", b"close")] if refused.closes else []
        await send_problem(send, refused.status, refused.detail, request_id, closing)
        self.metrics.observe("refused", "proxy", scope["method"], refused.status, 0.0)

    def _is_admin(self, decoded: str) -> bool:
        prefix = self._admin_prefix
        return decoded == prefix or decoded.startswith(prefix + "/")

    async def _admin(
        self, scope: dict[str, Any], receive: Receive, send: Send, decoded: str
    ) -> None:
        rest = decoded[len(self._admin_prefix) :] or "/"
        child = {**scope, "path": rest, "raw_path": rest.encode("utf-8"), "root_path": ""}
        await self.admin(child, receive, send)

    async def _refuse_websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Refuse a handshake with the same problem as any upgrade (`limits.UPGRADE_REFUSED`).

        Servers offering the ASGI websocket denial response get the problem as the answer;
        others can only close, which they answer with a bare 403.
        """
        await receive()  # websocket.connect
        refusal: Refusal = UPGRADE_REFUSED
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        request_id = accept_or_mint(_header(scope, b"x-request-id"))
        body, headers = problem_document(refusal.status, refusal.detail, request_id)
        start = {"type": "websocket.http.response.start", "status": refusal.status}
        await send({**start, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        self.metrics.observe("refused", "proxy", "GET", refusal.status, 0.0)

    async def _operations(self, scope: dict[str, Any], send: Send, path: str) -> None:
        """The proxy's own /healthz and /metrics, with the contract's 405 and request ids."""
        request_id = accept_or_mint(_header(scope, b"x-request-id"))
        if scope["method"] not in ("GET", "HEAD"):
            detail = f"{scope['method']} is not allowed on {path}"
            await send_problem(send, 405, detail, request_id, [(b"allow", b"GET, HEAD")])
            return
        if path == "/healthz":
            body = b'{"status": "ok"}' if self.is_ready else b'{"status": "starting"}'
            status, content_type = (200 if self.is_ready else 503), "application/json"
        else:
            self._refresh_gauges()
            body, content_type = self.metrics.exposition()
            status = 200
        headers = [(b"x-request-id", request_id.encode())]
        await send_bytes(
            send, status, body, content_type, headers, is_head=scope["method"] == "HEAD"
        )

    def _refresh_gauges(self) -> None:
        for name, described in self.breakers.describe().items():
            for state in BREAKER_STATES:
                is_in = 1.0 if str(described["state"]) == state else 0.0
                self.metrics.breaker_state.labels(name, state).set(is_in)
        for route in self.store.current.table.routes:
            mode = route.mode.value
            share = route.canary_percent / 100 if mode == "canary" else 0.0
            ratio = 1.0 if mode == "service" else share
            self.metrics.canary_ratio.labels(route.name).set(ratio)
        self.metrics.table_version.set(self.store.current.version)

    async def startup(self) -> None:
        configure_logging("proxy", self.settings.log_level)  # and tracing, as the env says
        self.proxy.tracing = proxy_tracing()
        await self.forwarder.start(shadow_trace_configs())
        if self.access_log is not None:
            self.access_log.start()
        path = self.settings.route_table_path
        try:
            if self.store.state is not None:
                self.store.load_state(path)
                restored = self.freezes.restore()
                if restored:
                    log.warning("write freezes restored from the state", contexts=restored)
            elif path is not None:
                self.store.load_file(path)
        except (TableError, StateError) as error:
            problems = error.problems if isinstance(error, TableError) else [str(error)]
            log.error("route table refused at startup", problems=problems)
            await self.forwarder.close()
            raise
        watched = path is not None or self.store.state is not None
        if watched and self.settings.table_watch_seconds > 0:
            self._background.append(asyncio.create_task(self._watch_table()))
        if self.settings.analysis_interval_seconds > 0:
            self._background.append(asyncio.create_task(self._analyse_periodically()))
        # Everything built so far lives as long as the process: keep it out of the collector's
        # full passes, which otherwise revisit every module and model on the hot path.
        gc.freeze()
        self.is_ready = True
        log.info(
            "proxy ready",
            upstreams=self.store.current.upstream_urls,
            table_version=self.store.current.version,
        )

    async def shutdown(self) -> None:
        self.is_ready = False
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.shadow.drain()
        if self.proxy.serverless is not None:
            await self.proxy.serverless.close()
        await self.forwarder.close()
        if self.access_log is not None:
            await self.access_log.stop()

    async def _watch_table(self) -> None:
        while True:
            await asyncio.sleep(self.settings.table_watch_seconds)
            result = self.store.reload_if_changed()
            if result == "reloaded":
                log.info("route table reloaded", version=self.store.current.version)
            elif result == "refused":
                log.warning("route table change refused", problems=self.store.last_error)

    async def _analyse_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.analysis_interval_seconds)
            for decision in self.analyst.analyse_once():
                log.info("canary analysis", **{k: v for k, v in decision.items() if k != "at"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def create_app(
    settings: ProxySettings | None = None, forwarder: Forwarding | None = None
) -> ProxyApp:
    """The proxy's ASGI app; settings default to `ProxySettings()` read from the environment,
    forwarding to the upstreams over sockets unless another `forwarder` is given."""
    return ProxyApp(settings if settings is not None else ProxySettings(), forwarder)
