"""`python -m strangler_proxy --port P`: serve the proxy with the server options it needs.

uvicorn's own `X-Forwarded-*` handling must be off (the proxy decides whom to trust, from
`PROXY_TRUSTED_PROXIES`), and uvloop + httptools are the fastest loop and parser here; the HTTP
protocol is uvicorn's httptools one writing each small response in one piece
(`strangler_proxy.server`). Running `uvicorn --factory strangler_proxy:create_app` by hand needs
`--no-proxy-headers` for the same reason. This module must never hold proxy logic.
"""

from __future__ import annotations

import argparse

import uvicorn

from strangler_proxy.server import ProxyHttpProtocol


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m strangler_proxy", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    arguments = parser.parse_args()
    uvicorn.run(
        "strangler_proxy:create_app",
        factory=True,
        host=arguments.host,
        port=arguments.port,
        loop="uvloop",
        http=ProxyHttpProtocol,
        proxy_headers=False,
        access_log=False,  # the proxy writes its own access log, with request ids
        server_header=False,  # a front door need not name its server (and one header less)
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
