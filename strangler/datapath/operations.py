"""`/healthz` and `/metrics` for a data-path process (the sync), on a loopback port.

A small threaded HTTP server from the standard library: the sync is a loop, not a web app, and
needs nothing more. `/healthz` answers 200 `{"status": "ok"}` while both databases answer, 503
otherwise; `/metrics` is the process's Prometheus registry. Each answer carries `X-Request-ID`.
This module must never apply data.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from strangler.plumbing.request_id import accept_or_mint


def serve_operations(
    host: str, port: int, registry: CollectorRegistry, is_healthy: Callable[[], bool]
) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; `shutdown()` the returned server to stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            request_id = accept_or_mint(self.headers.get("X-Request-ID"))
            if self.path == "/healthz":
                is_ok = is_healthy()
                body = json.dumps({"status": "ok" if is_ok else "unavailable"}).encode()
                self._answer(200 if is_ok else 503, body, "application/json", request_id)
            elif self.path == "/metrics":
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST, request_id)
            else:
                problem = {
                    "type": "urn:strangler:problem:not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": f"{self.path} is not served here (try /healthz or /metrics)",
                }
                body = json.dumps(problem).encode()
                self._answer(404, body, "application/problem+json", request_id)

        def _answer(self, status: int, body: bytes, content_type: str, request_id: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Request-ID", request_id)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            del format, args  # scrapes are not worth a log line each

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="operations", daemon=True).start()
    return server
