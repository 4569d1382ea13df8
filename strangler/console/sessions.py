"""Signing in to the console: the admin token for a session, and the session's anti-forgery token.

A person signs in by presenting the admin token; it is compared with the configured one as
digests, in constant time (`strangler_proxy.admin_tokens`). A signed-in browser holds only a
random session id, in a cookie that is HttpOnly (no script reads it), SameSite=Strict (no other
site's page sends it) and Secure behind TLS; the page holds the session's anti-forgery token
and sends it as `X-CSRF-Token` with every action, which `SessionCsrf` checks (the verifier the
proxy's `AntiForgery` takes). Sessions live in this process's memory, expire, and are at most
`max_sessions`, the oldest dropped first. This module must never log or return a token.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from strangler_proxy.admin_tokens import AdminTokens
from strangler_proxy.anti_forgery import CSRF_HEADER

COOKIE = "strangler_console"


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str
    actor: str  # the admin token's name
    expires_at: float


class Sessions:
    """The signed-in browsers of one console process."""

    def __init__(
        self,
        tokens: AdminTokens,
        lifetime: float,
        limit: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens = tokens
        self._lifetime = lifetime
        self._limit = limit
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def sign_in(self, presented: str) -> Session | None:
        """A new session for the holder of an admin token; None for any other string."""
        actor = self._tokens.name_of(presented)
        if actor is None:
            return None
        session = Session(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), actor,
            self._clock() + self._lifetime,
        )  # fmt: skip
        self._sessions[session.id] = session
        while len(self._sessions) > self._limit:
            self._sessions.popitem(last=False)
        return session

    def sign_out(self, session_id: str | None) -> None:
        if session_id is not None:
            self._sessions.pop(session_id, None)

    def find(self, session_id: str | None) -> Session | None:
        """The live session of this id, or None (an expired one is forgotten)."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if self._clock() >= session.expires_at:
            del self._sessions[session_id]
            return None
        return session

    def of_headers(self, headers: Mapping[str, str]) -> Session | None:
        """The session whose id the request's cookie carries."""
        return self.find(session_id_in(headers.get("cookie")))


def session_id_in(cookie_header: str | None) -> str | None:
    if not cookie_header:
        return None
    try:
        jar = SimpleCookie(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


class SessionCsrf:
    """Accepts a browser request whose `X-CSRF-Token` is its session's (`CsrfVerifier`)."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def verify(self, headers: Mapping[str, str]) -> bool:
        session = self._sessions.of_headers(headers)
        presented = headers.get(CSRF_HEADER, "")
        if session is None or not presented:
            return False
        return hmac.compare_digest(presented.encode(), session.csrf.encode())


def cookie_header(session: Session | None, secure: bool, max_age: int) -> str:
    """The `Set-Cookie` value that holds `session` (or, for None, removes the cookie)."""
    value, age = (session.id, max_age) if session is not None else ("", 0)
    attributes = [f"{COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Strict", f"Max-Age={age}"]
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)
