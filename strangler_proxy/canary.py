"""Sticky canary assignment: which side a caller lands on for a route at a given percentage.

A caller's identity is the verified `sub` of their bearer token, else a client id (cookie or
`X-Client-ID`), else their address. The identity hashes to a bucket 0..9999 that never changes;
the caller goes to the service when `bucket < percent * 100`. Raising the percentage therefore
only ever moves callers from the monolith to the service, never back. A request carrying the
admin token may force a side with `X-Strangler-Force: service|monolith`. This module must never
perform I/O nor trust an unverified token.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

import jwt

from strangler.plumbing.tokens import ALGORITHM, ISSUER

BUCKETS = 10_000
FORCE_HEADER = "x-strangler-force"
ADMIN_TOKEN_HEADER = "x-strangler-admin-token"
CLIENT_ID_HEADER = "x-client-id"


def bucket_of(identity: str) -> int:
    """A stable bucket 0..9999 for an identity string."""
    digest = hashlib.blake2b(identity.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def lands_on_service(identity: str, percent: float) -> bool:
    """Whether this identity is inside the canary at `percent` (0..100)."""
    return bucket_of(identity) < round(percent * (BUCKETS // 100))


@dataclass(frozen=True)
class CanaryAssigner:
    """Finds a request's identity and applies forced sides; built once per process."""

    token_secret: str | None
    admin_token: str | None
    client_id_cookie: str

    def subject(self, authorization: str | None) -> str | None:
        """The verified subject of a bearer token, or None when absent or not valid."""
        if not authorization or self.token_secret is None:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = jwt.decode(
                token.strip(),
                self.token_secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["sub", "exp"]},
            )
        except jwt.InvalidTokenError:
            return None
        subject = claims.get("sub")
        return str(subject) if subject is not None else None

    def identity(self, headers: dict[str, str], client_address: str | None) -> str:
        subject = self.subject(headers.get("authorization"))
        if subject is not None:
            return f"user:{subject}"
        client_id = headers.get(CLIENT_ID_HEADER) or self._cookie(headers.get("cookie"))
        if client_id:
            return f"client:{client_id[:128]}"
        return f"address:{client_address or 'unknown'}"

    def _cookie(self, header: str | None) -> str | None:
        if not header:
            return None
        try:
            cookie = SimpleCookie(header)
        except CookieError:
            return None
        morsel = cookie.get(self.client_id_cookie)
        return morsel.value if morsel is not None else None

    def forced_side(self, headers: dict[str, str]) -> bool | None:
        """True (service) or False (monolith) when an admin forces a side, else None."""
        forced = headers.get(FORCE_HEADER)
        if forced is None or self.admin_token is None:
            return None
        presented = headers.get(ADMIN_TOKEN_HEADER, "")
        if not hmac.compare_digest(presented.encode(), self.admin_token.encode()):
            return None
        side = forced.strip().lower()
        if side == "service":
            return True
        if side == "monolith":
            return False
        return None

    def goes_to_service(
        self, percent: float, headers: dict[str, str], client_address: str | None
    ) -> bool:
        forced = self.forced_side(headers)
        if forced is not None:
            return forced
        if percent <= 0:
            return False
        if percent >= 100:
            return True
        return lands_on_service(self.identity(headers, client_address), percent)
