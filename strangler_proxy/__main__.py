"""`python -m strangler_proxy --port P`: serve the proxy with the server options it needs.

uvicorn's own `X-Forwarded-*` handling is off (the proxy decides whom to trust, from
`PROXY_TRUSTED_PROXIES`), uvloop + httptools are the fastest loop and parser here, and the
HTTP protocol is `strangler_proxy.server`'s: uvicorn's httptools one writing each small
response in one piece, with the front door's timeouts and connection cap. `PROXY_ADMIN_PORT`
adds the admin port, served by the same process (`strangler_proxy.serving`). Running
`uvicorn --factory strangler_proxy:create_app` by hand needs `--no-proxy-headers` for the
same reason, and serves neither the limits nor the admin port. This module must never hold
proxy logic.
"""

from __future__ import annotations

import argparse

from strangler_proxy.serving import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m strangler_proxy", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    arguments = parser.parse_args()
    run(arguments.host, arguments.port)


if __name__ == "__main__":
    main()
