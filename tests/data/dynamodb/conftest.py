"""Fixtures of the SQL <-> DynamoDB data path's tests: a seeded monolith and a moto server.

AWS here is moto in server mode (as the toolkit runs it: `strangler.serverless
.emulator_server`), an emulator of DynamoDB and DynamoDB Streams (what that does
and does not prove: docs/serverless.md). One moto server per module, on a free loopback port,
stopped with its process group; every test gets its own table (from the polls definition,
under a name of its own) and the data path's bookkeeping table, and a fresh seeded monolith of
the current backend (SQLite file or PostgreSQL database).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from extracted.polls.serverless.table import DEFINITION
from strangler.runtime.processes import free_port, start
from strangler.serverless.data.link import ItemsLink, provision_bookkeeping
from strangler.serverless.emulator import emulator_command
from strangler.serverless.provision import provision_table
from strangler.workspace import find_workspace

REGION = "us-east-1"
_NAMES = itertools.count(1)


@dataclass(frozen=True)
class Emulator:
    url: str
    environment: dict[str, str]


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A moto server on loopback, and the environment boto3 needs to reach it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    moto = start(
        "moto",
        emulator_command(port),
        {},
        health_url=f"{url}/moto-api/",
        log_path=tmp_path_factory.mktemp("moto") / "moto.log",
    )
    environment = {
        "AWS_ENDPOINT_URL": url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    try:
        moto.wait_healthy()
        with pytest.MonkeyPatch.context() as patch:
            for name, value in environment.items():
                patch.setenv(name, value)
            yield Emulator(url, environment)
    finally:
        moto.stop()


@pytest.fixture
def table_name() -> str:
    """A table of this test's own on the module's server."""
    return f"polls-{next(_NAMES)}"


@pytest.fixture
def open_link(
    moto_server: Emulator, databases: Callable[[str], str], table_name: str
) -> Iterator[Callable[[], ItemsLink]]:
    """Open links (as many as a test wants) between one seeded monolith and one provisioned
    table with its stream; every link opened is closed after the test."""
    monolith = databases("monolith")
    opened: list[ItemsLink] = []

    def open_one() -> ItemsLink:
        link = ItemsLink.open(
            find_workspace(), "polls", monolith, moto_server.url, table_name=table_name
        )
        opened.append(link)
        return link

    first = open_one()
    provision_table(first.dynamodb, {**DEFINITION, "TableName": table_name})
    provision_bookkeeping(first)
    yield open_one
    for link in opened:
        link.close()


@pytest.fixture
def items_link(open_link: Callable[[], ItemsLink]) -> ItemsLink:
    return open_link()


@pytest.fixture
def monolith_url(items_link: ItemsLink) -> str:
    return items_link.monolith.url.render_as_string(hide_password=False)


def path_of(tmp_path: Path, name: str) -> Path:
    return tmp_path / name
