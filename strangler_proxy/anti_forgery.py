"""The admin API's check against requests forged by a web page (cross-site request forgery).

A browser marks what it sends: `Sec-Fetch-Site` on every request (current browsers), `Origin`
on every cross-origin one and on same-origin writes. A request with neither comes from a
program (the command line, the conductor, curl), which authenticates with its bearer token and
passes. A browser's request is refused when it comes from another site or another origin; a
same-origin one must also carry an anti-forgery header that a `CsrfVerifier` accepts. Until
the console signs browsers in (a session cookie and an `X-CSRF-Token` bound to it, checked by
a verifier given here), no verifier accepts any, so every browser request is refused. This
module must never authenticate a caller: it only says whether a request may be forged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

CSRF_HEADER = "x-csrf-token"
_UNFORGEABLE_SITES = frozenset({"same-origin", "none"})  # "none": typed or bookmarked by the user


class CsrfVerifier(Protocol):
    """Decides whether a same-origin browser request carries a valid anti-forgery header."""

    def verify(self, headers: Mapping[str, str]) -> bool: ...


class NoBrowserSessions:
    """The verifier while browsers cannot sign in: no anti-forgery header is valid."""

    def verify(self, headers: Mapping[str, str]) -> bool:
        return False


@dataclass(frozen=True)
class AntiForgery:
    """Refuses browser requests that another site could have made the browser send."""

    verifier: CsrfVerifier = field(default_factory=NoBrowserSessions)

    def refusal(self, headers: Mapping[str, str], scheme: str) -> str | None:
        """Why this request may be forged (the detail of a 403), or None when it may not.

        `headers` are the request's, names in lower case; `scheme` the one it arrived on.
        """
        site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        if site is None and origin is None:
            return None  # not a browser: a program with its bearer token
        if site is not None and site.strip().lower() not in _UNFORGEABLE_SITES:
            return f"the admin API refuses {site.strip()[:32]!r} requests from a browser"
        own_origin = f"{scheme}://{headers.get('host', '')}".lower()
        if origin is not None and origin.strip().lower() != own_origin:
            return "the admin API refuses browser requests from another origin"
        if not self.verifier.verify(headers):
            return (
                "a browser request to the admin API needs a valid anti-forgery header"
                f" ({CSRF_HEADER})"
            )
        return None
