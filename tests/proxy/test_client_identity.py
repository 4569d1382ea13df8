"""Specification of who the upstream is told the client is, in process.

Only a trusted proxy may say who the client is; anyone else's claims are dropped and the
connection's own address is what the upstream hears. End to end: `test_forwarding.py`.
"""

from __future__ import annotations

import pytest

from strangler_proxy.headers import IDENTITY, TrustedProxies, rewrite_request_headers

TRUSTED = TrustedProxies(["10.0.0.0/8"])
CLAIMS = [(name.encode(), b"6.6.6.6") for name in sorted(IDENTITY)] + [
    (b"x-real-ip", b"6.6.6.6"),
    (b"host", b"forum.test"),
]


def forwarded(peer: str, extra: list[tuple[bytes, bytes]] | None = None) -> dict[str, str]:
    incoming = rewrite_request_headers([*CLAIMS, *(extra or [])], peer, "http", TRUSTED)
    return dict(incoming.forward)


def test_an_untrusted_peer_claims_no_identity() -> None:
    seen = forwarded("192.0.2.1", [(b"x-forwarded-for", b"6.6.6.6")])
    assert IDENTITY.isdisjoint(seen)
    assert seen["x-real-ip"] == "192.0.2.1" and seen["x-forwarded-for"] == "192.0.2.1"


def test_a_trusted_peers_identity_headers_pass() -> None:
    seen = forwarded("10.0.0.1", [(b"x-forwarded-for", b"198.51.100.2")])
    assert all(seen[name] == "6.6.6.6" for name in IDENTITY)
    assert seen["x-forwarded-for"] == "198.51.100.2, 10.0.0.1"


@pytest.mark.parametrize(
    ("chain", "client"),
    [
        ("198.51.100.2", "198.51.100.2"),
        ("6.6.6.6, 198.51.100.2, 10.0.0.5", "198.51.100.2"),  # the client wrote 6.6.6.6
        ("10.0.0.7, 10.0.0.5", "10.0.0.7"),  # trusted all the way: the first hop
        ("junk, 10.0.0.5", "junk"),
    ],
)
def test_the_real_ip_is_the_last_address_no_trusted_proxy_wrote(chain: str, client: str) -> None:
    assert forwarded("10.0.0.1", [(b"x-forwarded-for", chain.encode())])["x-real-ip"] == client


def client_of(peer: str, chain: str | None, trusted: TrustedProxies = TRUSTED) -> str:
    extra = [(b"x-forwarded-for", chain.encode())] if chain else []
    return rewrite_request_headers(extra, peer, "http", trusted).client


def test_behind_a_trusted_front_the_client_is_the_one_it_names() -> None:
    # nginx on loopback, trusted as `strangler up --data-plane nginx` trusts it.
    front = TrustedProxies(["127.0.0.1/32"])
    assert client_of("127.0.0.1", "127.0.0.2", front) == "127.0.0.2"
    assert client_of("127.0.0.1", "127.0.0.3", front) == "127.0.0.3"


def test_a_forwarding_chain_from_an_untrusted_peer_is_ignored() -> None:
    front = TrustedProxies(["127.0.0.1/32"])
    assert client_of("127.0.0.2", "6.6.6.6", front) == "127.0.0.2"
    assert client_of("192.0.2.1", "6.6.6.6") == "192.0.2.1"


def test_nobody_is_trusted_by_default() -> None:
    assert client_of("127.0.0.1", "6.6.6.6", TrustedProxies([])) == "127.0.0.1"
