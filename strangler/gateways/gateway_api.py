"""The Kubernetes Gateway API export: one `HTTPRoute` per table route, plus one for the rest.

Each route becomes an HTTPRoute attached to the team's Gateway: its path as a case-insensitive
regular expression (ignoring a trailing slash, as the Python router), one match per method,
its upstream as a Service backend (named after the upstream, on its URL's port), its timeouts,
the Python proxy's control headers removed; a canary is a weighted pair of backends, a shadow
route mirrors to its service (`RequestMirror`). Unmatched paths go to the table's `unmatched`
upstream by a `PathPrefix /` route, the least specific of all. This module must never talk to
a cluster.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import yaml

from strangler.gateways import lowering
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
from strangler_proxy.table import MONOLITH, Mode, RouteTable

API_VERSION = "gateway.networking.k8s.io/v1"
ROUTES_FILE = "httproutes.yaml"
_REMOVED_HEADERS = [
    "X-Strangler-Force",
    "X-Strangler-Admin-Token",
    "X-Strangler-Shadow",
    "Forwarded",
]
_WEIGHT_SCALE = 100  # weights in hundredths of a percent: 12.5 % -> 1250 of 10000


def duration(value: float) -> str:
    """A Gateway API duration (`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)."""
    milliseconds = max(1, round(value * 1000))
    if milliseconds <= 99_999:
        return f"{milliseconds}ms"
    return f"{math.ceil(value)}s"


def dns_label(text: str) -> str:
    """A lowercase RFC 1123 name part: what Kubernetes accepts in object and Service names."""
    label = re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-.")
    return label[:63].rstrip("-.") or "route"


def export_gateway_api(
    table: RouteTable,
    upstreams: Mapping[str, str],
    settings: GatewaySettings | None = None,
    name: str = "strangler",
    gateway: str = "strangler",
    namespace: str | None = None,
) -> Export:
    """HTTPRoutes for `kubectl apply -f httproutes.yaml`, attached to Gateway `gateway`."""
    settings = settings or GatewaySettings()
    known = upstreams_of(table, upstreams)
    targets = route_targets(table)
    documents = [
        _http_route(f"{name}-{dns_label(t.name)}", t, known, settings, gateway, namespace)
        for t in targets
    ]
    unmatched = _upstream(known, table.unmatched)
    documents.append(
        _document(
            f"{name}-unmatched",
            gateway,
            namespace,
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "filters": [_header_filter()],
                "backendRefs": [_backend(unmatched)],
            },
        )
    )
    text = "# Gateway API HTTPRoutes rendered from a strangler route table.\n"
    text += yaml.safe_dump_all(documents, sort_keys=False, width=100)
    return Export("gateway-api", {ROUTES_FILE: text}, tuple(_lowerings(targets)))


def _upstream(known: Mapping[str, Upstream], name: str) -> Upstream:
    if name not in known:
        raise UnknownUpstream(f"no URL is given for upstream {name!r}")
    return known[name]


def _backend(upstream: Upstream, weight: int | None = None) -> dict[str, Any]:
    backend: dict[str, Any] = {"name": dns_label(upstream.name), "port": upstream.port}
    if weight is not None:
        backend["weight"] = weight
    return backend


def _header_filter() -> dict[str, Any]:
    return {"type": "RequestHeaderModifier", "requestHeaderModifier": {"remove": _REMOVED_HEADERS}}


def _document(
    name: str, gateway: str, namespace: str | None, rule: dict[str, Any]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/managed-by": "strangler"},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": API_VERSION,
        "kind": "HTTPRoute",
        "metadata": metadata,
        "spec": {"parentRefs": [{"name": gateway}], "rules": [rule]},
    }


def _http_route(
    name: str,
    target: RouteTarget,
    known: Mapping[str, Upstream],
    settings: GatewaySettings,
    gateway: str,
    namespace: str | None,
) -> dict[str, Any]:
    route = target.route
    path = {"type": "RegularExpression", "value": target.path_regex(anchored=False)}
    matches: list[dict[str, Any]] = (
        [{"path": path, "method": method} for method in target.methods]
        if target.methods
        else [{"path": path}]
    )
    filters = [_header_filter()]
    monolith = _upstream(known, MONOLITH)
    if route.mode is Mode.CANARY and 0 < route.canary_percent < 100:
        share = round(route.canary_percent * _WEIGHT_SCALE)
        backends = [
            _backend(_upstream(known, route.context), share),
            _backend(monolith, 100 * _WEIGHT_SCALE - share),
        ]
    elif route.mode is Mode.CANARY:
        side = route.context if route.canary_percent >= 100 else MONOLITH
        backends = [_backend(_upstream(known, side))]
    elif route.mode is Mode.SHADOW:
        backends = [_backend(monolith)]
        mirror = _backend(_upstream(known, route.context))
        filters.append({"type": "RequestMirror", "requestMirror": {"backendRef": mirror}})
    else:
        backends = [_backend(_upstream(known, answering_upstream(route)))]
    connect = target.connect_timeout(settings.connect_timeout)
    read = target.read_timeout(settings.read_timeout)
    rule = {
        "matches": matches,
        "filters": filters,
        "backendRefs": backends,
        "timeouts": {
            "request": duration(2 * (connect + read)),
            "backendRequest": duration(connect + read),
        },
    }
    return _document(name, gateway, namespace, rule)


def _lowerings(targets: list[RouteTarget]) -> list[Lowering]:
    found = lowering.common_lowerings(targets)
    canaries = tuple(
        t.name for t in targets if t.route.mode is Mode.CANARY and 0 < t.route.canary_percent < 100
    )
    if canaries:
        found.append(
            Lowering(
                lowering.STICKY_CANARY,
                canaries,
                "weighted backendRefs: each request is split by weight, so a caller may see"
                " both sides; the Gateway API has no sticky split",
            )
        )
    shadowed = lowering.names(targets, Mode.SHADOW)
    if shadowed:
        found.append(
            Lowering(
                lowering.MIRROR,
                shadowed,
                "RequestMirror: the gateway copies every request and drops the answer",
            )
        )
    falling = tuple(t.name for t in targets if t.falls_back)
    if falling:
        found.append(
            Lowering(
                lowering.FALLBACK,
                falling,
                "not expressible: a failed service request fails (the Gateway API has no"
                " failover between backends)",
            )
        )
    found.extend(
        [
            Lowering(
                lowering.TIMEOUTS,
                (),
                "timeouts.backendRequest bounds one attempt (connect + read) and"
                " timeouts.request the whole request; no bound between two arrivals of bytes",
            ),
            Lowering(
                lowering.MATCHING,
                (),
                "RegularExpression paths are implementation-specific (RE2 in Envoy-based"
                " gateways), and so is their precedence: check the gateway orders them as the"
                " table (most specific first)",
            ),
            Lowering(
                lowering.PATH_RULES,
                (),
                "path normalisation, request ids, traces, forwarding headers and error bodies"
                " are the gateway implementation's",
            ),
            Lowering(
                lowering.BREAKER,
                (),
                "left to the implementation (e.g. a BackendTrafficPolicy or DestinationRule)",
            ),
        ]
    )
    return found
