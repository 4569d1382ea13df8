"""The users service as the forum's `AuthorDirectory`: one `GET /api/users/{id}` per lookup.

Used only on a write whose author the replica does not know yet (see `service`), never on a
read. It answers a name, or None for a user the users service does not have; anything else
(refused connection, timeout, 5xx, a body it cannot read) is `ServiceUnavailable`, so the write
fails whole rather than guessing. It must never write to the database: the domain does that.
"""

from __future__ import annotations

import httpx

from strangler.plumbing.errors import ServiceUnavailable
from strangler.plumbing.logs import get_logger
from strangler.plumbing.request_id import HEADER, current_request_id

log = get_logger("directory")

# A lookup sits on a client's write: fail fast rather than hold the request (and a connection).
LOOKUP_TIMEOUT = httpx.Timeout(2.0, connect=0.5)


class UsersServiceDirectory:
    """Looks users up on the users service at `users_url`, over one pooled client."""

    def __init__(self, users_url: str, timeout: httpx.Timeout = LOOKUP_TIMEOUT) -> None:
        self.users_url = users_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def display_name(self, user_id: int) -> str | None:
        """The user's current display name, or None if the users service has no such user."""
        url = f"{self.users_url}/api/users/{user_id}"
        request_id = current_request_id.get()
        # Outside a request the variable holds its "-" default: let the users service mint one.
        headers = {HEADER: request_id} if request_id != "-" else {}
        try:
            response = self._client.get(url, headers=headers)
        except httpx.HTTPError as error:
            log.warning("users lookup failed", user_id=user_id, error=type(error).__name__)
            raise self._unavailable() from error
        if response.status_code == 404:
            return None
        name = _display_name(response)
        if name is None:
            log.warning("users lookup failed", user_id=user_id, status=response.status_code)
            raise self._unavailable()
        return name

    def close(self) -> None:
        self._client.close()

    @staticmethod
    def _unavailable() -> ServiceUnavailable:
        return ServiceUnavailable(
            "the users service did not answer, so the author of this write cannot be "
            "confirmed; nothing was written, try again shortly"
        )


def _display_name(response: httpx.Response) -> str | None:
    """The `display_name` of a 200 User document; None for any other answer."""
    if response.status_code != 200:
        return None
    try:
        document = response.json()
    except ValueError:
        return None
    name = document.get("display_name") if isinstance(document, dict) else None
    return name if isinstance(name, str) and name else None
