"""The live nginx data plane's configuration: routes at rest served by nginx, the rest passed on.

A route at rest (mode `monolith` or `service`, its context not under migration) goes straight
from nginx to the upstream that answers it, over a keep-alive pool; a safe request on a service
route whose data the monolith still owns falls back to the monolith (the pool's backup server).
Every route of a context under migration, and every `shadow` or `canary` route, goes to the
Python proxy, which keeps every migration feature's exact semantics (shadow diffs, sticky canary
and its analysis, write freezes). Requests no route matches go to the table's `unmatched`
upstream. The Python proxy's own paths (admin API, metrics) are passed to it as they are.

`render_live` is a pure function of its arguments, so the configuration a test checks is the one
the plane runs. This module must never start nginx nor read a file.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from strangler.gateways import nginx_front_door as front_door
from strangler.gateways import nginx_routing as routing
from strangler.gateways.settings import GatewaySettings
from strangler.gateways.targets import (
    RouteTarget,
    UnknownUpstream,
    Upstream,
    answering_upstream,
    at_rest,
    route_targets,
    upstreams_of,
)
from strangler_proxy.table import MONOLITH, SAFE_METHODS, RouteTable

PROXY_POOL = routing.pool_name("python_proxy")
FALLBACK_SUFFIX = "_or_monolith"


def render_live(
    table: RouteTable,
    upstreams: Mapping[str, str],
    proxy_url: str,
    migrating: Collection[str] = (),
    settings: GatewaySettings | None = None,
) -> str:
    """The nginx.conf of the live plane for this table (paths relative to nginx's prefix).

    `upstreams` maps upstream names (the monolith and each service) to URLs, overriding the
    table's `[upstreams]`; `proxy_url` is the Python proxy's; `migrating` names the contexts whose
    every route goes through the Python proxy (a move under way, a freeze to come).
    """
    settings = settings or GatewaySettings()
    known = upstreams_of(table, upstreams)
    proxy = Upstream.parse(routing.PYTHON_PROXY, proxy_url)
    moving = frozenset(migrating)
    targets = route_targets(table)
    pools: dict[str, str] = {}
    locations: list[str] = []
    for target in targets:
        body = _route_body(target, known, proxy, moving, settings, pools)
        locations.append(body)
    unmatched = upstream_of(known, table.unmatched)
    pools[routing.pool_name(unmatched.name)] = routing.upstream_block(
        routing.pool_name(unmatched.name), unmatched, None, settings
    )
    locations.append(
        routing.route_location(
            routing.UNMATCHED,
            unmatched.name,
            unmatched.prefix,
            routing.proxy_body(
                routing.pool_name(unmatched.name), unmatched.scheme,
                settings.connect_timeout, settings.read_timeout,
            ),
        )
    )  # fmt: skip
    pools[PROXY_POOL] = routing.upstream_block(PROXY_POOL, proxy, None, settings)
    return (
        "# nginx configuration of the strangler's live data plane (rendered: do not edit).\n"
        + front_door.main_block(settings)
        + "http {\n"
        + front_door.http_preamble(settings)
        + front_door.control_headers()
        + method_pools({t.route.context for t in targets if _falls_back_here(t, moving)})
        + routing.route_map(targets)
        + "".join(pools[name] for name in sorted(pools))
        + "    server {\n"
        + front_door.server_preamble(settings)
        + _proxy_paths(proxy, settings)
        + routing.route_dispatch()
        + "".join(locations)
        + "    }\n}\n"
    )


def _upstream(known: Mapping[str, Upstream], name: str) -> Upstream:
    found = known.get(name)
    if found is None:
        raise UnknownUpstream(f"no URL is given for upstream {name!r}")
    return found


def _falls_back_here(target: RouteTarget, moving: frozenset[str]) -> bool:
    """A service route served directly whose failed safe requests retry on the monolith."""
    return at_rest(target.route, moving) and target.falls_back


def _route_body(
    target: RouteTarget,
    known: Mapping[str, Upstream],
    proxy: Upstream,
    moving: frozenset[str],
    settings: GatewaySettings,
    pools: dict[str, str],
) -> str:
    if at_rest(target.route, moving):
        return direct_location(target, known, settings, pools)
    # The Python proxy applies the route's own timeouts, fallback and freeze wait; nginx waits
    # for all of it.
    connect = target.connect_timeout(settings.connect_timeout)
    read = target.read_timeout(settings.read_timeout)
    patience = 2 * (connect + read) + settings.freeze_wait_seconds + 1
    body = routing.proxy_body(PROXY_POOL, proxy.scheme, settings.connect_timeout, patience)
    return routing.route_location(target.name, routing.PYTHON_PROXY, proxy.prefix, body)


def upstream_of(known: Mapping[str, Upstream], name: str) -> Upstream:
    found = known.get(name)
    if found is None:
        raise UnknownUpstream(f"no URL is given for upstream {name!r}")
    return found


def service_pool(
    target: RouteTarget,
    service: Upstream,
    known: Mapping[str, Upstream],
    settings: GatewaySettings,
    pools: dict[str, str],
) -> str:
    """The pool (or pool variable) a route's service side uses; adds the pools it needs.

    A route whose failed safe requests fall back gets, for its safe methods, the service's pool
    with the monolith as backup server (`method_pools` chooses by method).
    """
    pool = routing.pool_name(service.name)
    pools[pool] = routing.upstream_block(pool, service, None, settings)
    if not target.falls_back:
        return pool
    backed = routing.pool_name(service.name, FALLBACK_SUFFIX)
    pools[backed] = routing.upstream_block(backed, service, upstream_of(known, MONOLITH), settings)
    return "$" + _method_pool_variable(service.name)


def direct_location(
    target: RouteTarget,
    known: Mapping[str, Upstream],
    settings: GatewaySettings,
    pools: dict[str, str],
) -> str:
    """The location of a route its upstream answers directly (monolith or service mode)."""
    upstream = upstream_of(known, answering_upstream(target.route))
    if upstream.name == MONOLITH:
        pool = routing.pool_name(MONOLITH)
        pools[pool] = routing.upstream_block(pool, upstream, None, settings)
    else:
        pool = service_pool(target, upstream, known, settings, pools)
    connect = target.connect_timeout(settings.connect_timeout)
    body = routing.proxy_body(
        pool, upstream.scheme, connect, target.read_timeout(settings.read_timeout)
    )
    return routing.route_location(target.name, upstream.name, upstream.prefix, body)


def _method_pool_variable(upstream: str) -> str:
    return routing.pool_name(upstream, "_by_method")


def method_pools(services: Collection[str]) -> str:
    """Per service with fallback: safe methods use the pool with the monolith as backup."""
    blocks = []
    for service in sorted(services):
        backed = routing.pool_name(service, FALLBACK_SUFFIX)
        safe = "".join(f"        {method} {backed};\n" for method in sorted(SAFE_METHODS))
        blocks.append(
            f"    map $request_method ${_method_pool_variable(service)} {{\n{safe}"
            f"        default {routing.pool_name(service)};\n    }}\n"
        )
    return "".join(blocks)


def _proxy_paths(proxy: Upstream, settings: GatewaySettings) -> str:
    """The Python proxy's own paths (admin API, metrics) go to it untouched by the table."""
    blocks = []
    for path in settings.proxy_paths:
        for match in (f"= {path}", f"^~ {path.rstrip('/')}/"):
            blocks.append(
                f"        location {match} {{\n"
                "            set $strangler_path $uri;\n"
                f"            set $strangler_route_name {routing.PYTHON_PROXY};\n"
                f"            set $strangler_target {routing.PYTHON_PROXY};\n"
                f"            proxy_pass {proxy.scheme}://{PROXY_POOL};\n"
                "        }\n"
            )
    return "".join(blocks)
