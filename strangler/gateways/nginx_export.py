"""The deployable nginx export: the whole table served by nginx alone, without the Python proxy.

Routes at rest are served as in the live plane (`nginx_live`); a `shadow` route is answered by
the monolith and copied to its service with `mirror`; a `canary` route splits callers with
`split_clients` keyed on the Python proxy's identity where nginx can see it (`X-Client-ID`, else
the client-id cookie, else the address), so a caller stays on one side and raising the
percentage only moves callers to the service. Everything else nginx cannot do is in the
lowering report. This module must never start nginx.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from strangler.gateways import lowering
from strangler.gateways import nginx_front_door as front_door
from strangler.gateways import nginx_routing as routing
from strangler.gateways.lowering import Export, Lowering
from strangler.gateways.nginx_live import direct_location, method_pools, service_pool, upstream_of
from strangler.gateways.settings import GatewaySettings
from strangler.gateways.targets import RouteTarget, Upstream, route_targets, upstreams_of
from strangler_proxy.table import MONOLITH, Mode, RouteTable

CONFIGURATION = "nginx.conf"
_COOKIE_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def export_nginx(
    table: RouteTable, upstreams: Mapping[str, str], settings: GatewaySettings | None = None
) -> Export:
    """nginx.conf for `nginx -p PREFIX -c nginx.conf` (its paths are relative to PREFIX)."""
    settings = settings or GatewaySettings()
    if not _COOKIE_NAME.fullmatch(settings.client_id_cookie):
        raise ValueError(f"nginx cannot read cookie {settings.client_id_cookie!r} by name")
    known = upstreams_of(table, upstreams)
    targets = route_targets(table)
    pools: dict[str, str] = {}
    locations: list[str] = []
    splits: dict[str, float] = {}
    choices: list[str] = []
    for target in targets:
        mode = target.route.mode
        if mode is Mode.SHADOW:
            locations.append(_shadow_location(target, known, settings, pools))
        elif mode is Mode.CANARY and 0 < target.route.canary_percent < 100:
            split = _split_variable(target.route.canary_percent)
            splits[split] = target.route.canary_percent
            location, choice = _canary_location(target, split, known, settings, pools)
            locations.append(location)
            choices.append(choice)
        else:
            locations.append(direct_location(_settled(target), known, settings, pools))
    unmatched = upstream_of(known, table.unmatched)
    pool = routing.pool_name(unmatched.name)
    pools[pool] = routing.upstream_block(pool, unmatched, None, settings)
    body = routing.proxy_body(
        pool, unmatched.scheme, settings.connect_timeout, settings.read_timeout
    )
    locations.append(
        routing.route_location(routing.UNMATCHED, unmatched.name, unmatched.prefix, body)
    )
    fallback_services = {t.route.context for t in targets if t.falls_back}
    text = (
        "# nginx configuration rendered from a strangler route table (do not edit by hand).\n"
        + front_door.main_block(settings)
        + "http {\n"
        + front_door.http_preamble(settings)
        + front_door.control_headers()
        + _identity(settings)
        + "".join(_split_block(name, percent) for name, percent in sorted(splits.items()))
        + "".join(choices)
        + method_pools(fallback_services)
        + routing.route_map(targets)
        + "".join(pools[name] for name in sorted(pools))
        + "    server {\n"
        + front_door.server_preamble(settings)
        + routing.route_dispatch()
        + "".join(locations)
        + "    }\n}\n"
    )
    return Export("nginx", {CONFIGURATION: text}, tuple(_lowerings(targets)))


def _settled(target: RouteTarget) -> RouteTarget:
    """A canary at 0 % is the monolith's, at 100 % the service's: served directly."""
    route = target.route
    if route.mode is not Mode.CANARY:
        return target
    mode = Mode.SERVICE if route.canary_percent >= 100 else Mode.MONOLITH
    settled = route.model_copy(update={"mode": mode})
    return RouteTarget(settled, target.order, target.methods, target.segments)


def _split_variable(percent: float) -> str:
    return f"$strangler_canary_{round(percent * 100)}"


def _identity(settings: GatewaySettings) -> str:
    """The caller's identity as `strangler_proxy.canary` forms it, minus the token subject."""
    cookie = f"$cookie_{settings.client_id_cookie}"
    return f"""\
    map {cookie} $strangler_identity_cookie {{
        "" "address:$remote_addr";
        "~^(?<strangler_cookie_id>.{{1,128}})" "client:$strangler_cookie_id";
    }}
    map $http_x_client_id $strangler_canary_identity {{
        "" $strangler_identity_cookie;
        "~^(?<strangler_header_id>.{{1,128}})" "client:$strangler_header_id";
    }}
"""


