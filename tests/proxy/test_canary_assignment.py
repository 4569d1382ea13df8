"""Specification of sticky, monotonic canary assignment and forced sides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from strangler.plumbing.tokens import TokenSigner
from strangler_proxy.canary import CanaryAssigner, bucket_of, lands_on_service

SECRET = "canary-test-secret-0123456789abcdef"
ASSIGNER = CanaryAssigner(SECRET, "admin-secret", "strangler_client")


def test_a_callers_bucket_never_changes() -> None:
    assert bucket_of("user:42") == bucket_of("user:42")
    assert 0 <= bucket_of("user:42") < 10_000


def test_raising_the_percentage_only_moves_callers_to_the_service() -> None:
    identities = [f"user:{n}" for n in range(2000)]
    previous: set[str] = set()
    for percent in (0, 1, 5, 10, 25, 50, 75, 99, 100):
        inside = {who for who in identities if lands_on_service(who, percent)}
        assert previous <= inside
        previous = inside
    assert previous == set(identities)


def test_the_share_of_callers_follows_the_percentage() -> None:
    identities = [f"client:{n}" for n in range(10_000)]
    inside = sum(lands_on_service(who, 10) for who in identities)
    assert 800 < inside < 1200


def test_the_identity_is_the_verified_token_subject() -> None:
    token = TokenSigner(SECRET).issue(42)
    identity = ASSIGNER.identity({"authorization": f"Bearer {token}"}, "10.0.0.1")
    assert identity == "user:42"


def test_the_same_user_on_two_addresses_lands_on_the_same_side() -> None:
    token = TokenSigner(SECRET).issue(7)
    headers = {"authorization": f"Bearer {token}"}
    sides = {ASSIGNER.goes_to_service(37, headers, f"10.0.0.{n}") for n in range(50)}
    assert len(sides) == 1


def test_a_forged_or_expired_token_is_not_believed() -> None:
    forged = TokenSigner("another-secret-0123456789abcdef-0123").issue(42)
    expired = TokenSigner(SECRET).issue(42, now=datetime.now(UTC) - timedelta(days=3))
    for token in (forged, expired, "not-a-jwt"):
        identity = ASSIGNER.identity({"authorization": f"Bearer {token}"}, "10.0.0.1")
        assert identity == "address:10.0.0.1"


def test_without_a_token_the_client_id_header_then_cookie_then_address_is_used() -> None:
    assert ASSIGNER.identity({"x-client-id": "abc"}, "10.0.0.1") == "client:abc"
    assert ASSIGNER.identity({"cookie": "a=1; strangler_client=xyz"}, "10.0.0.1") == "client:xyz"
    assert ASSIGNER.identity({}, "10.0.0.1") == "address:10.0.0.1"


def test_an_admin_may_force_a_side_but_nobody_else_can() -> None:
    admin = {"x-strangler-force": "service", "x-strangler-admin-token": "admin-secret"}
    assert ASSIGNER.goes_to_service(0, admin, "10.0.0.1") is True
    admin_monolith = {**admin, "x-strangler-force": "monolith"}
    assert ASSIGNER.goes_to_service(100, admin_monolith, "10.0.0.1") is False
    impostor = {"x-strangler-force": "service", "x-strangler-admin-token": "guess"}
    assert ASSIGNER.goes_to_service(0, impostor, "10.0.0.1") is False
    no_admin_configured = CanaryAssigner(SECRET, None, "strangler_client")
    assert no_admin_configured.goes_to_service(0, admin, "10.0.0.1") is False
