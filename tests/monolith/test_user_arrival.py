"""A writer the users service just created: the monolith waits for its row instead of a 401.

Once users is extracted, a member signs up at the service and may write at once to a context
the monolith still serves; the row reaches the monolith's `users` table through the users feed
a moment later. Here a second connection commits that row while the monolith's check waits,
on a SQLite file in WAL mode, as the system runs it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from contract.requests import NewThread
from monolith.forum import service as forum
from monolith.models import Base, User
from monolith.users.service import signed_in_user
from strangler.plumbing.database import make_engine
from strangler.plumbing.errors import Unauthorized


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    made = make_engine(f"sqlite:///{tmp_path / 'monolith.sqlite3'}")
    Base.metadata.create_all(made)
    return made


def _arrives_later(engine: Engine, user_id: int, after: float) -> threading.Thread:
    def feed() -> None:
        time.sleep(after)
        with engine.begin() as connection:
            connection.execute(
                insert(User).values(
                    id=user_id, username=f"new{user_id}", email=f"new{user_id}@example.org",
                    password_hash="x", display_name="New", bio="",
                )
            )  # fmt: skip

    thread = threading.Thread(target=feed)
    thread.start()
    return thread


def test_a_writer_whose_row_arrives_while_the_check_waits_is_served(engine: Engine) -> None:
    feed = _arrives_later(engine, 7, after=0.4)
    with Session(engine) as db:
        began = time.monotonic()
        thread = forum.start_thread(db, 7, NewThread(title="First words", body="Just signed up"))
        waited = time.monotonic() - began
        assert thread.author_id == 7
    feed.join()
    assert waited >= 0.3, "the row was not there before the feed wrote it"


def test_a_user_who_never_arrives_is_a_401_after_the_patience(engine: Engine) -> None:
    with Session(engine) as db:
        began = time.monotonic()
        with pytest.raises(Unauthorized, match="does not exist"):
            signed_in_user(db, 404, patience=0.3)
        assert time.monotonic() - began >= 0.3


def test_a_known_user_is_found_by_the_first_look(engine: Engine) -> None:
    _arrives_later(engine, 1, after=0).join()
    with Session(engine) as db:
        assert signed_in_user(db, 1, patience=0).id == 1
