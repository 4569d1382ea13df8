"""The Envoy export: a static bootstrap serving the table (`envoy -c envoy.yaml`).

One listener (`envoy_listener`: normalisation, headers, request ids, problem+json, access log)
with the routes in the Python router's order as RE2 regular expressions with their methods. One
cluster per upstream with outlier detection (the breaker); a service route that may fall back
uses a cluster whose second priority is the monolith, retried once for safe methods; a canary
is a ring-hash cluster of both sides weighted by the percentage and hashed on the caller's
identity (sticky); a shadow route mirrors to its service. This module must never run Envoy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from strangler.gateways import lowering
from strangler.gateways.envoy_listener import TYPES, header, listener, seconds
from strangler.gateways.lowering import Export, Lowering
from strangler.gateways.settings import GatewaySettings
from strangler.gateways.targets import (
    RouteTarget,
    UnknownUpstream,
    Upstream,
    answering_upstream,
    route_targets,
    upstreams_of,
)
from strangler_proxy.table import MONOLITH, SAFE_METHODS, Mode, RouteTable

CONFIGURATION = "envoy.yaml"
_REFUSED_PATH = "(?s).*(\\\\|%5[cC]|%[01][0-9a-fA-F]|%7[fF]).*"


def export_envoy(
    table: RouteTable, upstreams: Mapping[str, str], settings: GatewaySettings | None = None
) -> Export:
    settings = settings or GatewaySettings()
    known = upstreams_of(table, upstreams)
    targets = route_targets(table)
    clusters: dict[str, dict[str, Any]] = {}
    routes: list[dict[str, Any]] = [
        {
            "match": {"path": "/healthz"},
            "direct_response": _answer(200, '{"status": "ok"}'),
            "response_headers_to_add": [header("content-type", "application/json")],
        },
        {
            "match": {"safe_regex": {"regex": _REFUSED_PATH}},
            "direct_response": _answer(400, "backslashes and control characters are refused"),
        },
    ]
    for target in targets:
        routes.extend(_routes_of(target, known, settings, clusters))
    unmatched = _upstream(known, table.unmatched)
    clusters[unmatched.name] = _cluster(unmatched.name, [[unmatched]], settings)
    action = _action(unmatched.name, settings.read_timeout, unmatched.prefix)
    routes.append({"name": "unmatched", "match": {"prefix": "/"}, "route": action})
    document = {
        "static_resources": {
            "listeners": [listener(routes, settings)],
            "clusters": [clusters[name] for name in sorted(clusters)],
        }
    }
    text = "# Envoy bootstrap rendered from a strangler route table (do not edit by hand).\n"
    text += yaml.safe_dump(document, sort_keys=False, width=100)
    return Export("envoy", {CONFIGURATION: text}, tuple(_lowerings(targets, settings)))


def _answer(status: int, body: str) -> dict[str, Any]:
    return {"status": status, "body": {"inline_string": body}}


def _upstream(known: Mapping[str, Upstream], name: str) -> Upstream:
    if name not in known:
        raise UnknownUpstream(f"no URL is given for upstream {name!r}")
    return known[name]


def _endpoint(upstream: Upstream, weight: int | None = None) -> dict[str, Any]:
    address = {"socket_address": {"address": upstream.host, "port_value": upstream.port}}
    endpoint: dict[str, Any] = {"endpoint": {"address": address}}
    if weight is not None:
        endpoint["load_balancing_weight"] = weight
    return endpoint


def _cluster(
    name: str,
    priorities: list[list[Upstream]],
    settings: GatewaySettings,
    weights: list[int] | None = None,
) -> dict[str, Any]:
    """A cluster of upstreams by priority (0 first); weighted endpoints make it a ring hash."""
    localities = []
    for priority, members in enumerate(priorities):
        endpoints = [
            _endpoint(member, weights[index] if weights else None)
            for index, member in enumerate(members)
        ]
        locality: dict[str, Any] = {"lb_endpoints": endpoints}
        if priority:
            locality["priority"] = priority
        localities.append(locality)
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": seconds(settings.connect_timeout),
        "lb_policy": "RING_HASH" if weights else "ROUND_ROBIN",
        "load_assignment": {"cluster_name": name, "endpoints": localities},
        "outlier_detection": {
            "consecutive_5xx": settings.breaker_failure_threshold,
            "base_ejection_time": seconds(settings.breaker_open_seconds),
            "max_ejection_percent": 100,
        },
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
    }
    first = priorities[0][0]
    if first.scheme == "https":
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": f"{TYPES}.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": first.host,
            },
        }
    return cluster


def _action(cluster: str, read: float, prefix: str = "") -> dict[str, Any]:
    # Envoy's idle timeout is the Python proxy's read timeout (between two arrivals of bytes);
    # the whole response has no limit of its own, as there.
    action: dict[str, Any] = {"cluster": cluster, "timeout": "0s", "idle_timeout": seconds(read)}
    if prefix:
        action["regex_rewrite"] = {"pattern": {"regex": "^(.*)$"}, "substitution": prefix + "\\1"}
    return action


def _match(target: RouteTarget, methods: tuple[str, ...]) -> dict[str, Any]:
    match: dict[str, Any] = {"safe_regex": {"regex": target.path_regex(anchored=False)}}
    if methods:
        match["headers"] = [
            {"name": ":method", "string_match": {"safe_regex": {"regex": "|".join(methods)}}}
        ]
    return match


def _routes_of(
    target: RouteTarget,
    known: Mapping[str, Upstream],
    settings: GatewaySettings,
    clusters: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    route = target.route
    read = target.read_timeout(settings.read_timeout)
    monolith = _upstream(known, MONOLITH)
    clusters[MONOLITH] = _cluster(MONOLITH, [[monolith]], settings)
    if route.mode is Mode.CANARY and 0 < route.canary_percent < 100:
        service = _upstream(known, route.context)
        name = f"{route.context}_canary_{round(route.canary_percent * 100)}"
        share = round(route.canary_percent * 100)
        clusters[name] = _cluster(name, [[service, monolith]], settings, [share, 10_000 - share])
        action = _action(name, read, service.prefix)
        action["hash_policy"] = [
            {"header": {"header_name": "x-client-id"}, "terminal": True},
            {"cookie": {"name": settings.client_id_cookie}, "terminal": True},
            {"connection_properties": {"source_ip": True}, "terminal": True},
        ]
        return [{"name": target.name, "match": _match(target, target.methods), "route": action}]
    if route.mode is Mode.SHADOW:
        service = _upstream(known, route.context)
        clusters[service.name] = _cluster(service.name, [[service]], settings)
        action = _action(MONOLITH, read, monolith.prefix)
        action["request_mirror_policies"] = [{"cluster": service.name}]
        return [{"name": target.name, "match": _match(target, target.methods), "route": action}]
    if route.mode is Mode.CANARY:  # at 0 % or 100 %: one side answers
        upstream = _upstream(known, MONOLITH if route.canary_percent <= 0 else route.context)
    else:
        upstream = _upstream(known, answering_upstream(route))
    clusters[upstream.name] = _cluster(upstream.name, [[upstream]], settings)
    plain = {
        "name": target.name,
        "match": _match(target, target.methods),
        "route": _action(upstream.name, read, upstream.prefix),
    }
    if not target.falls_back or upstream.name == MONOLITH:
        return [plain]
    backed = f"{upstream.name}_or_monolith"
    clusters[backed] = _cluster(backed, [[upstream], [monolith]], settings)
    action = _action(backed, read, upstream.prefix)
    action["retry_policy"] = {
        "retry_on": "5xx,connect-failure,reset,refused-stream",
        "num_retries": 1,
        "retry_priority": {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": {
                "@type": f"{TYPES}.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                "update_frequency": 1,
            },
        },
    }
    safe = tuple(m for m in (target.methods or sorted(SAFE_METHODS)) if m in SAFE_METHODS)
    fallback = {"name": f"{target.name}.safe", "match": _match(target, safe), "route": action}
    return [fallback, plain]


def _lowerings(targets: list[RouteTarget], settings: GatewaySettings) -> list[Lowering]:
    found = lowering.common_lowerings(targets)
    canaries = tuple(
        t.name for t in targets if t.route.mode is Mode.CANARY and 0 < t.route.canary_percent < 100
    )
    if canaries:
        found.append(
            Lowering(
                lowering.STICKY_CANARY,
                canaries,
                "a ring-hash cluster of both sides weighted by the percentage, hashed on"
                " X-Client-ID, else the client-id cookie, else the source address (sticky; no"
                " verified token subject; callers are assigned by another hash than the Python"
                " proxy's); a failed service request is not retried on the monolith",
            )
        )
    shadowed = lowering.names(targets, Mode.SHADOW)
    if shadowed:
        found.append(
            Lowering(
                lowering.MIRROR,
                shadowed,
                "request_mirror_policies: Envoy sends a copy (its Host suffixed -shadow) and"
                " drops the answer",
            )
        )
    custom_connect = tuple(t.name for t in targets if t.route.connect_timeout is not None)
    if custom_connect:
        found.append(
            Lowering(
                lowering.TIMEOUTS,
                custom_connect,
                f"a connect timeout belongs to a cluster in Envoy: {settings.connect_timeout} s"
                " for every route; the read timeout is the route's idle timeout",
            )
        )
    found.append(
        Lowering(
            lowering.PATH_RULES,
            (),
            "RFC 3986 normalisation, repeated slashes merged, escaped slashes and backslashes"
            " (%2F, %5C) and escaped control characters refused; a raw backslash becomes a"
            " slash (the Python proxy refuses it), escapes other than unreserved characters"
            " stay encoded for matching, and non-UTF-8 escapes are not refused",
        )
    )
    found.append(
        Lowering(
            lowering.REQUEST_ID,
            (),
            "a client's X-Request-ID is kept whatever its form (Envoy's own UUID when absent);"
            " traceparent passes unchanged unless a tracer is configured (no span of its own)",
        )
    )
    if settings.trusted_proxies:
        found.append(
            Lowering(
                lowering.FORWARDING,
                (),
                "X-Forwarded-For is overwritten for every peer: trusted networks are not modelled",
            )
        )
    return found
