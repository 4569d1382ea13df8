"""The strangler proxy: an ASGI reverse proxy that decides, per endpoint, who answers.

Serve it with `uvicorn --factory strangler_proxy:create_app` (settings from `PROXY_*`), or build
it in code with `create_app(ProxySettings(...))`. Importing this package starts nothing, and
imports the app only when it is asked for: a process that needs only the route table (nginx's
renderer, whose start keeps the public port closed) does not pay for the server's imports.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strangler_proxy.app import ProxyApp, create_app
    from strangler_proxy.settings import ProxySettings

__all__ = ["ProxyApp", "ProxySettings", "create_app"]
_HOMES = {"ProxyApp": "strangler_proxy.app", "create_app": "strangler_proxy.app",
          "ProxySettings": "strangler_proxy.settings"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'strangler_proxy' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
