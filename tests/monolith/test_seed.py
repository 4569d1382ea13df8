"""The seed generator: deterministic, realistic enough to search, and safe to re-run."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select, text

from contract.passwords import Passwords
from monolith.models import Base, Post, Thread, User
from monolith.seed import SEED_PASSWORD, seed
from strangler.datapath.schemas import upgrade
from strangler.plumbing.database import make_engine

CHEAP = Passwords(time_cost=1, memory_cost_kib=1024)


def _fingerprint(database_url: str) -> str:
    """A digest of every row of every table, password hashes aside (they are salted)."""
    digest = hashlib.sha256()
    engine = make_engine(database_url)
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.c if c.name != "password_hash"]
            for row in connection.execute(select(*columns).order_by(table.c.id)):
                digest.update(repr(tuple(row)).encode())
    engine.dispose()
    return digest.hexdigest()


def _seeded(database_url: str, scale: float = 0.05, seed_value: int = 7) -> None:
    upgrade("monolith", database_url)
    seed(make_engine(database_url), scale, seed_value, passwords=CHEAP)


def test_same_seed_gives_the_same_rows(backend: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.support.databases import fresh_database

    with (
        fresh_database(backend, tmp_path, "a") as first,
        fresh_database(backend, tmp_path, "b") as second,
    ):
        _seeded(first)
        _seeded(second)
        assert _fingerprint(first) == _fingerprint(second)


def test_post_counts_match_the_posts(database_url: str) -> None:
    _seeded(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        counted = dict(
            connection.execute(select(Post.thread_id, func.count()).group_by(Post.thread_id)).all()
        )
        stored = dict(connection.execute(select(Thread.id, Thread.post_count)).all())
    engine.dispose()
    assert {k: v for k, v in stored.items() if v} == counted


def test_seeded_users_sign_in_with_the_seed_password(database_url: str) -> None:
    _seeded(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        stored_hash = connection.scalar(select(User.password_hash).limit(1))
    engine.dispose()
    assert CHEAP.matches(stored_hash, SEED_PASSWORD)


def test_new_rows_get_ids_after_the_seeded_ones(database_url: str) -> None:
    _seeded(database_url)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        before = connection.scalar(select(func.max(Thread.id)))
        connection.execute(
            text(
                "INSERT INTO threads (title, body, author_id, post_count, created_at) "
                "VALUES ('t', 'b', 1, 0, CURRENT_TIMESTAMP)"
            )
        )
        after = connection.scalar(select(func.max(Thread.id)))
    engine.dispose()
    assert after == before + 1


def test_seeding_a_database_that_has_users_is_refused(database_url: str) -> None:
    _seeded(database_url)
    with pytest.raises(RuntimeError, match="already has users"):
        seed(make_engine(database_url), 0.01, passwords=CHEAP)
