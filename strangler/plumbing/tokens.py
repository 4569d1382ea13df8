"""Signed, expiring bearer tokens (JWT, HS256) that every implementation issues and accepts.

The monolith and each service share the signing key through the environment, so a session
survives a cutover: a token issued by one side is accepted by all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from strangler.plumbing.errors import Unauthorized

ALGORITHM = "HS256"
ISSUER = "strangler"


@dataclass(frozen=True)
class TokenSigner:
    """Issues and verifies bearer tokens with one secret key."""

    secret: str
    ttl: timedelta = timedelta(hours=24)

    def issue(self, user_id: int, now: datetime | None = None) -> str:
        issued = now or datetime.now(UTC)
        claims = {"sub": str(user_id), "iat": issued, "exp": issued + self.ttl, "iss": ISSUER}
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> int:
        """Return the user id of a valid token; raise Unauthorized for anything else."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["sub", "exp", "iat", "iss"]},
            )
            user_id = int(claims["sub"])
        except jwt.ExpiredSignatureError as error:
            raise Unauthorized("the token has expired") from error
        except (jwt.InvalidTokenError, ValueError, TypeError) as error:
            raise Unauthorized("the token is not valid") from error
        if user_id < 1:
            raise Unauthorized("the token is not valid")
        return user_id


def bearer_token(authorization: str | None) -> str:
    """Extract the token of an `Authorization: Bearer ...` header, or raise Unauthorized."""
    if not authorization:
        raise Unauthorized("an Authorization: Bearer token is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an Authorization: Bearer token is required")
    return token.strip()
