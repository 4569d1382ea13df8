"""The front door's checks on a request head, made before anything else reads it.

The proxy answers the public port at every stage, so it, not whoever stands behind it, must
refuse a request too large to forward, with the contract's problem+json and a request id. The
defaults keep everything the proxy forwards within what the monolith's server accepts
(gunicorn: a request line of 4,094 bytes, 100 header fields of 8,190 bytes each), with room
for the method, the protocol version and the five headers the proxy adds:

- request target (path and query, as received and as forwarded): 4,000 bytes -> **414**;
- one header field (name, `: ` and value): 8,000 bytes -> **431**;
- header fields: 90 -> **431**.

In the same pass over the fields: an HTTP/1.1 request must have exactly one `Host`, and no
request more than one, with a value that can only name a host (RFC 9112 3.2, as nginx) ->
**400**; a request to switch protocols (`Upgrade`, websocket or any other) -> **403**, as
Envoy answers an upgrade it is not configured for. Both close the connection after the answer.

This module must never perform I/O nor look at anything of the head but the lengths of its
parts, its `Host` and whether it asks to upgrade.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

# A host and an optional port (RFC 3986 reg-name, IPv4, IP literal): nothing a path, user
# info or a second value could hide in.
_HOST = re.compile(
    rb"(?:[A-Za-z0-9._~!$&'()*+,;=%-]{1,255}|\[[0-9A-Fa-f:.]{2,60}\])(?::[0-9]{1,5})?"
)


_GOOD_HOSTS_KEPT = 256


@dataclass(frozen=True)
class Refusal:
    """Why a request head is refused: the status, a sentence for the client, and whether the
    connection closes after the answer (its framing or its purpose cannot be trusted)."""

    status: int
    detail: str
    closes: bool = False


UPGRADE_REFUSED = Refusal(
    403,
    "the proxy does not switch protocols (websocket or any other Upgrade); send the request"
    " without Upgrade",
    closes=True,
)


@dataclass(frozen=True)
class HeadLimits:
    """The largest request target, header field and number of header fields let through."""

    max_target_bytes: int = 4000
    max_header_bytes: int = 8000
    max_headers: int = 90
    # Host values already found valid, so the common ones skip the pattern (bounded: a client
    # sending a new name with every request cannot grow it past `_GOOD_HOSTS_KEPT`).
    _good_hosts: set[bytes] = field(default_factory=set, compare=False, repr=False)

    def target_refusal(self, length: int) -> Refusal | None:
        if length <= self.max_target_bytes:
            return None
        return Refusal(
            414, f"the request target is {length} bytes; at most {self.max_target_bytes} are served"
        )

    def refusal(
        self,
        raw_path: bytes,
        query: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        http_version: str = "1.1",
    ) -> Refusal | None:
        """The reason to refuse this head, or None when it passes every check.

        Header names are in lower case, as ASGI servers give them.
        """
        target = len(raw_path) + (len(query) + 1 if query else 0)
        if target > self.max_target_bytes:
            return self.target_refusal(target)
        if len(headers) > self.max_headers:
            return Refusal(
                431, f"the request has {len(headers)} header fields; at most {self.max_headers}"
            )
        longest = self.max_header_bytes - 2  # the `: ` between name and value counts
        hosts = 0
        host = b""
        upgrade = False
        for name, value in headers:
            if len(name) + len(value) > longest:
                return Refusal(
                    431,
                    f"the header field {name.decode('latin-1')[:64]!r} is longer than"
                    f" {self.max_header_bytes} bytes",
                )
            if name == b"host":
                hosts += 1
                host = value
            elif name == b"upgrade":
                upgrade = True
        if hosts == 1 and host in self._good_hosts:
            return UPGRADE_REFUSED if upgrade else None
        refusal = host_refusal(hosts, host, http_version)
        if refusal is None and hosts == 1 and len(self._good_hosts) < _GOOD_HOSTS_KEPT:
            self._good_hosts.add(host)  # a handful of names serve nearly every request
        return refusal or (UPGRADE_REFUSED if upgrade else None)


def host_refusal(hosts: int, host: bytes, http_version: str) -> Refusal | None:
    """Why a request with `hosts` Host fields (the last one `host`) is refused, or None."""
    if hosts > 1:
        return Refusal(400, f"the request has {hosts} Host header fields; one is allowed",
                       closes=True)  # fmt: skip
    if not hosts:
        if http_version == "1.0":
            return None
        return Refusal(400, "an HTTP/1.1 request needs a Host header field", closes=True)
    if _HOST.fullmatch(host) is None:
        return Refusal(400, "the Host header field does not name a host", closes=True)
    return None
