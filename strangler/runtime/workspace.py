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

from strangler.conductor.stages import STAGES
from strangler.runtime.plan import CONTEXTS, Places

# Every database a system has: the monolith's, each service's, and the embedded event bus.
DATABASES = ("monolith", *CONTEXTS, "bus")


def stage_table(stage: int) -> Path:
    """The route table file of a stage (`stages/stage<N>.toml`); a clear error if there is none."""
    path = STAGES / f"stage{stage}.toml"
    if not path.exists():
        have = sorted(p.stem.removeprefix("stage") for p in STAGES.glob("stage*.toml"))
        raise FileNotFoundError(
            f"there is no stage {stage} yet; stages available: {', '.join(have)}"
        )
    return path


@dataclass(frozen=True)
class Workspace:
    """Paths and settings of one local system, derived from a root folder and the environment.

    `reads_environment=False` ignores the variables and keeps everything in the folder: the
    demo's own system, which must never touch databases someone configured for theirs.
    """

    root: Path
    reads_environment: bool = True

    @classmethod
    def here(cls) -> Workspace:
        return cls(Path.cwd() / ".strangler")

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run_file(self) -> Path:
        """What runs now (written by the supervisor): `strangler.runtime.runstate`."""
        return self.root / "run.json"

    @property
    def state_file(self) -> Path:
        """Where the migration stands: `strangler.conductor.state`."""
        return self.root / "migration.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "migration.lock"

    @property
    def route_table(self) -> Path:
        """The table the proxy serves: a copy of the current stage's, rewritten at each stage."""
        return self.root / "route-table.toml"

    def write_route_table(self, text: str) -> None:
        """Replace the proxy's table file at once (the proxy may be reading it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.route_table.with_suffix(".toml.tmp")
        partial.write_text(text)
        partial.replace(self.route_table)

    def database_url(self, name: str) -> str:
        """`<NAME>_DATABASE_URL` if set (`STRANGLER_BUS_URL` for the bus), else a SQLite file in
        the workspace."""
        variable = "STRANGLER_BUS_URL" if name == "bus" else f"{name.upper()}_DATABASE_URL"
        if configured := self._environment(variable):
            return configured
        self.root.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.root / f'{name}.sqlite3'}"

    def places(self) -> Places:
        """Everything a process plan needs to know about this workspace."""
        return Places(
            database_urls={name: self.database_url(name) for name in DATABASES},
            token_secret=self.token_secret(),
            admin_token=self.admin_token(),
            route_table=self.route_table,
            state_dir=self.root,
        )

    def token_secret(self) -> str:
        """`STRANGLER_TOKEN_SECRET` if set, else a random key generated once and kept here."""
        return self._secret("STRANGLER_TOKEN_SECRET", "token-secret")

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
