"""The folder a system runs from: where its databases, logs and generated secret live.

`strangler up` keeps everything under `./.strangler/` of the current folder, so two checkouts
never share state, and deleting that folder is a full reset. Environment variables override
every default (twelve-factor); the generated token secret is only a local convenience.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    """Paths and settings of one local system, derived from a root folder and the environment."""

    root: Path

    @classmethod
    def here(cls) -> Workspace:
        return cls(Path.cwd() / ".strangler")

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def database_url(self, name: str) -> str:
        """`<NAME>_DATABASE_URL` if set, else a SQLite file in the workspace."""
        if configured := os.environ.get(f"{name.upper()}_DATABASE_URL"):
            return configured
        self.root.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.root / f'{name}.sqlite3'}"

    def token_secret(self) -> str:
        """`STRANGLER_TOKEN_SECRET` if set, else a random key generated once and kept here."""
        if configured := os.environ.get("STRANGLER_TOKEN_SECRET"):
            return configured
        path = self.root / "token-secret"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()
