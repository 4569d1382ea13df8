"""Fixtures shared by every extracted service's suite: running services and tokens.

A service runs for real: its database is migrated by its own alembic environment, then
`uvicorn --factory extracted.<context>:create_app` serves it on a free loopback port, exactly as
`strangler up` runs it. The polls service comes with its own relay and results consumer (on a
fresh database bus), because its results are only computed by them. Tokens are signed with the
key the test servers share, so a token made here is one the monolith could have issued.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from strangler.plumbing.tokens import TokenSigner
from tests.contract.conftest import CONTEXTS
from tests.support.databases import fresh_database
from tests.support.servers import TEST_TOKEN_SECRET, running_events, running_service


@dataclass(frozen=True)
class RunningService:
    """A service under test: where it answers, its database (for checks behind its back) and
    the folder it runs in (its logs, and the polls results pages)."""

    url: str
    database_url: str
    folder: Path


StartService = Callable[[str], RunningService]
# Services that consume their own events: polls recomputes its results from its votes' events.
SELF_CONSUMING = {"polls"}


def pytest_configure(config: pytest.Config) -> None:
    # The contract suite's context markers, for the suites here that re-use its tests.
    for context in CONTEXTS:
        config.addinivalue_line("markers", f"{context}: contract tests of the {context} context")


@pytest.fixture(scope="session")
def session_service(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartService]:
    """`session_service(context)`: that service, running on its own fresh database.

    Started on first use and shared by the rest of the session (per backend), like
    `monolith_url`; tests that need an empty database use `start_service` instead.
    """
    started: dict[str, RunningService] = {}
    with ExitStack() as stack:

        def start(context: str) -> RunningService:
            if context not in started:
                folder = tmp_path_factory.mktemp(f"{context}-{backend}")
                database_url = stack.enter_context(fresh_database(backend, folder, context))
                url = stack.enter_context(running_service(context, database_url, folder))
                if context in SELF_CONSUMING:
                    bus_url = stack.enter_context(fresh_database(backend, folder, "bus"))
                    databases = {context: database_url}
                    stack.enter_context(
                        running_events(databases, bus_url, folder, [context], [context])
                    )
                started[context] = RunningService(url, database_url, folder)
            return started[context]

        yield start


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[[str, str], str]]:
    """`start_service(context, database_url)`: serve a service on a given database for one test."""
    with ExitStack() as stack:

        def start(context: str, database_url: str) -> str:
            folder = tmp_path / context
            folder.mkdir(exist_ok=True)
            return stack.enter_context(running_service(context, database_url, folder))

        yield start


@pytest.fixture(scope="session")
def token_for() -> Callable[[int], str]:
    """`token_for(user_id)`: a bearer token any implementation accepts (the shared test key)."""
    signer = TokenSigner(TEST_TOKEN_SECRET)
    return signer.issue


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A plain HTTP client; tests pass full URLs so one client can talk to several servers."""
    with httpx.Client(timeout=10.0) as client:
        yield client
