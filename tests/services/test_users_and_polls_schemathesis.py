"""Schemathesis fuzzes the users and polls services with `docs/openapi.yaml`, each restricted to
its own paths: whatever it sends, no answer is a 5xx and every answer is what the document
promises (status, content type, headers, body schema, `Allow`), and requests the document
forbids are refused. Requests carry a valid token for a user that exists, so the fuzzing reaches
past the 401 into bodies and domain rules.

One default check is left out: "schema-valid data is accepted". A cursor is opaque by contract,
so a schema-valid string the list never issued is rightly a 422, and a schema-valid sign-up or
vote may rightly be a 409 or a 422 for the domain's reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation.case import Case

from tests.services.conftest import StartService

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
USERS_PATHS = r"^/api/(users|sessions|me)"
POLLS_PATHS = r"^(/api/polls|/results/)"

schema = schemathesis.openapi.from_path(OPENAPI)
fuzzing = settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@pytest.fixture
def member(token_for: Callable[[int], str]) -> dict[str, str]:
    """The headers of user 1, who exists on every service below (made by the fixtures)."""
    return {"Authorization": f"Bearer {token_for(1)}"}


@pytest.fixture
def users_url(session_service: StartService, member: dict[str, str]) -> str:
    url = session_service("users").url
    document = {
        "username": "first_member",
        "email": "first_member@example.org",
        "password": "a long enough password",
        "display_name": "First",
    }
    httpx.post(f"{url}/api/users", json=document, timeout=10.0)  # 201 once, then 409
    return url


@pytest.fixture
def polls_url(session_service: StartService, member: dict[str, str]) -> str:
    url = session_service("polls").url
    document = {"question": "Tea or coffee?", "options": ["Tea", "Coffee"]}
    httpx.post(f"{url}/api/polls", json=document, headers=member, timeout=10.0)
    return url


@schema.include(path_regex=USERS_PATHS).parametrize()
@fuzzing
def test_the_users_service_keeps_the_documented_contract_under_fuzzing(
    case: Case, users_url: str, member: dict[str, str]
) -> None:
    case.call_and_validate(
        base_url=users_url, headers=member, excluded_checks=[positive_data_acceptance]
    )


@schema.include(path_regex=POLLS_PATHS).parametrize()
@fuzzing
def test_the_polls_service_keeps_the_documented_contract_under_fuzzing(
    case: Case, polls_url: str, member: dict[str, str]
) -> None:
    case.call_and_validate(
        base_url=polls_url, headers=member, excluded_checks=[positive_data_acceptance]
    )
