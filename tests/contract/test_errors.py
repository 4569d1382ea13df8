"""What every process of the contract shares: problem+json errors, 404/405, request ids,
/healthz and /metrics."""

from __future__ import annotations

import pytest

from tests.contract.client import ContractClient

pytestmark = pytest.mark.operations

# A known path of each context and a method it does not answer.
KNOWN_PATHS = [
    pytest.param("/api/users", "DELETE", marks=pytest.mark.users, id="users"),
    pytest.param("/api/me", "POST", marks=pytest.mark.users, id="me"),
    pytest.param("/api/threads", "PUT", marks=pytest.mark.forum, id="forum"),
    pytest.param("/api/threads/1/posts", "DELETE", marks=pytest.mark.forum, id="posts"),
    pytest.param("/api/polls", "GET", marks=pytest.mark.polls, id="polls"),
    pytest.param("/api/polls/1/results", "POST", marks=pytest.mark.polls, id="results"),
    pytest.param("/api/search", "POST", marks=pytest.mark.search, id="search"),
    pytest.param("/healthz", "POST", id="healthz"),
]


def assert_problem(response: object, status: int, slug: str) -> None:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["type"] == f"urn:strangler:problem:{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]


@pytest.mark.parametrize("path", ["/nowhere", "/api", "/api/nothing/here", "/api/users/1/friends"])
def test_an_unknown_path_is_a_not_found_problem(api: ContractClient, path: str) -> None:
    assert_problem(api.get(path), 404, "not-found")


@pytest.mark.parametrize("path", ["/api/threads/", "/api/users/", "/healthz/", "/api/search/"])
def test_a_trailing_slash_is_an_unknown_path(api: ContractClient, path: str) -> None:
    assert_problem(api.get(path), 404, "not-found")


@pytest.mark.parametrize(("path", "method"), KNOWN_PATHS)
def test_a_wrong_method_is_a_method_not_allowed_problem_with_allow(
    context_api: ContractClient, path: str, method: str
) -> None:
    response = context_api.request(method, path)
    assert_problem(response, 405, "method-not-allowed")
    allowed = {name.strip() for name in response.headers["allow"].split(",")}
    assert method not in allowed
    assert allowed & {"GET", "POST", "PATCH"}


@pytest.mark.parametrize(("path", "method"), KNOWN_PATHS)
def test_options_is_a_method_not_allowed_problem(
    context_api: ContractClient, path: str, method: str
) -> None:
    assert_problem(context_api.request("OPTIONS", path), 405, "method-not-allowed")


def test_errors_are_never_html_whatever_the_client_accepts(api: ContractClient) -> None:
    response = api.get("/nowhere", headers={"Accept": "text/html"})
    assert_problem(response, 404, "not-found")
    assert "<html" not in response.text.lower()


class TestRequestIds:
    @pytest.mark.parametrize("supplied", ["abc-123", "a.b:c_d-E", "x" * 128, "0"])
    def test_a_sane_request_id_is_echoed(self, api: ContractClient, supplied: str) -> None:
        assert (
            api.get("/healthz", headers={"X-Request-ID": supplied}).headers["x-request-id"]
            == supplied
        )

    @pytest.mark.parametrize("supplied", ["x" * 129, "has space", "semi;colon", "<script>", "é"])
    def test_an_insane_request_id_is_replaced(self, api: ContractClient, supplied: str) -> None:
        response = api.get("/healthz", headers=[(b"X-Request-ID", supplied.encode())])
        assert response.headers["x-request-id"] not in ("", supplied)

    def test_every_response_has_its_own_request_id(self, api: ContractClient) -> None:
        ids = {api.get("/healthz").headers["x-request-id"] for _ in range(5)}
        ids.add(api.get("/nowhere").headers["x-request-id"])
        assert len(ids) == 6

    def test_errors_echo_the_request_id_too(self, api: ContractClient) -> None:
        assert (
            api.get("/nowhere", headers={"X-Request-ID": "trace-404"}).headers["x-request-id"]
            == "trace-404"
        )


def test_health_is_ok(api: ContractClient) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_metrics_are_prometheus_text(api: ContractClient) -> None:
    api.get("/healthz")
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE " in response.text and "# HELP " in response.text
