"""Rewriting headers for one hop: what the upstream receives and what the client gets back.

Removes hop-by-hop headers (RFC 9110 7.6.1, plus any named in `Connection`), sets
`X-Forwarded-For/Proto/Host` and `X-Real-IP`, and carries `X-Request-ID` and W3C `traceparent`
(a new span id for this hop, same trace). Headers that say who the client is (`IDENTITY`:
`X-Real-IP`, `Forwarded`, `True-Client-IP`, `CF-Connecting-IP`...) are believed only from a
peer in `PROXY_TRUSTED_PROXIES`; from anyone else they are dropped, and the ones the proxy
sets are set from the connection's own address. The proxy's own control headers never leave
it. This module must never perform I/O nor choose a route.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from strangler.plumbing.request_id import accept_or_mint

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
PROXY_CONTROL = frozenset({"x-strangler-force", "x-strangler-admin-token", "x-strangler-shadow"})
# Set by the proxy itself on every request (from a trusted peer's values where it has them).
FORWARDED = frozenset(
    {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip"}
)
# Other headers through which a hop tells the next who the client is, or what it asked for
# (some frameworks let these override the URL or scheme): passed on from trusted peers only.
IDENTITY = frozenset(
    {
        "x-client-ip",
        "client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-cluster-client-ip",
        "x-original-forwarded-for",
        "x-forwarded",
        "forwarded-for",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-forwarded-prefix",
        "x-forwarded-scheme",
        "x-forwarded-ssl",
        "x-url-scheme",
        "front-end-https",
        "x-original-url",
        "x-rewrite-url",
        "x-original-host",
        "x-envoy-external-address",
    }
)
# The server in front of the client adds its own; copies from the upstream would be duplicates.
RESPONSE_DROPPED = frozenset({"date", "server"})
_ALWAYS_DROPPED = (
    HOP_BY_HOP | PROXY_CONTROL | FORWARDED | IDENTITY | {"x-request-id", "traceparent"}
)
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@dataclass(slots=True)
class IncomingRequest:
    """The parts of the client's request headers the proxy needs, decoded once."""

    forward: list[tuple[str, str]]
    lookup: dict[str, str]
    request_id: str
    content_length: int | None = None
    is_chunked: bool = False
    trace_at: int = -1  # where in `forward` the `traceparent` the upstream receives is
    # Who the client is: the connection's address, or, from a trusted proxy (nginx in front),
    # the last address of its X-Forwarded-For chain no trusted proxy wrote (`X-Real-IP`).
    client: str = "unknown"

    @property
    def traceparent(self) -> str:
        """The `traceparent` the upstream receives."""
        return self.forward[self.trace_at][1]

    def continue_trace(self, traceparent: str) -> None:
        """Send the upstream this `traceparent` instead (a span of the proxy's own)."""
        self.forward[self.trace_at] = ("traceparent", traceparent)


def _connection_tokens(value: str) -> set[str]:
    return {token.strip().lower() for token in value.split(",") if token.strip()}


def mint_request_id(random: bytes | None = None) -> str:
    """A new id of the form `strangler.plumbing.request_id` mints (uuid4 hex), without a `UUID`
    object.

    Building the `UUID` was a tenth of the header rewrite's cost on the hot path. `random`
    gives the 16 random bytes to use (drawn here when not given).
    """
    raw = bytearray(random if random is not None else os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


def next_traceparent(incoming: str | None, random: bytes | None = None) -> str:
    """Continue an incoming W3C trace with a new span id for this hop, or start a new trace.

    `random` gives the 24 random bytes to use: the span id, then a trace id if one is needed.
    """
    hexed = (random if random is not None else os.urandom(24)).hex()
    span = hexed[:16]
    if incoming:
        found = _TRACEPARENT.fullmatch(incoming.strip())
        if found and found.group(1) != "0" * 32 and found.group(2) != "0" * 16:
            return f"00-{found.group(1)}-{span}-{found.group(3)}"
    return f"00-{hexed[16:]}-{span}-01"


class TrustedProxies:
    """The networks whose `X-Forwarded-*` and other identity headers the proxy believes."""

    def __init__(self, networks: Iterable[str]) -> None:
        self._networks = [ipaddress.ip_network(network, strict=False) for network in networks]

    def trusts(self, address: str | None) -> bool:
        if not address or not self._networks:
            return False
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self._networks)

    def client_of(self, chain: str, peer: str) -> str:
        """The client's address: the last one of `X-Forwarded-For` + peer not a trusted proxy.

        Addresses left of it were written by whoever the client is, so they prove nothing.
        """
        hops = [hop.strip() for hop in chain.split(",") if hop.strip()]
        for hop in reversed([*hops, peer]):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer


