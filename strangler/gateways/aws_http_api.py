"""The AWS API Gateway export: an HTTP API as OpenAPI 3 and a CloudFormation template around it.

Each route becomes an operation (GET routes also answer HEAD, `*` is ANY) with an HTTP proxy
integration to the upstream that answers it, forwarding the request's path
(`overwrite:path`), with the route's timeout (at most the 30 s API Gateway allows). Requests no
route matches go to the table's `unmatched` upstream by a greedy `/{proxy+}` route. The template
deploys the API with a `$default` stage and a JSON access log. API Gateway has no canary split
per route, no mirroring and no failover: canary and shadow routes go to the side owning the
data, and the lowering report says so. This module must never call AWS.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

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
from strangler_proxy.table import MONOLITH, DataOwner, Mode, RouteTable

OPENAPI_FILE = "openapi.json"
TEMPLATE_FILE = "template.json"
MAX_TIMEOUT_MS = 30_000
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ACCESS_LOG = {
    "requestId": "$context.requestId",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "route": "$context.routeKey",
    "status": "$context.status",
    "integrationStatus": "$context.integrationStatus",
    "durationMs": "$context.responseLatency",
    "timestamp": "$context.requestTime",
}


def export_aws_http_api(
    table: RouteTable,
    upstreams: Mapping[str, str],
    settings: GatewaySettings | None = None,
    name: str = "strangler",
) -> Export:
    settings = settings or GatewaySettings()
    known = upstreams_of(table, upstreams)
    targets = route_targets(table)
    paths: dict[str, dict[str, Any]] = {}
    shapes: dict[str, str] = {}  # AWS allows one spelling of parameter names per path shape
    for target in reversed(targets):  # the router's first route wins a shared operation
        path = _aws_path(target)
        shape = _PARAMETER.sub("{}", path)
        path = shapes.setdefault(shape, path)
        item = paths.setdefault(path, {"parameters": _declare(_PARAMETER.findall(path))})
        operation = _operation(target, _upstream(known, _side(target)), settings)
        for method in target.methods or ["x-amazon-apigateway-any-method"]:
            key = method if method.startswith("x-") else method.lower()
            item[key] = copy.deepcopy(operation)
    unmatched = _operation_to(
        _upstream(known, table.unmatched),
        settings.connect_timeout + settings.read_timeout,
        "unmatched",
    )
    paths.setdefault("/{proxy+}", {"parameters": _declare(["proxy+"])})[
        "x-amazon-apigateway-any-method"
    ] = unmatched
    paths.setdefault("/", {})["x-amazon-apigateway-any-method"] = copy.deepcopy(unmatched)
    document = {
        "openapi": "3.0.1",
        "info": {"title": name, "version": "1"},
        "paths": dict(sorted(paths.items())),
    }
    template = _template(name, document)
    files = {
        OPENAPI_FILE: json.dumps(document, indent=2) + "\n",
        TEMPLATE_FILE: json.dumps(template, indent=2) + "\n",
    }
    return Export("aws-http-api", files, tuple(_lowerings(targets, settings)))


def _upstream(known: Mapping[str, Upstream], name: str) -> Upstream:
    if name not in known:
        raise UnknownUpstream(f"no URL is given for upstream {name!r}")
    return known[name]


def _side(target: RouteTarget) -> str:
    """Who answers here: the data owner's side for routes the Python proxy would split."""
    route = target.route
    if route.mode in (Mode.CANARY, Mode.SHADOW):
        return route.context if route.owner is DataOwner.SERVICE else MONOLITH
    return answering_upstream(route)


def _aws_path(target: RouteTarget) -> str:
    """The route's template as API Gateway takes it: whole-segment parameters only."""
    segments = []
    for pieces in target.segments:
        parameters = [piece[1:-1] for piece in pieces if piece.startswith("{")]
        segments.append("{" + parameters[0] + "}" if parameters else "".join(pieces))
    return "/" + "/".join(segments)


def _declare(parameters: list[str]) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in parameters
    ]


def _operation(
    target: RouteTarget, upstream: Upstream, settings: GatewaySettings
) -> dict[str, Any]:
    seconds = target.connect_timeout(settings.connect_timeout) + target.read_timeout(
        settings.read_timeout
    )
    return _operation_to(upstream, seconds, target.name)


