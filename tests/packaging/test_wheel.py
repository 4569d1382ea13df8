"""The toolkit installs as a wheel of its own two packages, and never shadows a user's: a
project with its own `migrations`, `tests` and `app` packages keeps importing them beside it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
         "--wheel-dir", str(folder), str(REPOSITORY)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    [found] = folder.glob("strangler_toolkit-*.whl")
    return found


def test_the_wheel_holds_the_toolkit_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist() if "/" in name}
    packages = {top for top in tops if not top.endswith((".dist-info", ".data"))}
    assert packages == {"strangler", "strangler_proxy"}


def test_a_project_s_own_migrations_and_tests_packages_stay_importable(
    wheel: Path, tmp_path: Path
) -> None:
    environment = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(environment)], check=True, timeout=120)
    python = environment / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    project = tmp_path / "project"
    for package in ("migrations", "tests", "app"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text(f"OWNER = 'the project: {package}'\n")
    found = subprocess.run(
        [str(python), "-c",
         "import migrations, tests, app, strangler.workspace.model as m; "
         "print(migrations.OWNER, tests.OWNER, app.OWNER, m.__file__, sep='|')"],
        cwd=project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if "No module named 'pydantic'" in found.stderr:  # the toolkit's deps are not installed
        found = subprocess.run(
            [str(python), "-c", "import migrations, tests, app, importlib.util as u; "
             "print(migrations.OWNER, tests.OWNER, app.OWNER, u.find_spec('strangler').origin,"
             " sep='|')"],
            cwd=project, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    owners = found.stdout.strip().split("|")
    assert owners[:3] == [f"the project: {name}" for name in ("migrations", "tests", "app")]
    assert "site-packages" in owners[3], found.stdout + found.stderr
