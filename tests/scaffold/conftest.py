"""Fixtures of the scaffold suite: a user's project (the bookshelf) in a folder, as `strangler
init` and `strangler new service` leave it, made by the real commands.

Scaffolding runs in its own processes (as users run it): the project's modules are then never
imported into the test process under a stale path. The bookshelf's catalog service goes into
the package `shelf` (not the default `extracted`, which this repository's own services use).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.command_line import strangler

BYOM = Path(__file__).resolve().parents[1] / "byom"
PACKAGE = "shelf"


def bookshelf_copy(folder: Path) -> Path:
    """The bookshelf project, its code only, in `folder`."""
    shutil.copytree(BYOM / "project", folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def project_env(folder: Path) -> dict[str, str]:
    """What the user's shell holds: the app's database variable, the project importable."""
    return {
        "BOOKSHELF_DATABASE_URL": f"sqlite:///{folder / 'bookshelf.sqlite3'}",
        "PYTHONPATH": str(folder),
    }


def run_ok(folder: Path, *arguments: str) -> str:
    done = strangler(folder, *arguments, env=project_env(folder))
    assert done.returncode == 0, f"strangler {' '.join(arguments)}:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bookshelf after `strangler init` (read-only for tests: copy it to change it)."""
    folder = bookshelf_copy(tmp_path_factory.mktemp("init") / "bookshelf")
    run_ok(folder, "init", "--app", "bookshelf:app")
    return folder


@pytest.fixture(scope="session")
def scaffolded(initialised: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bookshelf after `strangler init` and `strangler new service catalog` (read-only)."""
    folder = tmp_path_factory.mktemp("scaffold") / "bookshelf"
    shutil.copytree(initialised, folder)
    run_ok(folder, "new", "service", "catalog", "--package", PACKAGE)
    return folder


@pytest.fixture
def copy_of(tmp_path: Path) -> Callable[[Path], Path]:
    """A private copy of a session's project folder, to change."""

    def copy(folder: Path) -> Path:
        target = tmp_path / folder.name
        shutil.copytree(folder, target, ignore=shutil.ignore_patterns("__pycache__"))
        return target

    return copy
