"""The strangler proxy: an ASGI reverse proxy that decides, per endpoint, who answers.

Serve it with `uvicorn --factory strangler_proxy:create_app` (settings from `PROXY_*`), or build
it in code with `create_app(ProxySettings(...))`. Importing this package starts nothing.
"""

from strangler_proxy.app import ProxyApp, create_app
from strangler_proxy.settings import ProxySettings

__all__ = ["ProxyApp", "ProxySettings", "create_app"]
