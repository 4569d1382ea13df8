"""Schemathesis fuzzes the forum and search services with `docs/openapi.yaml`, each restricted
to its own paths: whatever it sends, no answer is a 5xx and every answer is what the document
promises (status, content type, headers, body schema, `Allow`). Requests carry a valid token,
so the fuzzing reaches past the 401 into bodies; search gets arbitrary query text, which must
never reach the full-text engine as syntax.

As for users and polls, "schema-valid data is accepted" is left out: a cursor is opaque by
contract, so a schema-valid string the list never issued is rightly a 422.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.case import Case

from tests.services.conftest import StartService

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
FORUM_PATHS = r"^/api/threads"
SEARCH_PATHS = r"^/api/search"

# The coverage phase would build, at collection, boundary strings for every pattern up to its
# maximum length (20,000 characters for a body): minutes of work for cases fuzzing covers too.
schema = schemathesis.openapi.from_path(
    OPENAPI, config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
)
fuzzing = settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@pytest.fixture
def member(token_for: Callable[[int], str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(1)}"}


@pytest.fixture
def forum_url(session_service: StartService, member: dict[str, str]) -> str:
    url = session_service("forum").url
    document = {"title": "Fuzzing", "body": "A thread for the fuzzer to find"}
    httpx.post(f"{url}/api/threads", json=document, headers=member, timeout=10.0)
    return url


@pytest.fixture
def search_url(session_service: StartService) -> str:
    return session_service("search").url


@schema.include(path_regex=FORUM_PATHS).parametrize()
@fuzzing
def test_the_forum_service_keeps_the_documented_contract_under_fuzzing(
    case: Case, forum_url: str, member: dict[str, str]
) -> None:
    case.call_and_validate(
        base_url=forum_url, headers=member, excluded_checks=[positive_data_acceptance]
    )


@schema.include(path_regex=SEARCH_PATHS).parametrize()
@fuzzing
def test_the_search_service_keeps_the_documented_contract_under_fuzzing(
    case: Case, search_url: str
) -> None:
    case.call_and_validate(base_url=search_url, excluded_checks=[positive_data_acceptance])
