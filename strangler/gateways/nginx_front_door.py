"""The front door of an nginx configuration: what holds nginx to the Python proxy's standards.

Both nginx renderings (the live plane, `nginx_live`, and the deployable export, `nginx_export`)
are built from these blocks, so a request meets the same front door either way:

- the path rules of `strangler_proxy.paths`: nginx decodes once, merges slashes and resolves dot
  segments itself (a path climbing above the root is its own 400); a map over the raw target
  refuses what nginx would otherwise accept (encoded slashes, backslashes, control characters,
  bytes outside printable ASCII, escapes that do not decode to UTF-8) with the proxy's wording;
- `X-Forwarded-*` overwritten unless the peer is trusted, `X-Request-ID` kept when sane else
  nginx's own random id, and returned; W3C `traceparent` continued with a new span id;
- problem+json with the request id for every error nginx answers itself;
- header, idle and body limits; a JSON access log.

Routing is `nginx_routing`'s. This module must never decide where a route goes (the renderers
do) nor perform I/O.
"""

from __future__ import annotations

import json

from strangler.gateways.nginx_routing import INTERNAL, PYTHON_PROXY, quoted, seconds
from strangler.gateways.settings import GatewaySettings
from strangler_proxy.responses import problem

# A path nginx itself would accept but the Python proxy refuses, and why (first match wins).
_GOOD_TARGET = (
    "~*^/(?:[\\x21\\x22\\x24\\x26-\\x3e\\x40-\\x5b\\x5d-\\x7e]"
    "|%(?:2[0-9a-e]|[346][0-9a-f]|5[0-9abd-f]|7[0-9a-e])"
    "|%c[2-9a-f]%[89ab][0-9a-f]|%d[0-9a-f]%[89ab][0-9a-f]"
    "|%e0%[ab][0-9a-f]%[89ab][0-9a-f]|%e[1-9a-cef](?:%[89ab][0-9a-f]){2}"
    "|%ed%[89][0-9a-f]%[89ab][0-9a-f]|%f0%(?:9[0-9a-f]|[ab][0-9a-f])(?:%[89ab][0-9a-f]){2}"
    "|%f[1-3](?:%[89ab][0-9a-f]){3}|%f4%8[0-9a-f](?:%[89ab][0-9a-f]){2})*(?:[?#].*)?$"
)
_PATH_PROBLEMS = (
    (_GOOD_TARGET, ""),
    ("~*^[^?#]*%2f", "encoded slashes (%2F) are not allowed in paths"),
    ("~*^[^?#]*(?:\\x5c|%5c)", "backslashes are not allowed in paths"),
    ("~*^[^?#]*%(?:[01][0-9a-f]|7f)", "control characters are not allowed in paths"),
    ("~^[^?#]*[^\\x21-\\x7e]", "the path must be printable ASCII"),
    ("~^[^?#]*%(?![0-9a-fA-F]{2})", "a percent-escape is not two hex digits"),
)
_NOT_UTF8 = "the decoded path is not UTF-8"

# nginx's own errors, with the detail each gives (the Python proxy's words where it has them).
_OWN_ERRORS = {
    400: "the request path is not acceptable, or the request could not be read: a bad"
    " percent-escape, an encoded NUL, a path climbing above the root, a malformed request line"
    " or header",
    405: "only GET and HEAD are allowed on /healthz",
    413: "the body is larger than {max_body_bytes} bytes",
    414: "the request target is longer than {max_target_bytes} bytes",
    431: "a request header field is longer than {max_header_bytes} bytes",
    500: "the front door failed to handle the request",
    502: "the $strangler_target upstream refused the connection or closed it without an answer",
    503: "the $strangler_target upstream is unavailable",
    504: "the $strangler_target upstream did not answer in time",
}

_ACCESS_LOG_FORMAT = (
    '{"event": "request", "level": "info", "service": "nginx", "logger": "access",'
    ' "request_id": "$strangler_request_id", "method": "$request_method",'
    ' "path": "$strangler_path", "route": "$strangler_route_name",'
    ' "target": "$strangler_target", "status": $status, "fallback": "$strangler_fallback",'
    ' "upstream": "$upstream_addr", "duration_ms": $strangler_duration_ms,'
    ' "trace": "$strangler_traceparent", "timestamp": "$time_iso8601"}'
)

_TRACEPARENT_CONTINUED = (
    '"~^00-(?!0{32}-)(?<strangler_trace>[0-9a-f]{32})-(?!0{16}-)[0-9a-f]{16}-'
    '(?<strangler_flags>[0-9a-f]{2})$" "00-$strangler_trace-$strangler_span_id-$strangler_flags"'
)
_WHOLE_SECONDS_AS_MS = (
    '"~^(?<strangler_whole>[1-9][0-9]*)\\.(?<strangler_fraction>[0-9]{3})$"'
    ' "$strangler_whole$strangler_fraction"'
)


def problem_body(status: int, detail: str) -> str:
    """A problem+json body as nginx writes it, the request id filled in per request."""
    body = json.dumps(problem(status, detail, "REQUEST_ID"))
    return body.replace('"REQUEST_ID"', '"$strangler_request_id"')


