"""The folder a system runs from (`./.strangler/`): its databases, logs, secrets and records.

`strangler up` keeps everything of a system under `.strangler/` of the current folder, so two
folders never share state and deleting it is a full reset. A `Home` also carries the workspace
(the project whose system it runs). Environment variables override every default
(twelve-factor): each database's URL variable as the workspace names it; the generated token
secret and admin token are only a local convenience. This module must never start a process.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from strangler.runtime.plan import Places
from strangler.state import StateFile
from strangler.workspace import Workspace, find_workspace


@dataclass(frozen=True)
class Home:
    """Paths and settings of one local system, from a root folder, its workspace and the
    environment.

    `reads_environment=False` ignores the variables and keeps everything in the folder: the
    demo's own system, which must never touch databases someone configured for theirs.
    """

    root: Path
    workspace: Workspace = field(default_factory=find_workspace)
    reads_environment: bool = True

    @classmethod
    def here(cls) -> Home:
        """The system of the current folder, for the workspace found there."""
        return cls(Path.cwd() / ".strangler", find_workspace())

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run_file(self) -> Path:
        """What runs now (written by the supervisor): `strangler.runtime.run_record`."""
        return self.root / "run.json"

    @property
    def state_file(self) -> Path:
        """Where the migration stands, durably: `strangler.state`."""
        return self.root / "migration.json"

    def state(self) -> StateFile:
        return StateFile(self.state_file)

    @property
    def lock_file(self) -> Path:
        """Held by the one migration command that moves this system at a time."""
        return self.root / "migration.lock"

    def database_url(self, name: str) -> str:
        """The URL of database `name` from the variable the workspace names for it, else a
        SQLite file in this folder."""
        if configured := self._environment(self.workspace.url_variable(name)):
            return configured
        self.root.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.root / f'{name}.sqlite3'}"

    def places(self, data_plane: str = "python") -> Places:
        """Everything a process plan needs to know about this system."""
        return Places(
            data_plane=data_plane,
            workspace=self.workspace,
            database_urls={name: self.database_url(name) for name in self.workspace.databases},
            token_secret=self.token_secret(),
            admin_token=self.admin_token(),
            system_id=self.system_id(),
            state_dir=self.root,
        )

    def token_secret(self) -> str:
        """`STRANGLER_TOKEN_SECRET` if set, else a random key generated once and kept here."""
        return self._secret("STRANGLER_TOKEN_SECRET", "token-secret")

    def system_id(self) -> str:
        """This system's identity (random, kept here): its proxy says it, so a command never
        mistakes another folder's system on the same port for this one."""
        return self._secret("STRANGLER_SYSTEM_ID", "system-id")

    def admin_token(self) -> str:
        """`PROXY_ADMIN_TOKEN` if set, else a random token generated once and kept here."""
        return self._secret("PROXY_ADMIN_TOKEN", "admin-token")

    def _environment(self, variable: str) -> str | None:
        return os.environ.get(variable) if self.reads_environment else None

    def _secret(self, variable: str, filename: str) -> str:
        if configured := self._environment(variable):
            return configured
        path = self.root / filename
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()
