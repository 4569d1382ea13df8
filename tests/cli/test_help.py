"""`strangler --help` lists every command without importing any: no command module, no
database driver, no web framework is loaded to print it."""

from __future__ import annotations

import subprocess
import sys

from strangler.cli.app import COMMANDS


def test_help_lists_every_command_and_imports_none_of_them() -> None:
    shown = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "strangler", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0
    for name in COMMANDS:
        assert f"  {name} " in shown.stdout
    imported = {line.split("|")[-1].strip() for line in shown.stderr.splitlines()}
    heavy = {"sqlalchemy", "alembic", "fastapi", "flask", "strangler.conductor",
             "strangler.runtime", "strangler.compare", "strangler_proxy"}  # fmt: skip
    assert not heavy & imported, sorted(heavy & imported)
