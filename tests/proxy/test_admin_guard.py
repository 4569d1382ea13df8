"""Specification of what stands in front of the admin API, in process: tokens, forgery, bodies.

`guarded` is run around a small ASGI app that records what reaches it; the `receive` it is
given counts what the guard reads, so "refused before it is read" is checked, not assumed.
End to end: `test_admin_security.py`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from strangler_proxy.admin_guard import CALLER_KEY, MAX_BODY_BYTES, guarded
from strangler_proxy.admin_tokens import AdminTokens, AdminTokensError, load_admin_tokens
from strangler_proxy.anti_forgery import CSRF_HEADER, AntiForgery

TOKENS = AdminTokens({"ada": "a" * 32, "ci": "c" * 32})


class Reached:
    """The app behind the guard: records the caller's name and the body it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        self.calls.append((scope[CALLER_KEY], message["body"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


class Client:
    """Sends `body` in `chunks` pieces; counts how many pieces the guard asked for."""

    def __init__(self, body: bytes = b"", chunks: int = 1) -> None:
        size = max(1, -(-len(body) // chunks))
        self.pieces = [body[start : start + size] for start in range(0, len(body), size)] or [b""]
        self.read = 0

    async def receive(self) -> dict[str, Any]:
        piece = self.pieces[self.read]
        self.read += 1
        return {"type": "http.request", "body": piece, "more_body": self.read < len(self.pieces)}


def call(
    headers: Mapping[str, str],
    client: Client | None = None,
    anti_forgery: AntiForgery | None = None,
) -> tuple[int, dict[str, str], bytes, Reached]:
    reached = Reached()
    app = guarded(reached, TOKENS, anti_forgery or AntiForgery())
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "scheme": "http",
        "method": "POST",
        "path": "/routes",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
    }

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def request() -> None:
        await app(scope, (client or Client()).receive, send)

    asyncio.run(request())
    start, body = sent
    answered = {name.decode(): value.decode() for name, value in start["headers"]}
    return start["status"], answered, body["body"], reached


ADA = {"Authorization": f"Bearer {'a' * 32}", "Host": "127.0.0.1:8100"}


def test_a_caller_is_known_by_its_tokens_name() -> None:
    status, headers, _, reached = call({**ADA, "X-Request-ID": "r-1"}, Client(b'{"a": 1}'))
    assert status == 200 and reached.calls == [("ada", b'{"a": 1}')]
    assert headers["x-request-id"] == "r-1"


@pytest.mark.parametrize(
    "authorization", [None, "Bearer nope", f"Basic {'a' * 32}", f"Bearer {'a' * 31}", "Bearer"]
)
def test_without_a_configured_token_the_answer_is_401(authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    status, answered, body, reached = call(headers)
    assert status == 401 and answered["www-authenticate"] == "Bearer"
    assert json.loads(body)["type"] == "urn:strangler:problem:unauthorized"
    assert reached.calls == []


def test_a_declared_body_over_the_limit_is_refused_before_any_of_it_is_read() -> None:
    client = Client(b"x" * 10)
    status, _, _, reached = call({**ADA, "Content-Length": str(MAX_BODY_BYTES + 1)}, client)
    assert status == 413 and client.read == 0 and reached.calls == []


def test_a_chunked_body_is_read_only_until_it_passes_the_limit() -> None:
    client = Client(b"[" * (MAX_BODY_BYTES * 4), chunks=64)
    status, _, _, reached = call(ADA, client)
    assert status == 413 and reached.calls == []
    assert client.read == 17  # 16 pieces of 64 KiB reach the limit, the 17th passes it


def test_a_body_at_the_limit_reaches_the_app_whole() -> None:
    body = b"{" + b" " * (MAX_BODY_BYTES - 2) + b"}"
    status, _, _, reached = call(ADA, Client(body, chunks=8))
    assert status == 200 and reached.calls == [("ada", body)]


class AcceptsOne:
    """A stand-in for the console's session-bound verifier: one header value is valid."""

    def verify(self, headers: Mapping[str, str]) -> bool:
        return headers.get(CSRF_HEADER) == "valid-for-this-session"


SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8100"}
GOOD_CSRF = {"X-CSRF-Token": "valid-for-this-session"}


@pytest.mark.parametrize(
    ("browser", "verifier", "status"),
    [
        ({}, None, 200),  # a program: its bearer token is all it needs
        ({"Sec-Fetch-Site": "cross-site"}, None, 403),
        ({"Sec-Fetch-Site": "same-site"}, AcceptsOne(), 403),
        ({"Origin": "http://evil.example"}, None, 403),
        ({"Origin": "http://127.0.0.1:8100.evil.example"}, AcceptsOne(), 403),
        ({"Origin": "null"}, AcceptsOne(), 403),
        (SAME_ORIGIN, None, 403),  # no verifier yet: no browser session can exist
        ({**SAME_ORIGIN, **GOOD_CSRF}, None, 403),
        ({**SAME_ORIGIN, "X-CSRF-Token": "guessed"}, AcceptsOne(), 403),
        ({**SAME_ORIGIN, **GOOD_CSRF}, AcceptsOne(), 200),  # the console, later
        ({"Sec-Fetch-Site": "cross-site", **GOOD_CSRF}, AcceptsOne(), 403),
        ({"Origin": "http://evil.example", **GOOD_CSRF}, AcceptsOne(), 403),
    ],
)
def test_a_browser_request_passes_only_same_origin_with_a_valid_anti_forgery_header(
    browser: dict[str, str], verifier: AcceptsOne | None, status: int
) -> None:
    anti_forgery = AntiForgery(verifier) if verifier is not None else AntiForgery()
    answered, _, _, reached = call({**ADA, **browser}, anti_forgery=anti_forgery)
    assert answered == status
    assert bool(reached.calls) == (status == 200)


def test_a_forged_request_is_refused_before_its_token_is_looked_at() -> None:
    status, _, body, _ = call({"Sec-Fetch-Site": "cross-site", "Authorization": "Bearer no"})
    assert status == 403 and "cross-site" in json.loads(body)["detail"]


def test_a_token_names_its_owner_and_nothing_else_matches() -> None:
    assert TOKENS.name_of("a" * 32) == "ada" and TOKENS.name_of("c" * 32) == "ci"
    assert TOKENS.name_of("a" * 33) is None and TOKENS.name_of("") is None
    assert TOKENS.name_in(f"bearer  {'c' * 32} ") == "ci"
    assert AdminTokens({}).name_of("") is None and not AdminTokens({})


@pytest.mark.parametrize(
    ("named", "problem"),
    [
        ({"ada": "same-token-0123456789", "bob": "same-token-0123456789"}, "same token"),
        ({"ada lovelace": "t" * 32}, "is not 1 to 64"),
        ({"ada": ""}, "empty"),
        ({"ada": "has a space"}, "spaces"),
    ],
)
def test_tokens_that_could_not_tell_callers_apart_are_refused(
    named: dict[str, str], problem: str
) -> None:
    with pytest.raises(AdminTokensError, match=problem):
        AdminTokens(named)


def test_the_three_settings_merge_and_the_single_token_is_named_admin(tmp_path: Path) -> None:
    file = tmp_path / "tokens.json"
    file.write_text(json.dumps({"bob": "b" * 32}))
    tokens = load_admin_tokens(SecretStr("s" * 32), {"ada": SecretStr("a" * 32)}, file)
    assert tokens.names == ["admin", "ada", "bob"]
    assert tokens.name_of("s" * 32) == "admin"


def test_a_name_given_twice_with_two_tokens_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "tokens.json"
    file.write_text(json.dumps({"admin": "b" * 32}))
    with pytest.raises(AdminTokensError, match="'admin' again"):
        load_admin_tokens(SecretStr("s" * 32), {}, file)


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "cannot be read"), ("ada=token", "is not JSON"), ('["a"]', "one JSON object")],
)
def test_a_token_file_that_cannot_be_used_is_refused(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    file = tmp_path / "tokens.json"
    if content is not None:
        file.write_text(content)
    with pytest.raises(AdminTokensError, match=problem):
        load_admin_tokens(None, {}, file)
