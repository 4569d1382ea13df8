"""The front door of the Envoy export: its listener and HTTP connection manager.

Paths normalised (dot segments, repeated slashes; escaped slashes and backslashes refused),
`X-Forwarded-For/Host` overwritten, the Python proxy's control headers and `Forwarded` removed,
request ids kept or generated and returned, Envoy's own errors as problem+json (one mapper per
status, the Python proxy's slugs and titles), a JSON access log on stdout, header and idle
timeouts, the body limit. Routes and clusters are `envoy`'s. This module must never run Envoy.
"""

from __future__ import annotations

from typing import Any

from strangler.gateways.settings import GatewaySettings
from strangler_proxy.responses import PROBLEMS

TYPES = "type.googleapis.com/envoy.extensions"
_CONTROL_HEADERS = ["x-strangler-force", "x-strangler-admin-token", "x-strangler-shadow"]


def seconds(value: float) -> str:
    return f"{value:.3f}s"


def header(name: str, value: str) -> dict[str, Any]:
    return {"header": {"key": name, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _problem_mappers() -> list[dict[str, Any]]:
    mappers = []
    for status, (slug, title) in sorted(PROBLEMS.items()):
        mappers.append(
            {
                "filter": {
                    "status_code_filter": {
                        "comparison": {
                            "op": "EQ",
                            "value": {
                                "default_value": status,
                                "runtime_key": f"strangler.problem_{status}",
                            },
                        }
                    }
                },
                "body_format_override": {
                    "json_format": {
                        "type": f"urn:strangler:problem:{slug}",
                        "title": title,
                        "status": "%RESPONSE_CODE%",
                        "detail": "%LOCAL_REPLY_BODY%",
                        "request_id": "%REQ(X-REQUEST-ID)%",
                    },
                    "content_type": "application/problem+json",
                },
            }
        )
    return mappers


def listener(routes: list[dict[str, Any]], settings: GatewaySettings) -> dict[str, Any]:
    access_log = {
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": f"{TYPES}.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {
                "json_format": {
                    "event": "request",
                    "service": "envoy",
                    "logger": "access",
                    "request_id": "%REQ(X-REQUEST-ID)%",
                    "method": "%REQ(:METHOD)%",
                    "path": "%REQ(:PATH)%",
                    "route": "%ROUTE_NAME%",
                    "target": "%UPSTREAM_CLUSTER%",
                    "status": "%RESPONSE_CODE%",
                    "upstream": "%UPSTREAM_HOST%",
                    "duration_ms": "%DURATION%",
                    "timestamp": "%START_TIME%",
                }
            },
        },
    }
    manager = {
        "@type": f"{TYPES}.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "strangler",
        "codec_type": "AUTO",
        "use_remote_address": True,
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "REJECT_REQUEST",
        "request_headers_timeout": seconds(settings.header_timeout),
        "common_http_protocol_options": {"idle_timeout": seconds(settings.idle_timeout)},
        "max_request_headers_kb": max(1, settings.max_header_bytes // 1024),
        "generate_request_id": True,
        "preserve_external_request_id": True,
        "always_set_request_id_in_response": True,
        "access_log": [access_log],
        "local_reply_config": {"mappers": _problem_mappers()},
        "route_config": {
            "name": "strangler",
            "request_headers_to_remove": [*_CONTROL_HEADERS, "forwarded", "proxy-authorization"],
            "request_headers_to_add": [
                {
                    "header": {
                        "key": "x-forwarded-for",
                        "value": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
                    },
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                },
                {
                    "header": {"key": "x-forwarded-host", "value": "%REQ(:AUTHORITY)%"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                },
            ],
            "virtual_hosts": [{"name": "table", "domains": ["*"], "routes": routes}],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": f"{TYPES}.filters.http.router.v3.Router"},
            }
        ],
    }
    return {
        "name": "strangler",
        "address": {
            "socket_address": {"address": settings.listen_host, "port_value": settings.listen_port}
        },
        "per_connection_buffer_limit_bytes": settings.max_body_bytes,
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }
