"""`export(table, format, upstreams)`: the one entry of `strangler routes export`.

Each format's module renders the same table (`targets.route_targets`, the Python router's order)
for one gateway and reports what it lowers (`lowering`). This module must never render a format
itself nor write files (`Export.write` does, when the caller asks).
"""

from __future__ import annotations

from collections.abc import Mapping

from strangler.gateways.aws_http_api import export_aws_http_api
from strangler.gateways.envoy import export_envoy
from strangler.gateways.gateway_api import export_gateway_api
from strangler.gateways.lowering import Export
from strangler.gateways.nginx_export import export_nginx
from strangler.gateways.settings import GatewaySettings
from strangler_proxy.table import RouteTable

FORMATS = ("nginx", "envoy", "gateway-api", "aws-http-api")


def export(
    table: RouteTable,
    format: str,
    upstreams: Mapping[str, str],
    settings: GatewaySettings | None = None,
    name: str = "strangler",
    gateway: str = "strangler",
    namespace: str | None = None,
) -> Export:
    """The deployable files of `format` for `table`, with the lowering report.

    `upstreams` maps the monolith and each service to the URL the target reaches it at (a
    Kubernetes Service's host and port for gateway-api); `name` prefixes the resources of
    gateway-api and aws-http-api (e.g. "forum-stage-3"); `gateway` and `namespace` place the
    HTTPRoutes.
    """
    if format == "nginx":
        return export_nginx(table, upstreams, settings)
    if format == "envoy":
        return export_envoy(table, upstreams, settings)
    if format == "gateway-api":
        return export_gateway_api(table, upstreams, settings, name, gateway, namespace)
    if format == "aws-http-api":
        return export_aws_http_api(table, upstreams, settings, name)
    raise ValueError(f"unknown export format {format!r}: one of {', '.join(FORMATS)}")
