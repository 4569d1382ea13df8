"""The service template works as it stands, so a copy starts from something green.

Its alembic environment upgrades, downgrades and upgrades again without drift, and its toy
resource keeps the contract's conventions (auth, bodies, 404s, keyset pages, problem+json,
outbox). A copied service keeps these tests, renamed, and grows them with its own domain.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select

from extracted._template.models import Base, outbox
from strangler.datapath.schemas import drift
from strangler.plumbing.database import make_engine
from strangler.runtime.apps import ASGI_VARIABLE
from strangler.runtime.launch import workspace_environment
from strangler.runtime.processes import free_port, start
from strangler.workspace import find_workspace
from tests.support.databases import fresh_database
from tests.support.servers import TEST_TOKEN_SECRET

ALEMBIC = Path(__file__).resolve().parents[2] / "extracted" / "_template" / "alembic"


def _alembic(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC))
    config.set_main_option("version_table", "alembic_version_template")
    config.attributes["database_url"] = database_url
    return config


def _tables(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version_template"}
    finally:
        engine.dispose()


@pytest.fixture
def fresh_template_database(backend: str, tmp_path: Path) -> Iterator[str]:
    with fresh_database(backend, tmp_path, "template") as database_url:
        yield database_url


@pytest.fixture(scope="module")
def template_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp(f"template-{backend}")
    with fresh_database(backend, folder, "template") as database_url:
        yield database_url


@pytest.fixture(scope="module")
def template_url(template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The template, migrated and served by uvicorn exactly as `strangler up` would serve it."""
    command.upgrade(_alembic(template_database), "head")
    port = free_port()
    env = {
        **workspace_environment(find_workspace()),
        ASGI_VARIABLE: "extracted._template:create_app",
        "TEMPLATE_DATABASE_URL": template_database,
        "STRANGLER_TOKEN_SECRET": TEST_TOKEN_SECRET,
    }
    argv = [sys.executable, "-m", "uvicorn", "--factory", "strangler.runtime.apps:asgi",
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    process = start(
        "template",
        argv,
        env,
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=tmp_path_factory.mktemp("logs") / "template.log",
    )
    try:
        process.wait_healthy()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture
def author(token_for: Callable[[int], str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(42)}"}


def test_the_template_migrates_up_down_and_up_again_without_drift(
    fresh_template_database: str,
) -> None:
    database_url = fresh_template_database
    command.upgrade(_alembic(database_url), "head")
    assert _tables(database_url) == {"notes", "outbox"}
    command.downgrade(_alembic(database_url), "base")
    assert _tables(database_url) == set()
    command.upgrade(_alembic(database_url), "head")
    assert drift("template", database_url, Base.metadata) == []


def test_a_note_is_written_read_and_recorded_in_the_outbox(
    http: httpx.Client, template_url: str, template_database: str, author: dict[str, str]
) -> None:
    response = http.post(f"{template_url}/api/notes", json={"text": "hello"}, headers=author)
    assert response.status_code == 201
    note = response.json()
    assert (note["text"], note["author_id"]) == ("hello", 42)
    assert http.get(f"{template_url}/api/notes/{note['id']}").json() == note
    engine = make_engine(template_database)
    with engine.connect() as connection:
        [(topic, payload)] = connection.execute(
            select(outbox.c.topic, outbox.c.payload).where(outbox.c.aggregate_id == str(note["id"]))
        ).all()
    engine.dispose()
    assert (topic, json.loads(payload)) == ("template.note_written", note)


def test_notes_are_listed_newest_first_in_keyset_pages(
    http: httpx.Client, template_url: str, author: dict[str, str]
) -> None:
    for text in ("one", "two", "three"):
        http.post(f"{template_url}/api/notes", json={"text": text}, headers=author)
    first = http.get(f"{template_url}/api/notes", params={"limit": 2}).json()
    assert [note["text"] for note in first["items"]] == ["three", "two"]
    rest = http.get(
        f"{template_url}/api/notes", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert rest["items"][0]["text"] == "one"


@pytest.mark.parametrize(
    ("request_line", "document", "status"),
    [
        (("POST", "/api/notes"), {"text": "no token"}, 401),
        (("POST", "/api/notes"), {"text": " "}, 422),
        (("POST", "/api/notes"), "not a JSON object", 422),
        (("GET", "/api/notes/987654321"), None, 404),
        (("GET", "/api/notes/0"), None, 404),
        (("GET", "/api/notes?limit=0"), None, 422),
        (("DELETE", "/api/notes"), None, 405),
        (("OPTIONS", "/api/notes"), None, 405),
    ],
    ids=["no-token", "blank", "not-an-object", "unknown", "zero", "limit-0", "delete", "options"],
)
def test_every_refusal_is_a_problem(
    http: httpx.Client,
    template_url: str,
    author: dict[str, str],
    request_line: tuple[str, str],
    document: object,
    status: int,
) -> None:
    method, path = request_line
    headers = {} if status == 401 else author
    response = http.request(method, template_url + path, json=document, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