def _split_block(variable: str, percent: float) -> str:
    # The service's share comes first, so a higher percentage only grows its hash range.
    return (
        f'    split_clients "$strangler_canary_identity" {variable} {{\n'
        f"        {percent:g}% service;\n        * monolith;\n    }}\n"
    )


def _canary_location(
    target: RouteTarget,
    split: str,
    known: Mapping[str, Upstream],
    settings: GatewaySettings,
    pools: dict[str, str],
) -> tuple[str, str]:
    service = upstream_of(known, target.route.context)
    monolith = upstream_of(known, MONOLITH)
    if (service.scheme, service.prefix) != (monolith.scheme, monolith.prefix):
        raise ValueError(f"{target.name}: a canary needs both sides on one scheme and prefix")
    service_side = service_pool(target, service, known, settings, pools)
    monolith_pool = routing.pool_name(MONOLITH)
    pools[monolith_pool] = routing.upstream_block(monolith_pool, monolith, None, settings)
    variable = "$" + routing.pool_name(target.name, "_side")
    choice = (
        f"    map {split} {variable} {{\n        service {service_side};\n"
        f"        default {monolith_pool};\n    }}\n"
    )
    connect = target.connect_timeout(settings.connect_timeout)
    read = target.read_timeout(settings.read_timeout)
    body = routing.proxy_body(variable, service.scheme, connect, read)
    return routing.route_location(target.name, "canary", service.prefix, body), choice


def _shadow_location(
    target: RouteTarget,
    known: Mapping[str, Upstream],
    settings: GatewaySettings,
    pools: dict[str, str],
) -> str:
    monolith = upstream_of(known, MONOLITH)
    service = upstream_of(known, target.route.context)
    for upstream in (monolith, service):
        pool = routing.pool_name(upstream.name)
        pools[pool] = routing.upstream_block(pool, upstream, None, settings)
    connect = target.connect_timeout(settings.connect_timeout)
    read = target.read_timeout(settings.read_timeout)
    mirror = f"{routing.INTERNAL}mirror/{target.name}/"
    body = (
        f'            mirror "{mirror}";\n'
        "            mirror_request_body off;\n"
        + routing.proxy_body(routing.pool_name(MONOLITH), monolith.scheme, connect, read)
    )
    # The copy shares the request's variables: it must set none (the log reads them).
    copy = (
        f'        location = "{mirror}" {{\n'
        "            internal;\n"
        f"            rewrite ^ {service.prefix}$strangler_path break;\n"
        f"            proxy_connect_timeout {routing.seconds(connect)};\n"
        f"            proxy_read_timeout {routing.seconds(read)};\n"
        + front_door.header_directives("            ", shadow=True)
        + f"            proxy_pass {service.scheme}://{routing.pool_name(service.name)};\n"
        "        }\n"
    )
    return routing.route_location(target.name, MONOLITH, monolith.prefix, body) + copy


def _lowerings(targets: list[RouteTarget]) -> list[Lowering]:
    found = lowering.common_lowerings(targets)
    canaries = lowering.names(targets, Mode.CANARY)
    if canaries:
        found.append(
            Lowering(
                lowering.STICKY_CANARY,
                canaries,
                "split_clients keyed on X-Client-ID, else the client-id cookie, else the address:"
                " a bearer token's subject cannot be verified in nginx, and nginx hashes with"
                " MurmurHash2, so a caller may land on the other side than with the Python proxy"
                " (same shares, still sticky and one-way as the percentage rises)",
            )
        )
    shadowed = lowering.names(targets, Mode.SHADOW)
    if shadowed:
        found.append(
            Lowering(
                lowering.MIRROR,
                shadowed,
                "nginx `mirror` copies each request to the service and discards its answer; a"
                " slow service delays the next request on the same client connection",
            )
        )
    found.append(
        Lowering(
            lowering.BREAKER,
            (),
            "passive health (max_fails/fail_timeout) in place of the breaker: a failing server"
            " is skipped for the open time, with no half-open probe",
        )
    )
    return found
