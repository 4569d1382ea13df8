"""The database server's CPU as a role of its own: the PostgreSQL backends serving a system's
databases are found and sampled like its processes; SQLite's CPU is already theirs."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import create_engine, text

from strangler.compare.database_processes import DatabaseProcesses
from strangler.compare.sampler import Sampler
from tests.support.databases import fresh_database

# About a second of the server's own CPU: a query that computes, returning one row.
BUSY_QUERY = "SELECT count(*) FROM generate_series(1, 4000000) AS n WHERE n % 7 = 3"


def test_sqlite_runs_inside_the_application_so_no_process_is_added(tmp_path: Path) -> None:
    databases = DatabaseProcesses([f"sqlite:///{tmp_path / 'app.sqlite3'}"])
    assert databases() == {}
    assert databases.describe() == "inside the application's processes (SQLite)"


def test_a_server_on_another_host_is_said_to_be_unmeasured() -> None:
    databases = DatabaseProcesses(["postgresql+psycopg://app@db.example.internal:5432/app"])
    assert databases() == {}
    assert databases.describe().startswith("not measured: the PostgreSQL server is not on")


def test_a_local_server_that_does_not_answer_is_said_to_be_unmeasured() -> None:
    databases = DatabaseProcesses(["postgresql+psycopg://app@127.0.0.1:1/app"])
    try:
        assert databases() == {}  # nothing listens on port 1: no backend, no crash
        assert databases.describe() == (
            "not measured: the PostgreSQL server could not be asked for its backends"
        )
    finally:
        databases.close()


def test_the_backends_of_the_system_s_databases_are_the_database_role_and_no_others(
    tmp_path: Path,
) -> None:
    with (
        fresh_database("postgres", tmp_path, "ours") as ours,
        fresh_database("postgres", tmp_path, "theirs") as theirs,
    ):
        databases = DatabaseProcesses([ours], refresh_seconds=0)
        mine, other = create_engine(ours), create_engine(theirs)
        try:
            with mine.connect() as connection, other.connect() as elsewhere:
                backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
                stranger = elsewhere.execute(text("SELECT pg_backend_pid()")).scalar_one()
                found = databases()
                assert found.get(backend) == "database"
                assert stranger not in found  # another database on the same server
                assert "as the role `database`" in databases.describe()
        finally:
            mine.dispose()
            other.dispose()
            databases.close()


def test_the_sampler_counts_what_the_server_spent_on_the_system_s_queries(
    tmp_path: Path,
) -> None:
    with fresh_database("postgres", tmp_path, "busy") as url:
        databases = DatabaseProcesses([url], refresh_seconds=0)
        engine = create_engine(url)
        sampler = Sampler(system=databases, generator=lambda: [], interval=0.1)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))  # the backend exists before the window
                sampler.start()
                started = time.time()
                connection.execute(text(BUSY_QUERY))
                ended = time.time()
                time.sleep(0.3)
            sampler.stop()
            spent = sampler.resources(started, ended).cpu_seconds_by_role.get("database", 0.0)
            assert spent > 0.3 * (ended - started), (spent, ended - started)
        finally:
            engine.dispose()
            databases.close()
