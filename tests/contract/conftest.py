"""Fixtures of the black-box contract suite: which deployment is under test, and clients for it.

The suite proves any implementation of `docs/openapi.yaml` over real HTTP. What it runs against is a
`Deployment`: one base URL per bounded context, plus the contexts whose behaviour is under test.

- The monolith serves every context at one URL.
- The proxy at stage 0 serves every context at one URL, in front of the monolith.
- The services (`services` in `IMPLEMENTATIONS`) are the full split without a proxy: each
  context at its own service, the relays and consumers between them running.
- An extracted service serves one context; its preconditions that belong to other contexts
  (sign-up and tokens, a thread to search for) are created through the contract at whatever serves
  those contexts, e.g. `Deployment("forum-service", urls={**everything_at(monolith), "forum":
  service}, under_test={"forum", "operations"})`. Tests of contexts not under test are skipped.
- `STRANGLER_CONTRACT_URL=http://host:port` runs the suite against a system that is already up
  (e.g. `strangler up`), as one deployment serving every context (only the `sqlite` run; the
  `postgres` run is skipped because that system owns its own database). Set
  `STRANGLER_CONTRACT_TOKEN_SECRET` to its token key to include the expired/forged-token tests.

Tests are marked by the context they specify (`users`, `forum`, `polls`, `search`,
`operations`), so `pytest tests/contract -m forum` selects one service's part. Fixtures:
`deployment`, `base_url` (the entry of the implementation under test), `api` (a client on it),
`users_api` / `forum_api` / `polls_api` / `search_api` (a client on the URL serving that context),
`member` and `other_member` (signed-up, signed-in users made through `users_api`), `token_signer`
(the deployment's token key, to make expired tokens; skipped when unknown). Every response
any of these clients receives is validated against `docs/openapi.yaml`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest

from strangler.plumbing.tokens import TokenSigner
from tests.contract.client import ContractClient, Member
from tests.support.servers import TEST_TOKEN_SECRET, running_proxy, running_split

CONTEXTS = ("users", "forum", "polls", "search", "operations")
IMPLEMENTATIONS = ["monolith", "proxy", "services"]
EXTERNAL_ENV = "STRANGLER_CONTRACT_URL"
EXTERNAL_SECRET_ENV = "STRANGLER_CONTRACT_TOKEN_SECRET"


@dataclass(frozen=True)
class Deployment:
    """Where each context of the contract is served, and which contexts are under test."""

    name: str
    urls: Mapping[str, str]
    under_test: frozenset[str] = field(default_factory=lambda: frozenset(CONTEXTS))
    token_secret: str | None = TEST_TOKEN_SECRET

    @classmethod
    def single(cls, name: str, url: str) -> Deployment:
        """One process (monolith, proxy) serving every context at `url`."""
        return cls(name, everything_at(url))

    @property
    def base_url(self) -> str:
        """The entry of the implementation under test: the URL of a context it serves."""
        context = next(c for c in CONTEXTS if c in self.under_test and c != "operations")
        return self.urls[context]

    def url(self, context: str) -> str:
        return self.urls[context]


def everything_at(url: str) -> dict[str, str]:
    return dict.fromkeys(CONTEXTS, url.rstrip("/"))


def pytest_configure(config: pytest.Config) -> None:
    for context in CONTEXTS:
        config.addinivalue_line("markers", f"{context}: contract tests of the {context} context")


@pytest.fixture(scope="session")
def monolith_deployment(monolith_url: str) -> Deployment:
    return Deployment.single("monolith", monolith_url)


@pytest.fixture(scope="session")
def proxy_deployment(
    monolith_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The strangler proxy at stage 0 (every route in mode monolith) in front of the monolith."""
    folder = tmp_path_factory.mktemp(f"proxy-{backend}")
    with running_proxy({"monolith": monolith_url}, folder) as url:
        yield Deployment.single("proxy", url)


@pytest.fixture(scope="session")
def services_deployment(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Every context at its own extracted service, events flowing between them."""
    with running_split(backend, tmp_path_factory.mktemp(f"split-{backend}")) as urls:
        yield Deployment("services", {**urls, "operations": urls["users"]})


@pytest.fixture(scope="session", params=IMPLEMENTATIONS)
def deployment(request: pytest.FixtureRequest, backend: str) -> Deployment:
    """The deployment under test: one per implementation in IMPLEMENTATIONS, per backend."""
    external = os.environ.get(EXTERNAL_ENV)
    if external:
        if backend != "sqlite":
            pytest.skip(f"{EXTERNAL_ENV} names a running system; it is tested once")
        secret = os.environ.get(EXTERNAL_SECRET_ENV)
        return Deployment("external", everything_at(external), token_secret=secret)
    deployment: Deployment = request.getfixturevalue(f"{request.param}_deployment")
    return deployment


@pytest.fixture(autouse=True)
def _only_contexts_under_test(request: pytest.FixtureRequest, deployment: Deployment) -> None:
    """Skip a test of a context that the deployment under test does not implement."""
    contexts = {marker.name for marker in request.node.iter_markers() if marker.name in CONTEXTS}
    # A test about one context's path (marked e.g. `forum` and `operations`) needs that context.
    contexts = contexts - {"operations"} or contexts
    if contexts and not contexts & deployment.under_test:
        pytest.skip(f"{deployment.name} does not implement {', '.join(sorted(contexts))}")


def _client(url: str) -> Iterator[ContractClient]:
    with ContractClient(url) as client:
        yield client


@pytest.fixture(scope="session")
def base_url(deployment: Deployment) -> str:
    return deployment.base_url


@pytest.fixture(scope="session")
def api(base_url: str) -> Iterator[ContractClient]:
    """A client on the implementation under test (for behaviour every context shares)."""
    yield from _client(base_url)


@pytest.fixture
def context_api(request: pytest.FixtureRequest, deployment: Deployment) -> Iterator[ContractClient]:
    """A client on the URL serving the context this test (or its parameter) is marked with;
    the entry of the implementation for tests of no single context."""
    marked = [m.name for m in request.node.iter_markers() if m.name in CONTEXTS]
    contexts = [name for name in marked if name != "operations"]
    yield from _client(deployment.url(contexts[0]) if contexts else deployment.base_url)


@pytest.fixture(scope="session")
def users_api(deployment: Deployment) -> Iterator[ContractClient]:
    yield from _client(deployment.url("users"))


@pytest.fixture(scope="session")
def forum_api(deployment: Deployment) -> Iterator[ContractClient]:
    yield from _client(deployment.url("forum"))


@pytest.fixture(scope="session")
def polls_api(deployment: Deployment) -> Iterator[ContractClient]:
    yield from _client(deployment.url("polls"))


@pytest.fixture(scope="session")
def search_api(deployment: Deployment) -> Iterator[ContractClient]:
    yield from _client(deployment.url("search"))


@pytest.fixture(scope="session")
def token_signer(deployment: Deployment) -> TokenSigner:
    """Signs tokens with the deployment's own key, to forge expired or odd ones."""
    if deployment.token_secret is None:
        pytest.skip(f"the token signing key of {deployment.name} is unknown")
    return TokenSigner(deployment.token_secret)


@pytest.fixture
def member(users_api: ContractClient) -> Member:
    """A fresh signed-in user."""
    return users_api.sign_up_and_sign_in()


@pytest.fixture
def other_member(users_api: ContractClient) -> Member:
    """A second fresh signed-in user, for tests about somebody else's resources."""
    return users_api.sign_up_and_sign_in()
