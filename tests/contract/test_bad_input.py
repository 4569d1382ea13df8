"""Hostile and broken input: each gets the contract's 4xx and changes nothing.

Every write of the contract is attacked the same way (`write` fixture): bodies that are too big
(declared or chunked), not UTF-8, not JSON, nested too deeply, not an object, NaN, wrong types
for each field, NUL characters and lone surrogates; tokens that are forged, expired or unsigned.
After each rejection the resource the write would have changed is read back unchanged.
Text that looks like SQL or HTML is not bad input: it is stored and returned verbatim.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from strangler.plumbing.tokens import TokenSigner
from tests.contract.client import ContractClient, Member, eventually, unique_username

MIB = 1024 * 1024


@dataclass(frozen=True)
class Write:
    """One write of the contract, ready to be sent a body, and a way to see what it changed."""

    name: str
    client: ContractClient
    method: str
    path: str
    valid: dict[str, Any]
    member: Member
    snapshot: Callable[[], Any]
    fields: dict[str, list[Any]]

    def send(self, content: bytes | Iterator[bytes], headers: dict[str, str] | None = None) -> Any:
        all_headers = {"Content-Type": "application/json", **self.member.headers, **(headers or {})}
        return self.client.request(self.method, self.path, content=content, headers=all_headers)


NOT_TEXT: list[Any] = [42, 1.5, True, None, [], {}, ["text"], {"text": "x"}]
WRITES = [
    pytest.param("sign-up", marks=pytest.mark.users),
    pytest.param("sign-in", marks=pytest.mark.users),
    pytest.param("profile", marks=pytest.mark.users),
    pytest.param("thread", marks=pytest.mark.forum),
    pytest.param("post", marks=pytest.mark.forum),
    pytest.param("poll", marks=pytest.mark.polls),
    pytest.param("vote", marks=pytest.mark.polls),
]
PROTECTED_WRITES = [param for param in WRITES if param.values[0] not in ("sign-up", "sign-in")]


def _next_id_is_free(client: ContractClient, path: str, probe_id: int) -> Callable[[], int]:
    """A snapshot for resources without a list: the id after a fresh probe stays unused."""
    return lambda: client.get(f"{path}/{probe_id + 1}").status_code


@pytest.fixture
def write(
    request: pytest.FixtureRequest,
    users_api: ContractClient,
    forum_api: ContractClient,
    polls_api: ContractClient,
    member: Member,
) -> Write:
    name = request.param
    snapshot: Callable[[], Any]
    fields: dict[str, list[Any]]
    document: dict[str, Any]
    valid: dict[str, Any]
    if name in ("sign-up", "sign-in"):
        probe = users_api.sign_up()
        username = unique_username()
        document = {
            "username": username,
            "email": f"{username}@example.org",
            "password": "long enough password",
            "display_name": "Probe",
        }
        if name == "sign-in":
            document = {"username": probe["username"], "password": probe["password"]}
        fields = {key: NOT_TEXT for key in document}
        path = "/api/users" if name == "sign-up" else "/api/sessions"
        snapshot = _next_id_is_free(users_api, "/api/users", probe["id"])
        return Write(name, users_api, "POST", path, document, member, snapshot, fields)
    if name == "profile":
        path = f"/api/users/{member.id}"
        no_null = [value for value in NOT_TEXT if value is not None]
        fields = {"display_name": no_null, "bio": no_null}
        snapshot = lambda: users_api.get(path).json()  # noqa: E731
        valid = {"display_name": "Changed", "bio": "changed"}
        return Write(name, users_api, "PATCH", path, valid, member, snapshot, fields)
    if name == "thread":
        valid = {"title": "A title", "body": "A body"}
        fields = {key: NOT_TEXT for key in valid}
        return Write(
            name,
            forum_api,
            "POST",
            "/api/threads",
            valid,
            member,
            forum_api.newest_thread_id,
            fields,
        )
    if name == "post":
        thread = forum_api.start_thread(member)
        path = f"/api/threads/{thread['id']}"
        snapshot = lambda: (forum_api.get(path).json(), forum_api.get(f"{path}/posts").json())  # noqa: E731
        fields = {"body": NOT_TEXT}
        return Write(
            name, forum_api, "POST", f"{path}/posts", {"body": "A reply"}, member, snapshot, fields
        )
    if name == "poll":
        probe = polls_api.create_poll(member)
        valid = {"question": "Yes or no?", "options": ["yes", "no"]}
        snapshot = _next_id_is_free(polls_api, "/api/polls", probe["id"])
        fields = {
            "question": NOT_TEXT,
            "options": ["yes", 42, None, {}, [1, 2], ["yes", None], ["yes", ["no"]], {"0": "a"}],
        }
        return Write(name, polls_api, "POST", "/api/polls", valid, member, snapshot, fields)
    poll = polls_api.create_poll(member)
    path = f"/api/polls/{poll['id']}"
    snapshot = lambda: polls_api.get(f"{path}/results").json()["options"]  # noqa: E731
    valid = {"option_id": poll["options"][0]["id"]}
    fields = {
        "option_id": [str(valid["option_id"]), 1.5, float(valid["option_id"]), True, None, [], {}]
    }
    return Write(name, polls_api, "POST", f"{path}/votes", valid, member, snapshot, fields)


def assert_rejected(
    write: Write, content: bytes | Iterator[bytes], status: int, **headers: str
) -> Any:
    before = write.snapshot()
    response = write.send(content, headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert write.snapshot() == before, f"a rejected {write.name} changed something"
    return response


def valid_json_padded_to(write: Write, size: int) -> bytes:
    """The write's valid body, made bigger than `size` bytes by an ignored extra field."""
    return json.dumps({**write.valid, "padding": "p" * size}).encode()