def rewrite_request_headers(
    raw_headers: Iterable[tuple[bytes, bytes]],
    client_address: str | None,
    scheme: str,
    trusted: TrustedProxies,
) -> IncomingRequest:
    """Build the upstream's headers from the client's in one pass over them."""
    lookup: dict[str, str] = {}
    forward: list[tuple[str, str]] = []
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in lookup:
            lookup[name] = (
                f"{lookup[name]}, {value}" if name != "cookie" else f"{lookup[name]}; {value}"
            )
        else:
            lookup[name] = value
        if name not in _ALWAYS_DROPPED:
            forward.append((name, value))
    if "connection" in lookup:  # it may name more hop-by-hop headers, before or after it
        named = _connection_tokens(lookup["connection"])
        forward = [(name, value) for name, value in forward if name not in named]

    random = os.urandom(40)  # one system call for the request id and the trace ids
    supplied_id = lookup.get("x-request-id")
    request_id = (
        accept_or_mint(supplied_id) if supplied_id is not None else mint_request_id(random[:16])
    )
    forward.append(("x-request-id", request_id))
    if "tracestate" in lookup and "traceparent" not in lookup:  # a state without its trace
        forward = [(name, value) for name, value in forward if name != "tracestate"]
    trace_at = len(forward)
    forward.append(("traceparent", next_traceparent(lookup.get("traceparent"), random[16:])))

    is_trusted = trusted.trusts(client_address)
    chain = lookup.get("x-forwarded-for") if is_trusted else None
    address = client_address or "unknown"
    client = trusted.client_of(chain, address) if chain else address
    forward.append(("x-forwarded-for", f"{chain}, {address}" if chain else address))
    forward.append(("x-real-ip", client))
    if is_trusted:
        forward.extend((name, lookup[name]) for name in IDENTITY if name in lookup)
    proto = lookup.get("x-forwarded-proto") if is_trusted else None
    forward.append(("x-forwarded-proto", proto or scheme))
    host = (lookup.get("x-forwarded-host") if is_trusted else None) or lookup.get("host")
    if host:
        forward.append(("x-forwarded-host", host))

    content_length = None
    raw_length = lookup.get("content-length")
    if raw_length is not None and raw_length.strip().isdigit():
        content_length = int(raw_length)
    is_chunked = "chunked" in lookup.get("transfer-encoding", "").lower()
    return IncomingRequest(
        forward, lookup, request_id, content_length, is_chunked, trace_at, client
    )


_RESPONSE_DROPPED_BYTES = frozenset(name.encode() for name in HOP_BY_HOP | RESPONSE_DROPPED)


def rewrite_response_headers(
    raw_headers: Iterable[tuple[bytes, bytes]], request_id: str
) -> tuple[list[tuple[bytes, bytes]], int | None, str]:
    """The upstream's response headers minus hop-by-hop ones, always with `X-Request-ID`.

    Also returns what the proxy needs to know of them: the declared `Content-Length` (None when
    absent or not a number) and the `Content-Type` ("" when absent). One pass over the headers;
    a second only when `Connection` names further headers to drop.
    """
    kept: list[tuple[bytes, bytes]] = []
    named_by_connection: set[bytes] = set()
    length: int | None = None
    content_type = ""
    has_request_id = False
    for raw_name, value in raw_headers:
        name = raw_name.lower()
        if name in _RESPONSE_DROPPED_BYTES:
            if name == b"connection":
                tokens = _connection_tokens(value.decode("latin-1"))
                named_by_connection.update(token.encode() for token in tokens)
            continue
        if name == b"content-length":
            length = int(value) if value.strip().isdigit() else None
        elif name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"x-request-id":
            has_request_id = True
        kept.append((name, value))
    if named_by_connection - {b"close", b"keep-alive"}:
        kept = [(name, value) for name, value in kept if name not in named_by_connection]
        has_request_id = any(name == b"x-request-id" for name, _ in kept)
    if not has_request_id:
        kept.append((b"x-request-id", request_id.encode()))
    return kept, length, content_type