_CHUNK_HEADROOM = 64 * 1024


def main_block(settings: GatewaySettings) -> str:
    """The top of nginx.conf: workers, pid and error log (paths relative to nginx's prefix)."""
    return f"""\
worker_processes {settings.worker_processes};
pid nginx.pid;
error_log {settings.error_log} warn;
worker_shutdown_timeout {seconds(settings.shutdown_timeout)};
events {{ worker_connections 4096; }}
"""


def http_preamble(settings: GatewaySettings) -> str:
    """Logs, client timeouts, limits and the per-request variables every request uses."""
    access_log = (
        f"access_log {settings.access_log} strangler_json buffer=64k flush=1s;"
        if settings.access_log
        else "access_log off;"
    )
    trusted = "".join(f"        {network} 1;\n" for network in settings.trusted_proxies)
    # The client's address (X-Real-IP, $remote_addr): the last one of X-Forwarded-For + peer
    # that is no trusted proxy, as `strangler_proxy.headers.TrustedProxies.client_of`; the
    # peer itself stays in $realip_remote_addr.
    real_ip = "".join(
        f"    set_real_ip_from {network};\n" for network in settings.trusted_proxies
    ) + ("    real_ip_header X-Forwarded-For;\n    real_ip_recursive on;\n" if trusted else "")
    path_problems = "".join(
        f"        {quoted(pattern)} {quoted(reason)};\n" for pattern, reason in _PATH_PROBLEMS
    )
    header_buffer = f"{(settings.max_header_bytes + 1023) // 1024}k"
    return f"""\
    # No extension decides a content type (nginx's built-in map would make a refused
    # `/x.html` text/html): nginx's own answers take their location's default_type.
    types {{ }}
    default_type application/octet-stream;
    server_tokens off;
    variables_hash_max_size 4096;
    variables_hash_bucket_size 128;
    client_body_temp_path temp-body;
    proxy_temp_path temp-proxy;
    fastcgi_temp_path temp-fastcgi;
    uwsgi_temp_path temp-uwsgi;
    scgi_temp_path temp-scgi;
    log_format strangler_json escape=json '{_ACCESS_LOG_FORMAT}';
    {access_log}

    client_header_timeout {seconds(settings.header_timeout)};
    client_body_timeout {seconds(settings.header_timeout)};
    keepalive_timeout {seconds(settings.idle_timeout)};
    send_timeout {seconds(settings.read_timeout)};
    client_max_body_size {settings.max_body_bytes};
    # Bodies and answers stay in memory: nginx's workers (a non-root user when started as root)
    # may not be allowed to write in the plane's folder. The buffer holds the limit and the
    # chunk header that crosses it, so that a chunked body too large is refused before the
    # buffer fills (a full buffer goes to a file first: a 500 there instead of the 413).
    client_body_buffer_size {settings.max_body_bytes + _CHUNK_HEADROOM};
    proxy_max_temp_file_size 0;
    large_client_header_buffers 4 {header_buffer};
    merge_slashes on;
    uninitialized_variable_warn off;  # route and path are set only once a request is routed
    reset_timedout_connection on;

    proxy_http_version 1.1;
    proxy_buffering on;
    proxy_intercept_errors off;
    proxy_next_upstream error timeout http_500 http_502 http_503 http_504;
    proxy_next_upstream_tries 2;

    # X-Request-ID: the client's when sane (as plumbing.request_id), else nginx's random one.
    map $http_x_request_id $strangler_request_id {{
        "~^[A-Za-z0-9._:-]{{1,128}}$" $http_x_request_id;
        default $request_id;
    }}
    # The upstream's own X-Request-ID passes; otherwise nginx adds the request's.
    map $upstream_http_x_request_id $strangler_response_request_id {{
        "" $strangler_request_id;
        default "";
    }}
    # traceparent: an incoming trace continues with a new span id (half of nginx's random
    # request id), else a new trace starts.
    map $request_id $strangler_span_id {{
        "~^(?<strangler_span>[0-9a-f]{{16}})" $strangler_span;
    }}
    map $http_traceparent $strangler_traceparent {{
        {_TRACEPARENT_CONTINUED};
        default "00-$request_id-$strangler_span_id-01";
    }}
    # A tracestate without its traceparent is dropped.
    map $http_traceparent $strangler_tracestate {{
        "" "";
        default $http_tracestate;
    }}
    # X-Forwarded-* and X-Real-IP: believed only from trusted peers, else overwritten.
{real_ip}    geo $realip_remote_addr $strangler_trusted_peer {{
        default 0;
{trusted}    }}
    map "$strangler_trusted_peer$http_x_forwarded_for" $strangler_forwarded_for {{
        "~^1." "$http_x_forwarded_for, $realip_remote_addr";
        default $realip_remote_addr;
    }}
    map "$strangler_trusted_peer:$http_x_forwarded_proto" $strangler_forwarded_proto {{
        "~^1:(?<strangler_proto>.+)$" $strangler_proto;
        default $scheme;
    }}
    map "$strangler_trusted_peer:$http_x_forwarded_host" $strangler_forwarded_host {{
        "~^1:(?<strangler_host>.+)$" $strangler_host;
        default $http_host;
    }}
    map $http_host $strangler_host_header {{
        "" $proxy_host;
        default $http_host;
    }}
    # The path rules of strangler_proxy.paths that nginx's own parser does not apply.
    map $request_uri $strangler_path_problem {{
        "" "";  # nginx refused the request line itself: its own 400 says so
{path_problems}        default {quoted(_NOT_UTF8)};
    }}
    map $request_uri $strangler_target_too_long {{
        "~^.{{{settings.max_target_bytes + 1}}}" 1;
        default 0;
    }}
    # A request retried on another server of its pool fell back (the monolith, the backup).
    map $upstream_addr $strangler_fallback {{
        "~," "monolith";
        default "";
    }}
    map $request_time $strangler_duration_ms {{
        "~^0\\.0{{0,2}}(?<strangler_ms>[0-9]+)$" $strangler_ms;
        {_WHOLE_SECONDS_AS_MS};
        default 0;
    }}
"""


