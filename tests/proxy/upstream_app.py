"""A small real upstream for the proxy's tests: it tells who answered and what arrived.

Run as `python tests/proxy/upstream_app.py PORT NAME`. Every path not listed below echoes the
request (method, raw path, headers, body size) as JSON, tagged with NAME. Fault endpoints:
`/fault/status/{code}`, `/fault/slow` (answers after 30 s), `/fault/reset` (promises 100000 bytes,
sends 10, then closes the socket), `/fault/exit` (the process dies without answering).
`/pause?seconds=S` answers like the echo after S seconds (a write in flight, for freezes).
`/data/{id}` answers a stable JSON document plus a per-answer `nonce` (noise for shadow tests).
`/fault/page/{code}` answers an HTML error page with a `Retry-After`, as gunicorn or nginx do.
`/replica/{id}` is a replica that lags: every upstream but `monolith` answers version 1 the first
time an id is asked for and version 2 afterwards; the monolith always answers version 2.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from aiohttp import web


def build(name: str) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "answered_by": name,
                "method": request.method,
                "raw_path": request.raw_path,
                "headers": {key.lower(): value for key, value in request.headers.items()},
                "body_size": len(body),
            }
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        return web.json_response({"answered_by": name, "status": code}, status=code)

    async def page(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        html = f"<html><body><h1>{code}</h1><p>{name} says no</p></body></html>"
        headers = {"Retry-After": "7"}
        return web.Response(text=html, status=code, content_type="text/html", headers=headers)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({"answered_by": name})

    async def reset(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100000"})
        await response.prepare(request)
        await response.write(b"0123456789")
        await asyncio.sleep(0.05)
        transport = request.transport
        if transport is not None:
            transport.abort()
        return response

    async def die(request: web.Request) -> web.Response:
        os._exit(3)

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        for _ in range(int(request.query.get("chunks", "100"))):
            await response.write(b"x" * 65536)
        await response.write_eof()
        return response

    async def data(request: web.Request) -> web.Response:
        item = request.match_info["id"]
        variant = request.query.get("variant", "")
        return web.json_response(
            {
                "id": item,
                "title": f"item {item}{variant}",
                "answered_by_kind": "upstream",
                "nonce": uuid.uuid4().hex,
            }
        )

    async def pause(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("seconds", "0.5")))
        return await echo(request)

    asked: set[str] = set()

    async def replica(request: web.Request) -> web.Response:
        item = request.match_info["id"]
        is_behind = name != "monolith" and item not in asked
        asked.add(item)
        return web.json_response({"id": item, "version": 1 if is_behind else 2})

    async def trivial(request: web.Request) -> web.Response:
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/trivial", trivial)
    app.router.add_route("*", "/fault/status/{code}", status)
    app.router.add_route("*", "/fault/page/{code}", page)
    app.router.add_route("*", "/fault/slow", slow)
    app.router.add_route("*", "/fault/reset", reset)
    app.router.add_route("*", "/fault/exit", die)
    app.router.add_get("/stream", stream)
    app.router.add_get("/data/{id}", data)
    app.router.add_get("/replica/{id}", replica)
    app.router.add_route("*", "/pause", pause)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


if __name__ == "__main__":
    port, name = int(sys.argv[1]), sys.argv[2]
    web.run_app(build(name), host="127.0.0.1", port=port, print=None, access_log=None)
