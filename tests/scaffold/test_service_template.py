"""The service template works as rendered, so a scaffolded service starts from something green.

`strangler new service catalog` renders `strangler/scaffold/template/` for the bookshelf's
catalog: its alembic environment upgrades, downgrades and upgrades again without drift on both
backends, and its first revision creates exactly the context's tables; its models map onto the
monolith's tables as the data path needs (`strangler check --config` says so); served as
`strangler up` serves it, it answers health and metrics, keeps the contract's conventions for
what it does not know (problem+json, request ids, 405 with Allow), and answers 501 on each
route the context claims until its handler is written.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, inspect

from strangler.plumbing.database import make_engine
from strangler.runtime.launch import service_command, service_environment
from strangler.runtime.processes import free_port, start
from strangler.workspace import load_workspace
from tests.scaffold.conftest import PACKAGE, run_ok
from tests.support.command_line import strangler
from tests.support.databases import fresh_database

CATALOG = ("books", "tags", "book_tags")


def _importable(project: Path) -> None:
    """The project's packages importable here, as they are in its own processes."""
    if str(project) not in sys.path:
        sys.path.insert(0, str(project))


def _alembic(project: Path, database_url: str) -> Config:
    _importable(project)
    config = Config()
    config.set_main_option("script_location", str(project / PACKAGE / "catalog" / "alembic"))
    config.attributes["database_url"] = database_url
    return config


def _tables(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version_catalog"}
    finally:
        engine.dispose()


def _models(project: Path) -> MetaData:
    """The scaffolded models, as the service's own process would import them."""
    _importable(project)
    workspace = load_workspace(project / "strangler.toml")
    found = workspace.resolve(f"{PACKAGE}.catalog.models:Base.metadata")
    assert isinstance(found, MetaData)
    return found


def test_the_scaffolded_service_migrates_up_down_and_up_again_without_drift(
    scaffolded: Path, backend: str, tmp_path: Path
) -> None:
    from strangler.datapath.schemas import drift

    with fresh_database(backend, tmp_path, "catalog") as database_url:
        command.upgrade(_alembic(scaffolded, database_url), "head")
        assert _tables(database_url) == set(CATALOG)
        command.downgrade(_alembic(scaffolded, database_url), "base")
        assert _tables(database_url) == set()
        command.upgrade(_alembic(scaffolded, database_url), "head")
        assert drift("catalog", database_url, _models(scaffolded)) == []


def test_the_scaffolded_models_are_the_monolith_s_tables_column_for_column(
    scaffolded: Path,
) -> None:
    models = _models(scaffolded)
    assert set(models.tables) == set(CATALOG)
    tags = models.tables["tags"]
    assert [column.name for column in tags.primary_key.columns] == ["slug"]
    assert {key.target_fullname for key in tags.c.parent_slug.foreign_keys} == {"tags.slug"}
    pairs = models.tables["book_tags"]
    assert [column.name for column in pairs.primary_key.columns] == ["isbn", "slug"]
    assert "valid" in run_ok(scaffolded, "check", "--config")  # both sides' tables, checked


def test_the_workspace_file_gains_the_service_and_its_stage_and_keeps_its_comments(
    initialised: Path, scaffolded: Path
) -> None:
    before = (initialised / "strangler.toml").read_text()
    after = (scaffolded / "strangler.toml").read_text()
    document = tomllib.loads(after)
    service = document["contexts"]["catalog"]["service"]
    assert service["app"] == f"{PACKAGE}.catalog:create_app"
    assert service["database"]["alembic"] == f"{PACKAGE}/catalog/alembic"
    assert document["stages"][-1]["extract"] == "catalog"
    kept = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert all(line in after for line in kept)


@pytest.fixture(scope="module")
def catalog_url(
    scaffolded: Path, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The scaffolded service, migrated and served by uvicorn exactly as `strangler up` would."""
    folder = tmp_path_factory.mktemp(f"catalog-{backend}")
    with fresh_database(backend, folder, "catalog") as database_url:
        command.upgrade(_alembic(scaffolded, database_url), "head")
        workspace = load_workspace(scaffolded / "strangler.toml")
        port = free_port()
        process = start(
            "catalog",
            service_command(workspace, "catalog", port),
            service_environment(workspace, "catalog", database_url, "x" * 32),
            health_url=f"http://127.0.0.1:{port}/healthz",
            log_path=folder / "catalog.log",
            cwd=scaffolded,
        )
        try:
            process.wait_healthy()
            yield f"http://127.0.0.1:{port}"
        finally:
            process.stop()


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/books"), ("GET", "/api/books/978-0"), ("PUT", "/api/books/1/tags/sf"),
     ("POST", "/api/tags"), ("GET", "/books/978-0")],
)  # fmt: skip
def test_each_route_of_the_context_answers_501_until_its_handler_is_written(
    catalog_url: str, method: str, path: str
) -> None:
    answer = httpx.request(method, catalog_url + path, timeout=10)
    assert answer.status_code == 501
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"]
    assert answer.json()["type"] == "urn:strangler:problem:not-implemented"


def test_what_the_service_does_not_know_is_answered_as_the_contract_says(
    catalog_url: str,
) -> None:
    assert httpx.get(f"{catalog_url}/healthz").json() == {"status": "ok"}
    assert "http_requests" in httpx.get(f"{catalog_url}/metrics").text
    unknown = httpx.get(f"{catalog_url}/no/such/thing")
    assert unknown.status_code == 404 and unknown.json()["status"] == 404
    wrong = httpx.delete(f"{catalog_url}/api/tags")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, POST"


def test_a_context_with_a_service_or_no_such_context_is_refused(scaffolded: Path) -> None:
    again = strangler(scaffolded, "new", "service", "catalog")
    assert again.returncode == 1 and "has a service already" in again.stdout
    unknown = strangler(scaffolded, "new", "service", "shelves")
    assert unknown.returncode == 1 and "no context 'shelves'" in unknown.stdout
