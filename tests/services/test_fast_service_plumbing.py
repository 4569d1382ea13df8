"""What makes a service's request cheap keeps its promises (docs/services.md, "making a service
fast"): a JSON body is the bytes Starlette's encoder would send; session work never opens a
connection beyond those the pool keeps, however many requests want one at once; a read on the
event loop sees what a write committed, through the loop's own one-connection engine.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, event, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from strangler.plumbing import fastapi as plumbing_fastapi
from strangler.plumbing.capacity import SESSION_THREADS
from strangler.plumbing.database import make_reader_engine, make_session_engine
from strangler.plumbing.metrics import HttpMetrics

# What the contract's bodies hold: no floats (ids, counts, strings, null, booleans).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@given(json_values)
def test_a_json_body_is_the_bytes_starlettes_encoder_writes(value: Any) -> None:
    starlette = json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")
    assert plumbing_fastapi.JSONResponse(value).body == starlette


class Base(DeclarativeBase):
    pass


class Note(Base):
    """A table shaped like the ones the service template's models declare."""

    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]
    author_id: Mapped[int]
    created_at: Mapped[str]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    """A service's database plumbing, as `create_app` wires it, on a table like the template's."""
    database_url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    engine, reader = make_session_engine(database_url), make_reader_engine(database_url)
    Base.metadata.create_all(engine)
    app = FastAPI()
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    app.state.reader = reader
    plumbing_fastapi.install(app, HttpMetrics("test"), lambda: True)
    yield app
    engine.dispose()
    reader.dispose()


def _request(app: FastAPI) -> Request:
    return Request({"type": "http", "app": app, "method": "GET", "path": "/", "headers": []})


def test_session_work_never_opens_a_connection_the_pool_does_not_keep(app: FastAPI) -> None:
    engine = app.state.sessions.kw["bind"]
    opened: list[object] = []
    event.listen(engine, "connect", lambda connection, _: opened.append(connection))
    running, most = 0, 0
    lock = threading.Lock()

    def work(db: Session) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)  # long enough for the other requests to pile up
        value = db.execute(text("SELECT 1")).scalar_one()
        with lock:
            running -= 1
        return int(value)

    async def many_requests() -> list[int]:
        request = _request(app)
        calls = [plumbing_fastapi.in_session(request, work) for _ in range(4 * SESSION_THREADS)]
        return await asyncio.gather(*calls)

    assert asyncio.run(many_requests()) == [1] * (4 * SESSION_THREADS)
    assert most <= SESSION_THREADS
    assert len(opened) <= SESSION_THREADS


def test_a_read_on_the_event_loop_sees_what_a_write_committed(app: FastAPI) -> None:
    request = _request(app)

    def write(db: Session) -> None:
        db.execute(text("INSERT INTO notes (text, author_id, created_at) VALUES ('hi', 7, '')"))
        db.commit()

    def count(db: Connection) -> int:
        return int(db.execute(text("SELECT count(*) FROM notes")).scalar_one())

    assert plumbing_fastapi.read(request, count) == 0
    asyncio.run(plumbing_fastapi.in_session(request, write))
    assert plumbing_fastapi.read(request, count) == 1
    assert app.state.reader.pool.checkedout() == 0  # the loop's one connection is back