@pytest.mark.parametrize("write", WRITES, indirect=True)
class TestBodies:
    def test_a_body_over_one_mebibyte_is_too_large(self, write: Write) -> None:
        response = assert_rejected(write, valid_json_padded_to(write, MIB), 413)
        assert response.json()["type"] == "urn:strangler:problem:payload-too-large"

    def test_a_chunked_body_over_one_mebibyte_is_too_large(self, write: Write) -> None:
        body = valid_json_padded_to(write, MIB)

        def chunks() -> Iterator[bytes]:  # no Content-Length: httpx sends it chunked
            for start in range(0, len(body), 64 * 1024):
                yield body[start : start + 64 * 1024]

        assert_rejected(write, chunks(), 413)

    def test_a_body_just_under_one_mebibyte_is_not_too_large(self, write: Write) -> None:
        body = valid_json_padded_to(write, MIB - 200)
        assert len(body) <= MIB
        assert write.send(body).status_code not in (400, 413)

    @pytest.mark.parametrize(
        "content",
        [
            b"",
            b"   ",
            b"not json",
            b'{"unterminated": ',
            b"{'single': 'quotes'}",
            b'{"a": 1,}',
            '{"title": "caf\u00e9"}'.encode("latin-1"),
            b'{"x": "\xff\xfe\xfd"}',
            b"\xef\xbb\xbf{}",
        ],
        ids=[
            "empty",
            "blank",
            "text",
            "truncated",
            "quotes",
            "comma",
            "latin-1",
            "bad-utf8",
            "bom",
        ],
    )
    def test_a_body_that_is_not_utf8_json_is_a_bad_request(
        self, write: Write, content: bytes
    ) -> None:
        assert_rejected(write, content, 400)

    @pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
    def test_nan_and_infinity_are_not_json(self, write: Write, constant: str) -> None:
        field = next(iter(write.fields))
        assert_rejected(write, f'{{"{field}": {constant}}}'.encode(), 400)

    @pytest.mark.parametrize("opener", ["[", '{"a":'])
    def test_json_nested_100000_levels_deep_is_a_bad_request(
        self, write: Write, opener: str
    ) -> None:
        closer = "]" if opener == "[" else "}"
        body = (opener * 100_000 + "1" + closer * 100_000).encode()
        assert_rejected(write, body, 400)

    @pytest.mark.parametrize("document", ["[]", '"text"', "42", "null", "true", '[{"a": 1}]'])
    def test_json_that_is_not_an_object_is_a_validation_error(
        self, write: Write, document: str
    ) -> None:
        response = assert_rejected(write, document.encode(), 422)
        assert response.json()["errors"][0]["field"] == "body"

    def test_every_field_of_the_wrong_type_is_a_validation_error_naming_it(
        self, write: Write
    ) -> None:
        for field, values in write.fields.items():
            for value in values:
                body = json.dumps({**write.valid, field: value}).encode()
                response = assert_rejected(write, body, 422)
                named = [error["field"].split(".")[0] for error in response.json()["errors"]]
                assert field in named, (field, value, named)

    @pytest.mark.parametrize("evil", ["\\u0000", "nul\\u0000inside", "\\ud800", "lone \\udfff low"])
    def test_nul_characters_and_lone_surrogates_are_validation_errors(
        self, write: Write, evil: str
    ) -> None:
        for field, values in write.fields.items():
            if field == "option_id":
                continue
            template = json.dumps({**write.valid, field: "@@"})
            value = f'["{evil}", "b"]' if field == "options" else f'"{evil}"'
            body = template.replace('"@@"', value).encode()
            response = assert_rejected(write, body, 422)
            assert field in [error["field"].split(".")[0] for error in response.json()["errors"]]
            assert values  # every text field was attacked


