"""The append-only audit log: who changed the route table, what, when and why.

One JSON object per line in a file opened for appending only; entries are never rewritten.
Canary analysis decisions are recorded here too. The actor of an admin change is the name of
the token that made it (`admin_tokens`); what the caller said about itself is kept apart, as
`claimed_actor`. This module must never interpret entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Actor:
    """Who acted: `name` as authenticated (a token's name, or "proxy"), and what they claimed."""

    name: str
    claimed: str | None = None

    def __str__(self) -> str:
        return self.name


class AuditLog:
    """Appends entries to a JSON-lines file and reads them back, newest last."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(
        self, actor: str | Actor, action: str, reason: str, **details: Any
    ) -> dict[str, Any]:
        who = actor if isinstance(actor, Actor) else Actor(actor)
        claim = {} if who.claimed is None else {"claimed_actor": who.claimed}
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "actor": who.name,
            **claim,
            "action": action,
            "reason": reason,
            **details,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
        return entry

    def entries(self, limit: int = 200) -> list[dict[str, Any]]:
        """The last `limit` entries, oldest first; lines that are not JSON are skipped."""
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()[-limit:]
        found = []
        for line in lines:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found
