"""The front door's size limits on a request head, checked before anything else reads it.

The proxy answers the public port at every stage, so it, not whoever stands behind it, must
refuse a request too large to forward, with the contract's problem+json and a request id. The
defaults keep everything the proxy forwards within what the monolith's server accepts
(gunicorn: a request line of 4,094 bytes, 100 header fields of 8,190 bytes each), with room
for the method, the protocol version and the five headers the proxy adds:

- request target (path and query, as received and as forwarded): 4,000 bytes -> **414**;
- one header field (name, `: ` and value): 8,000 bytes -> **431**;
- header fields: 90 -> **431**.

This module must never perform I/O nor look at anything but the lengths of the head's parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    """Why a request head is refused: the status to answer and a sentence for the client."""

    status: int
    detail: str


@dataclass(frozen=True)
class HeadLimits:
    """The largest request target, header field and number of header fields let through."""

    max_target_bytes: int = 4000
    max_header_bytes: int = 8000
    max_headers: int = 90

    def target_refusal(self, length: int) -> Refusal | None:
        if length <= self.max_target_bytes:
            return None
        return Refusal(
            414, f"the request target is {length} bytes; at most {self.max_target_bytes} are served"
        )

    def refusal(
        self, raw_path: bytes, query: bytes, headers: Sequence[tuple[bytes, bytes]]
    ) -> Refusal | None:
        """The reason to refuse this head, or None when it is within every limit."""
        target = len(raw_path) + (len(query) + 1 if query else 0)
        if target > self.max_target_bytes:
            return self.target_refusal(target)
        if len(headers) > self.max_headers:
            return Refusal(
                431, f"the request has {len(headers)} header fields; at most {self.max_headers}"
            )
        longest = self.max_header_bytes - 2  # the `: ` between name and value counts
        for name, value in headers:
            if len(name) + len(value) > longest:
                return Refusal(
                    431,
                    f"the header field {name.decode('latin-1')[:64]!r} is longer than"
                    f" {self.max_header_bytes} bytes",
                )
        return None
