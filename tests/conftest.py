"""Fixtures every suite shares: the database backends and a running monolith.

Suites that need PostgreSQL are skipped, with the reason, unless STRANGLER_TEST_POSTGRES_URL is
set; `.ci/run` sets it, so CI always runs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import fresh_database, postgres_server_url
from tests.support.servers import running_monolith

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test: every suite using it runs once per backend."""
    if request.param == "postgres":
        postgres_server_url()
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the current backend, for one test."""
    with fresh_database(backend, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def monolith_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a migrated monolith under gunicorn, shared by a session's tests."""
    folder = tmp_path_factory.mktemp(f"monolith-{backend}")
    with fresh_database(backend, folder, "monolith") as url, running_monolith(url, folder) as base:
        yield base
