"""Schema upgrades serialise on a lock held in the database: ten started at once against one
fresh database (several replicas of a service starting together) all succeed, and each
revision is applied once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.conftest import BACKENDS
from tests.support.command_line import environment
from tests.support.databases import fresh_database


@pytest.mark.parametrize("backend", BACKENDS)
def test_ten_upgrades_at_once_all_succeed_and_apply_each_revision_once(
    tmp_path: Path, backend: str
) -> None:
    with fresh_database(backend, tmp_path, "users") as url:
        env = environment(tmp_path, {"USERS_DATABASE_URL": url})
        started = [
            subprocess.Popen(
                [sys.executable, "-m", "strangler", "db", "upgrade", "users"],
                cwd=tmp_path,
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(10)
        ]
        outputs = [process.communicate(timeout=300)[0] for process in started]
        assert [process.returncode for process in started] == [0] * 10, outputs
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                versions = connection.execute(
                    text("SELECT version_num FROM alembic_version_users")
                ).all()
                tables = set(inspect(connection).get_table_names())
        finally:
            engine.dispose()
    assert len(versions) == 1
    assert {"users", "outbox"} <= tables
