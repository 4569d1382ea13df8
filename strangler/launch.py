"""How each process of the system is started: its command line and its environment.

One place, used by `strangler up` and by the test fixtures, so tests run exactly what users run.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def monolith_command(port: int, workers: int = 2, host: str = "127.0.0.1") -> list[str]:
    """The monolith under gunicorn with sync workers, the way it is deployed."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        "monolith:create_app()",
    ]


def metrics_directory(path: Path) -> dict[str, str]:
    """A fresh Prometheus multiprocess directory for a multi-worker server; its env variable."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(path)}


def monolith_environment(database_url: str, token_secret: str, state_dir: Path) -> dict[str, str]:
    return {
        "MONOLITH_DATABASE_URL": database_url,
        "STRANGLER_TOKEN_SECRET": token_secret,
        **metrics_directory(state_dir / "metrics" / "monolith"),
    }
