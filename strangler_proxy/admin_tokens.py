"""Named admin tokens: who is calling the admin API, decided by the token alone.

Each token has a name, and that name is the actor the audit log records; what a caller writes
about itself (`X-Admin-Actor`, `actor` in a body) is only ever kept as a claim beside it. Tokens
come from `PROXY_ADMIN_TOKEN` (named "admin"), `PROXY_ADMIN_TOKENS` (JSON {name: token}) and
`PROXY_ADMIN_TOKENS_FILE` (a file of the same JSON). A presented token is compared with every
configured one, as digests of equal length, without stopping at a match, so the time taken
says nothing about which token or how much of it was right. This module must never log or
return a token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

DEFAULT_NAME = "admin"
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
# A token is matched as a whole header value: no whitespace, no control characters.
_TOKEN = re.compile(r"[\x21-\x7e]{1,512}")


class AdminTokensError(ValueError):
    """The configured admin tokens cannot be used; the message says which setting is wrong."""


class AdminTokens:
    """The configured tokens, held as digests, and the name each one stands for."""

    def __init__(self, named: Mapping[str, str]) -> None:
        digests: list[tuple[str, bytes]] = []
        seen: dict[bytes, str] = {}
        for name, token in named.items():
            if not _NAME.fullmatch(name):
                raise AdminTokensError(
                    f"admin token name {name[:64]!r} is not 1 to 64 of [A-Za-z0-9_.@-]"
                )
            if not _TOKEN.fullmatch(token):
                raise AdminTokensError(
                    f"the admin token named {name!r} is empty, too long or has spaces or"
                    " control characters"
                )
            digest = _digest(token)
            if digest in seen:
                raise AdminTokensError(
                    f"the admin tokens named {seen[digest]!r} and {name!r} are the same token;"
                    " each name needs its own, or the audit log cannot tell who acted"
                )
            seen[digest] = name
            digests.append((name, digest))
        self._digests = tuple(digests)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._digests]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def name_of(self, presented: str) -> str | None:
        """The name of the token presented, or None; the same work whatever matches."""
        digest = _digest(presented)
        found = None
        for name, expected in self._digests:
            if hmac.compare_digest(digest, expected):
                found = name
        return found

    def name_in(self, authorization: str | None) -> str | None:
        """The name of the bearer token in an `Authorization` header, or None."""
        if not authorization:
            return None
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.name_of(presented.strip())


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", errors="surrogateescape")).digest()


def load_admin_tokens(
    single: SecretStr | None, named: Mapping[str, SecretStr], file: Path | None
) -> AdminTokens:
    """The tokens of one process from its three settings; a name given twice must agree."""
    merged: dict[str, str] = {}

    def add(name: str, token: str, origin: str) -> None:
        if name in merged and merged[name] != token:
            raise AdminTokensError(f"{origin} names {name!r} again with a different token")
        merged[name] = token

    if single is not None and single.get_secret_value():
        add(DEFAULT_NAME, single.get_secret_value(), "PROXY_ADMIN_TOKEN")
    for name, secret in named.items():
        add(name, secret.get_secret_value(), "PROXY_ADMIN_TOKENS")
    if file is not None:
        for name, token in _read_token_file(file).items():
            add(name, token, f"PROXY_ADMIN_TOKENS_FILE ({file})")
    return AdminTokens(merged)


def _read_token_file(path: Path) -> dict[str, str]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AdminTokensError(f"PROXY_ADMIN_TOKENS_FILE {path} cannot be read: {error}") from None
    except ValueError:
        raise AdminTokensError(
            f'PROXY_ADMIN_TOKENS_FILE {path} is not JSON (expected {{"name": "token", ...}})'
        ) from None
    is_valid = isinstance(document, dict) and all(
        isinstance(name, str) and isinstance(token, str) for name, token in document.items()
    )
    if not is_valid:
        raise AdminTokensError(
            f'PROXY_ADMIN_TOKENS_FILE {path} must hold one JSON object {{"name": "token", ...}}'
        )
    return dict(document)
