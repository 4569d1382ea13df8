"""Bring your own monolith, end to end: the bookshelf (tests/byom/project), a Flask app the
toolkit has never seen, migrated in a fresh folder as its user would, command by command.

The project comes with its data (migrated by its own `migrations/`, seeded). `strangler init`
writes the workspace file from the app; `strangler check --config` accepts it; `strangler new
service catalog` scaffolds the service, whose handlers the test then writes (the user's own
work); `strangler up` runs the system. Under a steady load of writes and reads through the
proxy, `strangler extract catalog` moves the catalog (text keys, an association table with a
composite key, a tree of tags referencing itself) to its service, `strangler check` passes,
the scaffolded parity test passes against both sides, `strangler rollback catalog` gives the
catalog back and `strangler check` passes again. Every write the load saw acknowledged reads
back at the end, no request failed, and `strangler down` leaves nothing running. Then the user
adds a `[load]` section naming their locustfile (tasks only: tests/byom/compare) and scenario,
and `strangler compare --profile short` measures the monolith direct, stage 0 and stage 1 on
fresh files. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from strangler.runtime.processes import free_port
from tests.byom.load import BookshelfLoad, verify
from tests.support.command_line import environment, strangler, strangler_up
from tests.support.databases import fresh_database

pytestmark = pytest.mark.slow
BYOM = Path(__file__).resolve().parents[1] / "byom"
PASSWORD = "a librarian's secret"
QUICK_GATES = {
    "STRANGLER_GATE_SHADOW_MIN_COMPARED": "20",
    "STRANGLER_GATE_CANARY_STEPS": "[50, 100]",
    "STRANGLER_GATE_CANARY_MIN_REQUESTS": "3",
    "STRANGLER_GATE_MAX_P95_RATIO": "1000",  # tests never judge wall-clock speed
    "SYNC_POLL_SECONDS": "0.1",
}


def _run(folder: Path, env: dict[str, str], *argv: str) -> str:
    """A command of the user's own (python -m ...), in the project, that must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", *argv], cwd=folder, env=environment(folder, env),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _ok(folder: Path, env: dict[str, str], *arguments: str) -> str:
    done = strangler(folder, *arguments, env=env)
    assert done.returncode == 0, f"strangler {' '.join(arguments)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def _project(folder: Path, env: dict[str, str]) -> None:
    """The user's project as it is before the migration: code, schema, data."""
    shutil.copytree(BYOM / "project", folder, ignore=shutil.ignore_patterns("__pycache__"))
    _run(folder, env, "alembic", "upgrade", "head")
    _run(folder, env, "bookshelf.seed")


def _write_the_handlers(folder: Path) -> None:
    """What the user writes into the scaffold: the catalog's handlers and its pages."""
    service = folder / "extracted" / "catalog"
    assert "NotImplementedYet" in (service / "api.py").read_text()
    shutil.copy(BYOM / "catalog_service" / "api.py", service / "api.py")
    shutil.copytree(folder / "bookshelf" / "templates", service / "templates")


LOAD_SECTION = """
[load]
locustfile = "load/locustfile.py"
scenario = "load/scenario.toml"
"""


def _compare(folder: Path, env: dict[str, str]) -> None:
    """The user's load comparison: their locustfile and scenario, `strangler compare`."""
    shutil.copytree(BYOM / "compare", folder / "load", ignore=shutil.ignore_patterns("__pycache__"))
    with (folder / "strangler.toml").open("a", encoding="utf-8") as workspace:
        workspace.write(LOAD_SECTION)
    output = folder / "compare-report"
    done = strangler(folder, "compare", "--profile", "short", "--output", str(output), env=env)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "Traceback" not in said, said
    report = json.loads((output / "report.json").read_text())
    html = (output / "report.html").read_text()
    titles = {found["key"]: found["title"] for found in report["architectures"]}
    assert list(titles) == ["direct", "stage-0", "stage-1"], titles
    for found in report["architectures"]:
        assert not found["problems"], found["problems"]
        assert found["windows"], found["key"]
        kinds = {kind for window in found["windows"] for kind in window["users_by_kind"]}
        assert kinds == {"browser", "librarian", "hot"}, kinds
        assert titles[found["key"]] in html
    for title in titles.values():  # the details name each one's limit
        limit = re.search(rf"{re.escape(title)} (limit not reached at )?[\d,]+ req/s", html)
        assert limit, f"{title}: no limit in the report"
    verdict = (output / "summary.md").read_text().split("### Verdict")[1].split("|")[0]
    assert "book-list readers with no think time on GET /api/books" in verdict, verdict
    assert "search" not in verdict.lower(), verdict  # nothing of the forum's workload
    assert "stage 1" in verdict and "monolith direct" in verdict, verdict
    for log in (output / "logs").glob("locust-*.log"):
        assert "Traceback" not in log.read_text(), log


def test_the_bookshelf_is_migrated_with_the_toolkit_s_commands_under_load(
    backend: str, tmp_path: Path
) -> None:
    folder = tmp_path / "bookshelf"
    with (
        fresh_database(backend, tmp_path, "bookshelf") as monolith,
        fresh_database(backend, tmp_path, "catalog") as catalog,
    ):
        env = {
            "BOOKSHELF_DATABASE_URL": monolith,
            "CATALOG_DATABASE_URL": catalog,
            "BOOKSHELF_LIBRARIAN_PASSWORD": PASSWORD,
            "PYTHONPATH": str(folder),
            **QUICK_GATES,
        }
        _project(folder, env)
        _ok(folder, env, "init", "--app", "bookshelf:app")
        written = tomllib.loads((folder / "strangler.toml").read_text())
        assert [table["monolith"] for table in written["contexts"]["catalog"]["tables"]] == [
            "books", "tags", "book_tags",
        ]  # fmt: skip
        assert written["monolith"]["database"]["url_variable"] == "BOOKSHELF_DATABASE_URL"
        assert written["monolith"]["health_path"] == "/health"
        assert "valid" in _ok(folder, env, "check", "--config")
        _ok(folder, env, "new", "service", "catalog")
        _write_the_handlers(folder)
        assert "every import path and table checked" in _ok(folder, env, "check", "--config")
        with strangler_up(folder, free_port(), env=env) as up:
            load = BookshelfLoad(up.url, PASSWORD).start()
            try:
                load.wait_for(20)
                extracted = _ok(folder, env, "extract", "catalog")
                assert "reached stage 1" in extracted, extracted
                load.wait_for(20)
                _ok(folder, env, "check")
                load.pause()
                _run(folder, env, "pytest", "-q", "-p", "no:cacheprovider",
                     "extracted/catalog/test_parity.py")  # fmt: skip
                load.resume()
                load.wait_for(20)
                rolled_back = _ok(folder, env, "rollback", "catalog")
                assert "reached stage 0" in rolled_back, rolled_back
                load.wait_for(20)
                _ok(folder, env, "check")
            finally:
                load.stop()
            missing = verify(load)
            _ok(folder, env, "down")
            assert up.process.wait(timeout=60) == 0
        _compare(folder, env)
    failed = [answer for answer in load.answers if answer.status >= 400 or answer.status == 0]
    print(  # the figures, with `pytest -s`
        f"\n{backend}: {len(load.answers)} requests, {len(failed)} failed,"
        f" {load.ledger.acknowledged - len(missing)} of {load.ledger.acknowledged}"
        " acknowledged writes read back"
    )
    assert not failed, failed[:5]
    assert not missing, missing[:10]
    assert load.ledger.books and load.ledger.tagged and load.ledger.loans
