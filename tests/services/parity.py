"""What the parity suites share: one request sent to the monolith and to a service, the data
copied between their databases, and the values only a run can know."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import MetaData, Table, insert, select, text

from strangler.plumbing.database import make_engine
from strangler.plumbing.tokens import TokenSigner
from tests.support.servers import TEST_TOKEN_SECRET

SIGNER = TokenSigner(TEST_TOKEN_SECRET)
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
UNKNOWN = 987654321


@dataclass(frozen=True)
class Exchange:
    """One request sent to both sides; `as_user` signs it with a token for that user id.
    `settles`: the service's answer follows from events, so it may trail the monolith's by the
    contract's bound (2 s) and is compared until it agrees or that bound, generously, passes."""

    name: str
    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    as_user: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    settles: bool = False

    def send(self, client: httpx.Client, base_url: str) -> httpx.Response:
        headers = dict(self.headers)
        if self.as_user is not None:
            headers["Authorization"] = f"Bearer {SIGNER.issue(self.as_user)}"
        return client.request(
            self.method, base_url + self.path, json=self.json, content=self.content, headers=headers
        )


def copy_rows(source_url: str, target_url: str, metadata: MetaData, tables: list[str]) -> None:
    """Copy `tables` (parents first) from the monolith's database into a service's, unchanged."""
    source, target = make_engine(source_url), make_engine(target_url)
    with source.connect() as reading, target.begin() as writing:
        for name in tables:
            table = metadata.tables[name]
            monolith_table = Table(name, MetaData(), autoload_with=reading)
            columns = [monolith_table.c[column.name] for column in table.columns]
            rows = [dict(row._mapping) for row in reading.execute(select(*columns))]
            writing.execute(insert(table), rows)
            if target.dialect.name == "postgresql":  # explicit ids do not move the sequence
                sequence = f"pg_get_serial_sequence('{name}', 'id')"
                writing.execute(text(f"SELECT setval({sequence}, max(id)) FROM {name}"))
    source.dispose()
    target.dispose()
