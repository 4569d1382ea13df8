"""Specification of request-path canonicalisation: every trick to dodge the matcher fails."""

from __future__ import annotations

import pytest

from strangler_proxy.paths import UnsafePath, canonicalise
from strangler_proxy.routing import Router
from strangler_proxy.table import parse_table

TABLE = parse_table(
    """
[upstreams]
users = "http://127.0.0.1:1"

[[routes]]
name = "users.get_user"
methods = ["GET"]
path = "/api/users/{user_id}"
context = "users"
mode = "service"
"""
)


def route_of(raw: bytes) -> str:
    path = canonicalise(raw)
    route = Router(TABLE).match("GET", path.match_key)
    return route.name if route else "monolith"


@pytest.mark.parametrize(
    "raw",
    [
        b"/api/users/7",
        b"/api//users/7",  # repeated slash
        b"//api/users/7",
        b"/api/users/7/",  # trailing slash
        b"/api/./users/7",  # dot segment
        b"/api/x/../users/7",  # dot-dot segment
        b"/api/%2e/users/7",  # encoded dot
        b"/api/x/%2E%2E/users/7",  # encoded dot-dot
        b"/api/x/.%2e/users/7",  # half-encoded dot-dot
        b"/%61pi/users/7",  # percent-encoded letter
        b"/api/us%65rs/%37",  # percent-encoded letter and digit
        b"/API/Users/7",  # case
        b"/Api/USERS/7/",  # case and trailing slash
    ],
)
def test_every_spelling_of_a_service_path_reaches_the_service_route(raw: bytes) -> None:
    assert route_of(raw) == "users.get_user"


@pytest.mark.parametrize(
    "raw",
    [
        b"/api/users%2F7",  # encoded slash
        b"/api/users%2f7",
        b"/api%2Fusers/7",
        b"/api\\users\\7",  # backslash
        b"/api/users%5C7",  # encoded backslash
        b"/api/users/7%00",  # encoded NUL
        b"/api/users/%0a7",  # encoded newline
        b"/api/users/%zz",  # malformed escape
        b"/api/users/%7",  # cut-short escape
        b"/api/users/%",
        b"/api/users/%ff",  # not UTF-8 once decoded
        b"/../api/users/7",  # climbing above the root
        b"/api/../../users/7",
        b"/%2e%2e/api/users/7",
        b"api/users/7",  # not absolute
        b"/api/users/\xc3\xa9",  # raw non-ASCII byte
    ],
)
def test_ambiguous_targets_are_rejected_rather_than_guessed(raw: bytes) -> None:
    with pytest.raises(UnsafePath):
        canonicalise(raw)


def test_the_forwarded_path_is_the_canonical_one_re_encoded() -> None:
    path = canonicalise(b"/api//x/../users/%37/")
    assert path.forward == "/api/users/7/"
    assert path.match_key == "/api/users/7"


def test_decoding_happens_exactly_once_so_double_encoding_stays_literal() -> None:
    path = canonicalise(b"/api/users/%252F7")
    assert path.decoded == "/api/users/%2F7"
    assert path.forward == "/api/users/%252F7"  # the upstream decodes once, to the same text


def test_reserved_characters_decoded_for_matching_are_re_encoded_for_the_upstream() -> None:
    path = canonicalise(b"/api/users/7%3Fadmin=1%23x")
    assert path.forward == "/api/users/7%3Fadmin=1%23x"
    assert route_of(b"/api/users/7%3Fadmin=1") == "users.get_user"  # one segment, literal '?'


def test_unicode_survives_as_utf8_percent_escapes() -> None:
    path = canonicalise(b"/api/search/caf%C3%A9")
    assert path.decoded == "/api/search/café"
    assert path.forward == "/api/search/caf%C3%A9"


def test_a_monolith_path_cannot_be_disguised_as_a_service_path() -> None:
    assert route_of(b"/api/users/7/posts") == "monolith"
    assert route_of(b"/api/users/7/posts/..") == "users.get_user"
    assert route_of(b"/api/users") == "monolith"