def server_preamble(settings: GatewaySettings) -> str:
    """Listening, the front door's refusals, nginx's own errors as problems, /healthz."""
    limits = {
        "max_body_bytes": settings.max_body_bytes,
        "max_target_bytes": settings.max_target_bytes,
        "max_header_bytes": settings.max_header_bytes,
    }
    pages = []
    for status, detail in _OWN_ERRORS.items():
        # nginx calls a too large header field 494 and answers it as 400 unless told.
        source = "494 =431" if status == 431 else str(status)
        body = problem_body(status, detail.format(**limits))
        # A URI, not a named location: a request whose line could not be parsed has no URI,
        # and nginx refuses to send such a request to a named location.
        # nginx answers 405 only on its own /healthz; a location's add_header replaces the
        # server's, so the request id is added again beside Allow.
        allow = (
            "            add_header X-Request-ID $strangler_response_request_id always;\n"
            '            add_header Allow "GET, HEAD" always;\n'
            if status == 405
            else ""
        )
        pages.append(
            f"        error_page {source} {INTERNAL}error/{status};\n"
            f'        location = "{INTERNAL}error/{status}" {{\n'
            f"            internal;\n{allow}"
            f"            return {status} '{body}';\n        }}\n"
        )
    target_problem = problem_body(414, _OWN_ERRORS[414].format(**limits))
    path_problem = problem_body(400, "the request path is not acceptable: $strangler_path_problem")
    return f"""\
        listen {settings.listen_host}:{settings.listen_port};
        default_type application/problem+json;
        add_header X-Request-ID $strangler_response_request_id always;
        if ($strangler_target_too_long) {{
            return 414 '{target_problem}';
        }}
        if ($strangler_path_problem) {{
            return 400 '{path_problem}';
        }}
{"".join(pages)}
        location = /healthz {{
            if ($request_method !~ ^(?:GET|HEAD)$) {{
                return 405;
            }}
            default_type application/json;
            return 200 '{{"status": "ok"}}';
        }}
        # Every forwarded request: the headers of strangler_proxy.headers.
{header_directives("        ")}"""


# What every forwarded request carries (strangler_proxy.headers); nginx drops the other
# hop-by-hop headers (TE, Keep-Alive, Upgrade, Expect) itself.
FORWARDED_HEADERS = (
    ("Host", "$strangler_host_header"),
    ("Connection", '""'),
    ("X-Request-ID", "$strangler_request_id"),
    ("traceparent", "$strangler_traceparent"),
    ("tracestate", "$strangler_tracestate"),
    ("X-Forwarded-For", "$strangler_forwarded_for"),
    ("X-Real-IP", "$remote_addr"),
    ("X-Forwarded-Proto", "$strangler_forwarded_proto"),
    ("X-Forwarded-Host", "$strangler_forwarded_host"),
    ("Forwarded", '""'),
    ("Proxy-Authorization", '""'),
    ("Proxy-Connection", '""'),
    ("Trailer", '""'),
    ("X-Strangler-Force", "$strangler_control_force"),
    ("X-Strangler-Admin-Token", "$strangler_control_token"),
)


def header_directives(indent: str, shadow: bool = False) -> str:
    """`proxy_set_header` lines; nginx inherits them only into locations that set none."""
    headers = [*FORWARDED_HEADERS, ("X-Strangler-Shadow", "1" if shadow else '""')]
    return "".join(f"{indent}proxy_set_header {name} {value};\n" for name, value in headers)


def control_headers() -> str:
    """The Python proxy's control headers reach it, and no other upstream."""
    return f"""\
    map $strangler_target $strangler_control_force {{
        {PYTHON_PROXY} $http_x_strangler_force;
        default "";
    }}
    map $strangler_target $strangler_control_token {{
        {PYTHON_PROXY} $http_x_strangler_admin_token;
        default "";
    }}
"""