def _operation_to(upstream: Upstream, seconds: float, name: str) -> dict[str, Any]:
    timeout = min(MAX_TIMEOUT_MS, max(50, round(seconds * 1000)))
    return {
        "summary": name,
        "responses": {"default": {"description": f"the {upstream.name} upstream's answer"}},
        "x-amazon-apigateway-integration": {
            "type": "http_proxy",
            "httpMethod": "ANY",
            "uri": upstream.url,
            "payloadFormatVersion": "1.0",
            "connectionType": "INTERNET",
            "timeoutInMillis": timeout,
            "requestParameters": {
                "overwrite:path": (upstream.prefix + "$request.path"),
                "remove:header.X-Strangler-Force": "''",
                "remove:header.X-Strangler-Admin-Token": "''",
                "remove:header.X-Strangler-Shadow": "''",
            },
        },
    }


def _template(name: str, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{name}: HTTP API rendered from a strangler route table",
        "Resources": {
            "HttpApi": {
                "Type": "AWS::ApiGatewayV2::Api",
                "Properties": {"Body": document, "FailOnWarnings": True},
            },
            "AccessLogs": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"RetentionInDays": 30},
            },
            "DefaultStage": {
                "Type": "AWS::ApiGatewayV2::Stage",
                "Properties": {
                    "ApiId": {"Ref": "HttpApi"},
                    "StageName": "$default",
                    "AutoDeploy": True,
                    "AccessLogSettings": {
                        "DestinationArn": {"Fn::GetAtt": ["AccessLogs", "Arn"]},
                        "Format": json.dumps(_ACCESS_LOG),
                    },
                },
            },
        },
        "Outputs": {
            "Endpoint": {
                "Description": "the API's URL",
                "Value": {"Fn::GetAtt": ["HttpApi", "ApiEndpoint"]},
            }
        },
    }


def _lowerings(targets: list[RouteTarget], settings: GatewaySettings) -> list[Lowering]:
    found = lowering.common_lowerings(targets)
    split = lowering.names(targets, Mode.CANARY)
    if split:
        found.append(
            Lowering(
                lowering.CANARY_SPLIT,
                split,
                "HTTP APIs split no traffic per route: the side owning the data answers every"
                " request (the monolith until cutover)",
            )
        )
    shadowed = lowering.names(targets, Mode.SHADOW)
    if shadowed:
        found.append(
            Lowering(
                lowering.MIRROR,
                shadowed,
                "not expressible: no copy is sent; the side owning the data answers",
            )
        )
    falling = tuple(t.name for t in targets if t.falls_back)
    if falling:
        found.append(
            Lowering(
                lowering.FALLBACK,
                falling,
                "not expressible: a failed service request fails (no failover between"
                " integrations)",
            )
        )
    mixed = tuple(t.name for t in targets if any(len(pieces) > 1 for pieces in t.segments))
    if mixed:
        found.append(
            Lowering(
                lowering.MATCHING,
                mixed,
                "a segment mixing text and a parameter ({id}.html) becomes a whole-segment"
                " parameter: the route matches more paths than the table's",
            )
        )
    slow = tuple(
        t.name
        for t in targets
        if t.connect_timeout(settings.connect_timeout) + t.read_timeout(settings.read_timeout)
        > MAX_TIMEOUT_MS / 1000
    )
    if slow:
        found.append(
            Lowering(
                lowering.TIMEOUTS,
                slow,
                "API Gateway waits 30 s at most for an integration; longer timeouts are cut"
                " to 30 s",
            )
        )
    found.extend(
        [
            Lowering(
                lowering.PATH_RULES,
                (),
                "API Gateway matches paths case-sensitively and a trailing slash is another"
                " path; its own normalisation applies",
            ),
            Lowering(
                lowering.REQUEST_ID,
                (),
                "API Gateway's own request id ($context.requestId) is logged; the client's"
                " X-Request-ID and traceparent pass unchanged",
            ),
            Lowering(
                lowering.PROBLEMS,
                (),
                'API Gateway answers its own errors as {"message": ...}, not problem+json',
            ),
            Lowering(
                lowering.BREAKER, (), "not expressible: every request reaches its integration"
            ),
        ]
    )
    return found
