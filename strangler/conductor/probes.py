"""Sample reads through the proxy, so shadow and canary gates have something to judge.

A workshop laptop has no real traffic: without reads, a shadow comparison never reaches its
minimum and a canary never sees a service-side request. A `Prober` learns, through the public
API and as the workspace's `[probes]` hints say, values that exist for path parameters and a
few signed-in users' tokens, then sends GET requests for a context's read routes, each from a
new client id so the proxy's sticky canary spreads them over both sides like real users. A
route whose parameters nothing fills is skipped (real traffic judges it). A canary gate may
also force some probes to the service side (with the admin token, as docs/proxy.md allows), so
a route gets service-side reads at 10% even on an idle machine. Probes only ever read. This
module must never judge answers.
"""

from __future__ import annotations

import random
import re
import uuid
from typing import Any

import httpx

from strangler.workspace.model import ParameterSource, ProbesSpec

_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
WORDS = ("the", "python", "garden", "tomato", "travel", "music")


class Prober:
    """Reads through the public entry of a running system."""

    def __init__(
        self, base_url: str, admin_token: str, hints: ProbesSpec = ProbesSpec(), seed: int = 1
    ) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=10.0)
        self.admin_token = admin_token
        self.hints = hints
        self.chance = random.Random(seed)
        self.values: dict[str, list[Any]] = {}
        self.tokens: list[str] = []
        self._learn()

    def close(self) -> None:
        self.client.close()

    def _learn(self) -> None:
        for name, source in self.hints.parameters.items():
            self.values[name] = self._values(source)
        sign_in = self.hints.sign_in
        if sign_in is not None:
            users = self._items(sign_in.users)
            names = [item[sign_in.username_field] for item in users
                     if isinstance(item, dict) and sign_in.username_field in item]  # fmt: skip
            tokens = (self._sign_in(str(name)) for name in names)
            self.tokens = [token for token in tokens if token]

    def _values(self, source: ParameterSource) -> list[Any]:
        if source.url is None:
            return list(source.values)
        found = [item.get(source.field) for item in self._items(source.url)
                 if isinstance(item, dict)]  # fmt: skip
        return [value for value in found if value is not None] or list(source.values)

    def _items(self, url: str) -> list[Any]:
        try:
            answer = self.client.get(url)
        except httpx.HTTPError:
            return []
        if answer.status_code != 200:
            return []
        body = answer.json()
        items = body.get("items", []) if isinstance(body, dict) else body
        return items if isinstance(items, list) else []

    def _sign_in(self, username: str) -> str | None:
        sign_in = self.hints.sign_in
        assert sign_in is not None
        try:
            answer = self.client.post(
                sign_in.path, json={"username": username, "password": sign_in.password}
            )
        except httpx.HTTPError:
            return None
        if answer.status_code != 200:
            return None
        token = answer.json().get(sign_in.token_field)
        return str(token) if token else None

    def path_for(self, route: dict[str, Any]) -> str | None:
        """A concrete path for a read route, or None if nothing known fills its parameters."""
        path = str(route["path"])
        for name in _PARAMETER.findall(path):
            known = self.values.get(name)
            if not known:
                return None
            path = path.replace("{" + name + "}", str(self.chance.choice(known)), 1)
        query = self.hints.queries.get(str(route["path"]))
        if query:
            path += "?" + query.replace("{word}", self.chance.choice(WORDS))
        return path

    def needs_sign_in(self, route: dict[str, Any]) -> bool:
        return self.hints.sign_in is not None and route["name"] in self.hints.sign_in.routes

    def read(self, routes: list[dict[str, Any]], per_route: int, forced: int = 0) -> int:
        """Send `per_route` reads to each route that can be filled, `forced` of them to the
        service side; how many were sent."""
        sent = 0
        for route in routes:
            signed_in = self.needs_sign_in(route)
            for number in range(per_route):
                path = self.path_for(route)
                if path is None or (signed_in and not self.tokens):
                    break
                headers = {"X-Client-ID": f"probe-{uuid.UUID(int=self.chance.getrandbits(128))}"}
                if signed_in:
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