def _tokens(signer: TokenSigner | None, user_id: int) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "iat": now, "exp": now + timedelta(hours=1), "iss": "strangler"}
    tokens = {
        "garbage": "garbage",
        "three-dots": "a.b.c",
        "other-key": TokenSigner("not-the-key-0123456789abcdef0123456789").issue(user_id),
        "alg-none": jwt.encode(claims, key=None, algorithm="none"),  # type: ignore[arg-type]
    }
    if signer is not None:
        tokens["expired"] = signer.issue(user_id, now=now - timedelta(days=3))
        tokens["hs512"] = jwt.encode(claims, signer.secret, algorithm="HS512")
        tokens["no-exp"] = jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"}, signer.secret
        )
        tokens["sub-zero"] = jwt.encode({**claims, "sub": "0"}, signer.secret)
        tokens["sub-not-a-number"] = jwt.encode({**claims, "sub": "admin"}, signer.secret)
        tokens["other-issuer"] = jwt.encode({**claims, "iss": "evil"}, signer.secret)
        tokens["tampered"] = _tamper(signer.issue(user_id), user_id + 1)
    return tokens


def _tamper(token: str, new_user_id: int) -> str:
    """Swap the claims of a genuine token, keeping its signature."""
    header, _, signature = token.split(".")
    forged = jwt.encode({"sub": str(new_user_id), "exp": 4_000_000_000}, "x").split(".")[1]
    return f"{header}.{forged}.{signature}"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("write", PROTECTED_WRITES, indirect=True)
def test_forged_expired_and_unsigned_tokens_are_unauthorized(
    write: Write, deployment: Any, token_signer: TokenSigner
) -> None:
    for name, token in _tokens(token_signer, write.member.id).items():
        response = assert_rejected(
            write, json.dumps(write.valid).encode(), 401, Authorization=f"Bearer {token}"
        )
        assert response.json()["type"] == "urn:strangler:problem:unauthorized", name


@pytest.mark.parametrize("write", PROTECTED_WRITES, indirect=True)
def test_the_token_is_checked_before_the_body(write: Write) -> None:
    assert_rejected(write, b"not json", 401, Authorization="Bearer forged")


class TestTextIsStoredVerbatim:
    SQL = "Robert'); DROP TABLE threads;-- \" OR 1=1 /* %_ \\ */"
    HTML = "<script>alert('x')</script><img src=x onerror=alert(1)> &amp; &lt;"
    WEIRD = "Zoë 🐍 李 \u200b\u202e right-to-left \t tab"

    @pytest.mark.forum
    @pytest.mark.parametrize("text", [SQL, HTML, WEIRD], ids=["sql", "html", "unicode"])
    def test_threads_and_posts_keep_sql_and_html_verbatim(
        self, forum_api: ContractClient, member: Member, text: str
    ) -> None:
        previous = forum_api.newest_thread_id()
        thread = forum_api.start_thread(member, title=text[:200], body=text)
        post = forum_api.add_post(member, thread["id"], body=text)
        stored = forum_api.get(f"/api/threads/{thread['id']}").json()
        assert (stored["title"], stored["body"], stored["post_count"]) == (text[:200], text, 1)
        assert forum_api.get(f"/api/threads/{thread['id']}/posts").json()["items"] == [post]
        assert post["body"] == text
        newest = forum_api.get("/api/threads", params={"limit": 2}).json()["items"]
        assert [item["id"] for item in newest][: 1 + (previous is not None)] == [
            thread["id"],
            *([previous] if previous is not None else []),
        ]

    @pytest.mark.users
    @pytest.mark.parametrize("text", [SQL, HTML, WEIRD], ids=["sql", "html", "unicode"])
    def test_profiles_keep_sql_and_html_verbatim(
        self, users_api: ContractClient, member: Member, text: str
    ) -> None:
        response = users_api.patch(
            f"/api/users/{member.id}",
            json={"display_name": text[:64], "bio": text},
            headers=member.headers,
        )
        assert response.status_code == 200
        stored = users_api.get(f"/api/users/{member.id}").json()
        assert (stored["display_name"], stored["bio"], stored["username"]) == (
            text[:64],
            text,
            member.username,
        )

    @pytest.mark.users
    def test_sql_in_a_sign_in_is_just_a_wrong_password(self, users_api: ContractClient) -> None:
        user = users_api.sign_up()
        for password in ("' OR '1'='1", "x' OR 1=1 --"):
            response = users_api.post(
                "/api/sessions", json={"username": user["username"], "password": password}
            )
            assert response.status_code == 401
        response = users_api.post(
            "/api/sessions", json={"username": "' OR 1=1 --", "password": "x"}
        )
        assert response.status_code == 401

    @pytest.mark.polls
    @pytest.mark.parametrize("text", [SQL, HTML], ids=["sql", "html"])
    def test_polls_keep_sql_and_html_verbatim(
        self, polls_api: ContractClient, member: Member, text: str
    ) -> None:
        poll = polls_api.create_poll(member, question=text, options=[text[:100], "plain"])
        stored = polls_api.get(f"/api/polls/{poll['id']}").json()
        assert stored == poll
        assert [option["text"] for option in stored["options"]] == [text[:100], "plain"]

    @pytest.mark.search
    @pytest.mark.forum
    def test_search_treats_like_wildcards_and_quotes_as_text(
        self, forum_api: ContractClient, search_api: ContractClient, member: Member
    ) -> None:
        tag = unique_username("w")
        literal = forum_api.start_thread(member, title=f"{tag} 100% o'clock_x")
        spelled_out = forum_api.start_thread(member, title=f"{tag} 100 percent oXclockYx")
        # How words match is the implementation's choice (a substring scan, a full-text index);
        # that wildcards and quotes are only text, never syntax, is the contract's.
        for q, expected in [
            (f"{tag} 100%", literal["id"]),
            ("o'clock_x", literal["id"]),
            (f"{tag} 100 percent", spelled_out["id"]),
        ]:

            def finds(q: str = q, expected: int = expected) -> None:
                response = search_api.get("/api/search", params={"q": q, "limit": "100"})
                assert response.status_code == 200
                assert expected in [hit["id"] for hit in response.json()["items"]], q

            eventually(finds)  # findable within 2 seconds of its creation
        injected = search_api.get("/api/search", params={"q": f"{tag}' OR '1'='1"})
        assert injected.status_code == 200
        assert injected.json()["items"] == []


