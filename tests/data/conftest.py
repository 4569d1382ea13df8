"""Fixtures of the data-path suite: seeded monoliths, migrated service databases, real processes.

Every test gets fresh databases of the current backend (SQLite files, or new PostgreSQL
databases when STRANGLER_TEST_POSTGRES_URL is set). Data is small: the big figures come from
`loadtests/bench_data.py`, not from tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from contract.passwords import Passwords
from monolith.seed import seed
from strangler.datapath import schemas
from strangler.datapath.link import Link
from strangler.plumbing.database import make_engine
from tests.support.databases import fresh_database

SCALE = 0.03  # 30 users, 60 threads, 480 posts, 6 polls, 150 votes


def seeded(url: str, scale: float = SCALE) -> str:
    """Migrate and seed a monolith database (cheap password hashing)."""
    schemas.upgrade("monolith", url)
    engine = make_engine(url)
    try:
        seed(engine, scale, passwords=Passwords(time_cost=1, memory_cost_kib=1024))
    finally:
        engine.dispose()
    return url


@pytest.fixture
def databases(backend: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Make fresh databases of the backend by name; a service's name migrates its schema."""
    with ExitStack() as stack:

        def make(name: str) -> str:
            url = stack.enter_context(fresh_database(backend, tmp_path, name))
            if name == "monolith":
                return seeded(url)
            schemas.upgrade(name, url)
            return url

        yield make


@pytest.fixture
def forum_link(databases: Callable[[str], str]) -> Iterator[Link]:
    """A seeded monolith and an empty forum database, linked."""
    with Link.open("forum", databases("monolith"), databases("forum")) as link:
        yield link
