"""Sample reads through the proxy, so shadow and canary gates have something to judge.

A workshop laptop has no real traffic: without reads, a shadow comparison never reaches its
minimum and a canary never sees a service-side request. A `Prober` learns a few ids that exist
(users, threads, polls) and a signed-in token through the public API, then sends GET requests
for a context's read routes, each from a new client id so the proxy's sticky canary spreads them
over both sides like real users (`/api/me` as one of a few signed-in seeded users). A canary
gate may also force some probes to the service side (with the admin token, as docs/proxy.md
allows), so a route gets service-side reads at 10% even on an idle machine. Probes only ever
read. This module must never judge answers.
"""

from __future__ import annotations

import random
import re
import uuid
from typing import Any

import httpx

from monolith.seed import SEED_PASSWORD

_PARAMETER = re.compile(r"\{([A-Za-z_]+?)(?:_id)?\}")
# What each path parameter names, and where to find existing ones.
SAMPLES = {"user": "/api/users?limit=25", "thread": "/api/threads?limit=25"}
SIGNED_IN = 8
WORDS = ("the", "python", "garden", "tomato", "travel", "music")


class Prober:
    """Reads through the public entry of a running system."""

    def __init__(self, base_url: str, admin_token: str, seed: int = 1) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=10.0)
        self.admin_token = admin_token
        self.chance = random.Random(seed)
        self.ids: dict[str, list[int]] = {}
        self.tokens: list[str] = []
        self._learn()

    def close(self) -> None:
        self.client.close()

    def _learn(self) -> None:
        for kind, path in SAMPLES.items():
            answer = self.client.get(path)
            items = answer.json().get("items", []) if answer.status_code == 200 else []
            self.ids[kind] = [item["id"] for item in items]
            if kind == "user":
                signed_in = (self._sign_in(item["username"]) for item in items[:SIGNED_IN])
                self.tokens = [token for token in signed_in if token]
        self.ids["poll"] = [
            poll
            for poll in range(1, 11)
            if self.client.get(f"/api/polls/{poll}").status_code == 200
        ]

    def _sign_in(self, username: str) -> str | None:
        answer = self.client.post(
            "/api/sessions", json={"username": username, "password": SEED_PASSWORD}
        )
        return str(answer.json()["token"]) if answer.status_code == 200 else None

    def path_for(self, route: dict[str, Any]) -> str | None:
        """A concrete path for a read route, or None if nothing known fills its parameters."""
        path = str(route["path"])
        for name in _PARAMETER.findall(path):
            known = self.ids.get(name)
            if not known:
                return None
            path = _PARAMETER.sub(str(self.chance.choice(known)), path, count=1)
        if path == "/api/search":
            path += f"?q={self.chance.choice(WORDS)}&limit=5"
        elif path in ("/api/users", "/api/threads"):
            path += "?limit=5"
        return path

    def read(self, routes: list[dict[str, Any]], per_route: int, forced: int = 0) -> int:
        """Send `per_route` reads to each route that can be filled, `forced` of them to the
        service side; how many were sent."""
        sent = 0
        for route in routes:
            for number in range(per_route):
                path = self.path_for(route)
                if path is None or (path == "/api/me" and not self.tokens):
                    break
                headers = {"X-Client-ID": f"probe-{uuid.UUID(int=self.chance.getrandbits(128))}"}
                if path == "/api/me":
                    headers["Authorization"] = f"Bearer {self.chance.choice(self.tokens)}"
                if number < forced:
                    headers["X-Strangler-Admin-Token"] = self.admin_token
                    headers["X-Strangler-Force"] = "service"
                try:
                    self.client.get(path, headers=headers)
                except httpx.HTTPError:
                    continue  # a failed read is the proxy's to count, not ours
                sent += 1
        return sent
