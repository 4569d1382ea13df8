"""Property-based fuzzing of the deployment under test with `docs/openapi.yaml` (schemathesis).

Every operation of the document gets generated requests, valid and invalid, with a real member's
bearer token. Whatever is sent, the answer must not be a 5xx, must have a documented status code,
media type, headers and body, and data the document calls invalid must be refused with a 4xx.
Only the contexts the deployment implements are fuzzed (by the operations' tags).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.contract.client import ContractClient, Member
from tests.contract.conformance import OPENAPI_PATH, is_valid_http
from tests.contract.conftest import Deployment

schema = schemathesis.openapi.from_path(OPENAPI_PATH)
schema.config.phases.coverage.enabled = False

MAX_REQUEST_LINE = 4094  # gunicorn's default limit_request_line
MAX_PROXIED_TARGET = 4000  # the proxy's PROXY_MAX_TARGET_BYTES (docs/proxy.md, "The front door")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="session")
def fuzzer(users_api: ContractClient) -> Member:
    """The member whose token every fuzzed request carries."""
    return users_api.sign_up_and_sign_in(display_name="Fuzzer")


def context_of(case: Any) -> str:
    tags = case.operation.definition.raw.get("tags") or ["operations"]
    return str(tags[0])


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_no_response_outside_the_contract(
    case: Any, deployment: Deployment, fuzzer: Member
) -> None:
    context = context_of(case)
    if context not in deployment.under_test:
        pytest.skip(f"{deployment.name} does not implement {context}")
    response = case.call(base_url=deployment.url(context), headers=fuzzer.headers)
    if is_refused_at_the_front_door(response, deployment):
        return
    case.validate_response(response, checks=CHECKS, headers=fuzzer.headers)


def is_refused_at_the_front_door(response: Any, deployment: Deployment) -> bool:
    """Whether this is the front door's refusal of a request no application should see
    (docs/openapi.yaml, conventions), checked here because no operation lists it."""
    url = urlsplit(response.request.url)
    target = len(url.path) + (len(url.query) + 1 if url.query else 0)
    if response.status_code == 414 and deployment.name == "monolith":
        # Known gap of the monolith served directly: gunicorn refuses a request line over 4094
        # bytes itself (an HTML 414 without X-Request-ID) before the app can answer. Behind
        # the proxy, as `strangler up` serves it at every stage, the proxy refuses it first.
        assert target + len(f"{response.request.method}  HTTP/1.1") > MAX_REQUEST_LINE
        return True
    if response.status_code == 414:
        assert target > MAX_PROXIED_TARGET
        assert_front_door_problem(response, "uri-too-long")
        return True
    if response.status_code == 400 and not is_valid_http(response.request.headers):
        # A header no HTTP/1.1 parser accepts (negative data for the bearer scheme can be any
        # header, e.g. `content-length: <g`): the server refuses the request before any
        # application sees it, so no operation's contract applies. The proxy (the public port
        # under `strangler up`) answers that with its problem; gunicorn and uvicorn, serving the
        # monolith or a service directly, with their own body.
        if deployment.name in ("proxy", "external"):
            assert_front_door_problem(response, "bad-request")
            assert response.json()["detail"] == "the request is not valid HTTP/1.1"
        return True
    is_path_refusal = (
        response.status_code == 400
        and header(response, "content-type") == "application/problem+json"
        and response.json()["detail"].startswith("the request path is not acceptable")
    )
    if is_path_refusal and deployment.name != "monolith":
        # The proxy's path normalisation (docs/proxy.md) refuses a path with no single meaning.
        assert_front_door_problem(response, "bad-request")
        return True
    return False


def header(response: Any, name: str) -> str | None:
    """One header of a schemathesis response (lower-case names, a list of values each)."""
    values = response.headers.get(name)
    return values[0] if values else None


def assert_front_door_problem(response: Any, slug: str) -> None:
    assert header(response, "content-type") == "application/problem+json"
    assert header(response, "x-request-id") == response.json()["request_id"]
    assert response.json()["type"] == f"urn:strangler:problem:{slug}"
