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
from strangler.workspace import Workspace, load_workspace
from tests.support.databases import fresh_database

SCALE = 0.03  # 30 users, 60 threads, 480 posts, 6 polls, 150 votes
# The second workspace: a `library` context whose tables have every shape (see shapes/).
SHAPES = Path(__file__).parent / "shapes" / "strangler.toml"


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
def shapes() -> Workspace:
    return load_workspace(SHAPES)


def library_databases(
    stack: ExitStack, backend: str, folder: Path, workspace: Workspace, service_backend: str = ""
) -> tuple[str, str]:
    """Fresh monolith and library databases with their schemas (from the models); the
    service's on `service_backend` when it is given."""
    urls = []
    for name, schema, kind in (
        ("monolith", "shapes_schema:monolith", backend),
        ("library", "shapes_schema:service", service_backend or backend),
    ):
        url = stack.enter_context(fresh_database(kind, folder, f"{name}-shapes"))
        engine = make_engine(url)
        try:
            workspace.resolve(schema).create_all(engine)
        finally:
            engine.dispose()
        urls.append(url)
    return urls[0], urls[1]


@pytest.fixture
def library_link(backend: str, tmp_path: Path, shapes: Workspace) -> Iterator[Link]:
    """Empty monolith and library databases of the shapes workspace, linked."""
    with ExitStack() as stack:
        monolith, service = library_databases(stack, backend, tmp_path, shapes)
        with Link.open("library", monolith, service, workspace=shapes) as link:
            yield link


@pytest.fixture
def forum_link(databases: Callable[[str], str]) -> Iterator[Link]:
    """A seeded monolith and an empty forum database, linked."""
    with Link.open("forum", databases("monolith"), databases("forum")) as link:
        yield link
