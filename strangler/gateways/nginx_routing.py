"""How an nginx configuration routes: the table's routes, pools and locations.

Routing is one `map` over `"$request_method:$uri"` whose regular expressions are the Python
router's patterns in its order (first match wins, `targets.route_targets`), so a method a more
specific route does not serve falls through as in `strangler_proxy.routing.Router.match`. The map
names the route; `location /` rewrites to that route's internal location (under a prefix no
client can reach), which sets its timeouts and proxies the canonical path to its pool: nginx then
re-encodes it, never forwarding the client's raw bytes. Pools are keep-alive `upstream` blocks;
a backup server is where failed safe requests fall back. This module must never decide where a
route goes (`nginx_live`, `nginx_export` do) nor perform I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from strangler.gateways.settings import GatewaySettings
from strangler.gateways.targets import RouteTarget, Upstream

PYTHON_PROXY = "python-proxy"  # the target name of requests passed to the Python proxy
UNMATCHED = "unmatched"  # the route name of requests no route matches (as the Python proxy)
INTERNAL = "/\\\\strangler/"  # a URI prefix no client can reach: backslashes are refused


def seconds(value: float) -> str:
    """An nginx time: whole milliseconds."""
    return f"{max(1, round(value * 1000))}ms"


def whole_seconds(value: float) -> str:
    """An nginx time where only seconds are accepted (`fail_timeout`)."""
    return f"{max(1, math.ceil(value))}s"


def quoted(text: str) -> str:
    """A double-quoted nginx string (regular expressions keep their backslashes)."""
    return '"' + text.replace('"', '\\"') + '"'


def pool_name(upstream: str, suffix: str = "") -> str:
    """The nginx `upstream` block serving one upstream (a fallback pool has a suffix)."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", upstream)
    return f"strangler_{cleaned}{suffix}"


def route_map(targets: Iterable[RouteTarget]) -> str:
    """`$strangler_route`: the route of `method:path`, tried in the Python router's order."""
    lines = []
    for target in targets:
        methods = "|".join(target.methods) if target.methods else "[A-Z_-]+"
        pattern = f"~^(?:{methods}):{target.path_regex(anchored=False)}$"
        lines.append(f"        {quoted(pattern)} {target.name};\n")
    return (
        '    map "$request_method:$uri" $strangler_route {\n'
        + "".join(lines)
        + f"        default {UNMATCHED};\n    }}\n"
    )


def upstream_block(
    name: str, primary: Upstream, backup: Upstream | None, settings: GatewaySettings
) -> str:
    """A keep-alive pool; a backup server is where failed safe requests fall back."""
    breaker = (
        f" max_fails={settings.breaker_failure_threshold}"
        f" fail_timeout={whole_seconds(settings.breaker_open_seconds)}"
    )
    servers = f"        server {primary.address}{breaker};\n"
    if backup is not None:
        servers += f"        server {backup.address} backup max_fails=0;\n"
    return (
        f"    upstream {name} {{\n{servers}"
        f"        keepalive {settings.keepalive_connections};\n"
        f"        keepalive_timeout {seconds(settings.upstream_keepalive_seconds)};\n"
        "        keepalive_requests 100000;\n    }\n"
    )


def route_dispatch() -> str:
    """The catch-all location: look the route up, then serve it from its internal location."""
    return f"""\
        location / {{
            set $strangler_path $uri;
            set $strangler_route_name $strangler_route;
            rewrite ^ "{INTERNAL}$strangler_route/" last;
        }}
"""


def route_location(name: str, target: str, prefix: str, body: str) -> str:
    """The internal location serving one route (or the unmatched paths): `body` proxies it.

    The rewrite puts the canonical path back as the URI (with the upstream URL's own prefix),
    so nginx forwards it re-encoded rather than the client's raw bytes; it ends the rewrite
    directives, so whatever must be `set` comes before it.
    """
    return f"""\
        location = "{INTERNAL}{name}/" {{
            internal;
            set $strangler_target {target};
            rewrite ^ {prefix}$strangler_path break;
{body}        }}
"""


def proxy_body(pool: str, scheme: str, connect: float, read: float) -> str:
    """Directives sending the canonical path (and query) to a pool."""
    tls = "            proxy_ssl_server_name on;\n" if scheme == "https" else ""
    return (
        f"            proxy_connect_timeout {seconds(connect)};\n"
        f"            proxy_read_timeout {seconds(read)};\n"
        f"            proxy_send_timeout {seconds(read)};\n"
        f"            proxy_next_upstream_timeout {seconds(connect + read)};\n"
        f"{tls}"
        f"            proxy_pass {scheme}://{pool};\n"
    )