class TestQueriesAndPaths:
    @pytest.mark.forum
    @pytest.mark.parametrize(
        "limit",
        ["1000", "1" + "0" * 30, "-5", "1e2", "0x10", "\u0661\u0660", "10 ", "NaN"],
    )
    def test_a_huge_or_odd_limit_is_a_validation_error(
        self, forum_api: ContractClient, limit: str
    ) -> None:
        response = forum_api.get("/api/threads", params={"limit": limit})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "limit"

    @pytest.mark.search
    @pytest.mark.parametrize("q", ["\x00", "a\x00b", "q" * 1000])
    def test_an_unstorable_or_huge_search_is_a_validation_error(
        self, search_api: ContractClient, q: str
    ) -> None:
        assert search_api.get("/api/search", params={"q": q}).status_code == 422

    @pytest.mark.parametrize(
        "path",
        [
            pytest.param("/api/users/{}", marks=pytest.mark.users),
            pytest.param("/api/threads/{}", marks=pytest.mark.forum),
            pytest.param("/api/threads/{}/posts", marks=pytest.mark.forum),
            pytest.param("/api/polls/{}", marks=pytest.mark.polls),
            pytest.param("/api/polls/{}/results", marks=pytest.mark.polls),
            pytest.param("/results/{}.html", marks=pytest.mark.polls),
        ],
    )
    @pytest.mark.parametrize(
        "bad_id",
        ["0", "-1", "007", "1.0", "1e3", "abc", "%20", "9" * 19, "9" * 40, "9223372036854775808"],
    )
    def test_an_id_that_is_not_a_positive_integer_is_not_found(
        self, api: ContractClient, path: str, bad_id: str
    ) -> None:
        response = api.get(path.format(bad_id))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            pytest.param("PATCH", "/api/users/{}", marks=pytest.mark.users),
            pytest.param("POST", "/api/threads/{}/posts", marks=pytest.mark.forum),
            pytest.param("POST", "/api/polls/{}/votes", marks=pytest.mark.polls),
        ],
    )
    @pytest.mark.parametrize("bad_id", ["0", "-1", "9" * 19, "999999999999999999"])
    def test_a_write_to_an_impossible_or_unknown_id_is_not_found(
        self, api: ContractClient, member: Member, method: str, path: str, bad_id: str
    ) -> None:
        body = {"bio": "x", "body": "x", "option_id": 1}
        response = api.request(method, path.format(bad_id), json=body, headers=member.headers)
        assert response.status_code == 404
