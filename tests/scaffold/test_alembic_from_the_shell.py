"""Specification: alembic works from the shell for every database of a workspace, as alembic
users expect, on the database the system itself uses.

The forum's root `alembic.ini` has a section per database (`alembic -n users upgrade head`);
`strangler new service` adds one for the service it scaffolds. Each migrates the database the
variable strangler.toml names holds (else the local system's SQLite file): `upgrade`,
`current`, `history`, `revision --autogenerate` after a model changed, `downgrade`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import inspect

from strangler.plumbing.database import make_engine
from tests.scaffold.conftest import PACKAGE, project_env
from tests.support.command_line import environment
from tests.support.databases import fresh_database

FORUM_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def _alembic(folder: Path, env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "alembic", *arguments], cwd=folder,
        env=environment(folder, env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, f"alembic {' '.join(arguments)}:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_each_forum_database_migrates_from_the_shell(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path, "users") as url:
        env = {"USERS_DATABASE_URL": url}
        ini = ("-c", str(FORUM_INI), "-n", "users")
        assert "Running upgrade  -> 0001" in _alembic(tmp_path, env, *ini, "upgrade", "head")
        assert {"users", "alembic_version_users"} <= _tables(url)
        assert "0001 (head)" in _alembic(tmp_path, env, *ini, "current")
        assert "<base> -> 0001 (head)" in _alembic(tmp_path, env, *ini, "history")
        _alembic(tmp_path, env, *ini, "downgrade", "base")
        assert "users" not in _tables(url)


def test_a_scaffolded_service_s_schema_changes_from_the_shell(
    scaffolded: Path, copy_of: Callable[[Path], Path], backend: str, tmp_path: Path
) -> None:
    folder = copy_of(scaffolded)
    with fresh_database(backend, tmp_path, "catalog") as url:
        env = {**project_env(folder), "CATALOG_DATABASE_URL": url}
        _alembic(folder, env, "-n", "catalog", "upgrade", "head")
        models = folder / PACKAGE / "catalog" / "models.py"
        column = "    in_print: Mapped[bool]"
        added = "    shelf_mark: Mapped[str | None] = mapped_column(String(20), nullable=True)\n"
        models.write_text(models.read_text().replace(column, added + column))
        made = _alembic(folder, env, "-n", "catalog", "revision", "--autogenerate",
                        "-m", "shelf marks", "--rev-id", "0002")  # fmt: skip
        assert "Detected added column 'books.shelf_mark'" in made
        _alembic(folder, env, "-n", "catalog", "upgrade", "head")
        assert "0002 (head)" in _alembic(folder, env, "-n", "catalog", "current")
        _alembic(folder, env, "-n", "catalog", "downgrade", "-1")
        assert "0001" in _alembic(folder, env, "-n", "catalog", "current")
        assert not (folder / ".strangler").exists()  # the variable's database, not a local file


def test_the_toolkit_migrates_the_database_it_names_when_env_py_reads_the_variable(
    initialised: Path, copy_of: Callable[[Path], Path]
) -> None:
    """The bookshelf's env.py prefers BOOKSHELF_DATABASE_URL to `sqlalchemy.url` (alembic's
    usual recipe): migrating another database (compare's fresh files) must still reach it."""
    folder = copy_of(initialised)
    env = project_env(folder)  # the shell names the user's own database
    fresh = f"sqlite:///{folder / 'elsewhere.sqlite3'}"
    code = (
        "from strangler.datapath import schemas; from strangler.workspace import find_workspace;"
        f"schemas.upgrade('monolith', {fresh!r}, workspace=find_workspace()); import os;"
        "print(os.environ['BOOKSHELF_DATABASE_URL'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, env=environment(folder, env),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == env["BOOKSHELF_DATABASE_URL"]  # given back as it was
    assert {"books", "tags", "book_tags", "members", "loans"} <= _tables(fresh)
    assert not (folder / "bookshelf.sqlite3").exists()  # the user's database was not touched
