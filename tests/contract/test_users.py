"""The users context of the contract: sign up, sign in, tokens, profiles, the list of users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from strangler.plumbing.tokens import TokenSigner
from tests.contract.client import PASSWORD, ContractClient, Member, unique_username, walk

pytestmark = pytest.mark.users


def problem_fields(response: object) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]  # type: ignore[attr-defined]


class TestSignUp:
    def test_sign_up_returns_the_new_user_without_secrets(self, users_api: ContractClient) -> None:
        username = unique_username()
        response = users_api.post(
            "/api/users",
            json={
                "username": username,
                "email": f"{username}@example.org",
                "password": PASSWORD,
                "display_name": "Ada Lovelace",
            },
        )
        assert response.status_code == 201
        user = response.json()
        assert set(user) == {"id", "username", "display_name", "bio", "created_at"}
        assert (user["username"], user["display_name"], user["bio"]) == (
            username,
            "Ada Lovelace",
            "",
        )
        assert PASSWORD not in response.text and "@example.org" not in response.text

    def test_a_new_user_can_be_read_by_id(self, users_api: ContractClient) -> None:
        signed_up = users_api.sign_up("Grace Hopper")
        response = users_api.get(f"/api/users/{signed_up['id']}")
        assert response.status_code == 200
        assert response.json()["username"] == signed_up["username"]
        assert response.json()["display_name"] == "Grace Hopper"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("username", "abc"),
            ("username", "a" * 32),
            ("password", "x" * 8),
            ("display_name", "d" * 64),
            ("display_name", "Zoë 🐍 李"),
        ],
    )
    def test_values_at_the_limits_are_accepted(
        self, users_api: ContractClient, field: str, value: str
    ) -> None:
        if field == "username":
            value = unique_username()[: len(value)] if len(value) > 3 else uuid_tail(3)
        document = sign_up_document(**{field: value})
        response = users_api.post("/api/users", json=document)
        assert response.status_code == 201, response.text
        if field != "password":
            assert response.json()[field] == value

    def test_a_taken_username_is_a_conflict(self, users_api: ContractClient) -> None:
        first = users_api.sign_up()
        again = sign_up_document(username=first["username"])
        response = users_api.post("/api/users", json=again)
        assert response.status_code == 409
        assert response.json()["type"] == "urn:strangler:problem:conflict"

    def test_a_taken_email_in_another_case_is_a_conflict(self, users_api: ContractClient) -> None:
        first = users_api.sign_up()
        again = sign_up_document(email=first["email"].upper())
        response = users_api.post("/api/users", json=again)
        assert response.status_code == 409
        # The rejected username stays free.
        assert (
            users_api.post(
                "/api/users", json={**again, "email": f"{again['username']}@x.org"}
            ).status_code
            == 201
        )

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("username", "ab"),
            ("username", "a" * 33),
            ("username", "Upper_Case"),
            ("username", "with-dash"),
            ("username", "spa ce"),
            ("email", "not-an-email"),
            ("email", "two@@example.org"),
            ("password", "x" * 7),
            ("display_name", ""),
            ("display_name", "   "),
            ("display_name", "d" * 65),
        ],
    )
    def test_an_invalid_field_is_a_validation_error_naming_it(
        self, users_api: ContractClient, field: str, value: str
    ) -> None:
        document = sign_up_document(**{field: value})
        response = users_api.post("/api/users", json=document)
        assert response.status_code == 422
        assert field in problem_fields(response)
        assert_username_is_free(users_api, document["username"])

    @pytest.mark.parametrize("missing", ["username", "email", "password", "display_name"])
    def test_a_missing_field_is_a_validation_error_naming_it(
        self, users_api: ContractClient, missing: str
    ) -> None:
        document = sign_up_document()
        del document[missing]
        response = users_api.post("/api/users", json=document)
        assert response.status_code == 422
        assert missing in problem_fields(response)


class TestSignIn:
    def test_sign_in_returns_a_token_naming_the_user(self, users_api: ContractClient) -> None:
        user = users_api.sign_up()
        response = users_api.post(
            "/api/sessions", json={"username": user["username"], "password": PASSWORD}
        )
        assert response.status_code == 200
        assert response.json()["user_id"] == user["id"]
        me = users_api.get(
            "/api/me", headers={"Authorization": f"Bearer {response.json()['token']}"}
        )
        assert me.status_code == 200
        assert me.json()["id"] == user["id"]

    def test_a_wrong_password_is_unauthorized(self, users_api: ContractClient) -> None:
        user = users_api.sign_up()
        response = users_api.post(
            "/api/sessions", json={"username": user["username"], "password": PASSWORD + "!"}
        )
        assert response.status_code == 401
        assert "token" not in response.json()

    def test_an_unknown_username_is_unauthorized(self, users_api: ContractClient) -> None:
        response = users_api.post(
            "/api/sessions", json={"username": unique_username(), "password": PASSWORD}
        )
        assert response.status_code == 401

    def test_a_sign_in_without_password_is_a_validation_error(
        self, users_api: ContractClient
    ) -> None:
        response = users_api.post("/api/sessions", json={"username": "someone"})
        assert response.status_code == 422
        assert problem_fields(response) == ["password"]


class TestTokens:
    def test_me_is_the_user_the_token_names(
        self, users_api: ContractClient, member: Member
    ) -> None:
        response = users_api.get("/api/me", headers=member.headers)
        assert response.status_code == 200
        assert (response.json()["id"], response.json()["username"]) == (member.id, member.username)

    def test_me_without_a_token_is_unauthorized(self, users_api: ContractClient) -> None:
        response = users_api.get("/api/me")
        assert response.status_code == 401
        assert response.json()["type"] == "urn:strangler:problem:unauthorized"

    @pytest.mark.parametrize(
        "authorization",
        ["Bearer", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Token abc"],
    )
    def test_a_malformed_authorization_is_unauthorized(
        self, users_api: ContractClient, authorization: str
    ) -> None:
        assert users_api.get("/api/me", headers={"Authorization": authorization}).status_code == 401

    def test_a_token_signed_with_another_key_is_unauthorized(
        self, users_api: ContractClient, member: Member
    ) -> None:
        forged = TokenSigner("somebody-elses-key-0123456789abcdef0123").issue(member.id)
        response = users_api.get("/api/me", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401

    def test_an_expired_token_is_unauthorized(
        self, users_api: ContractClient, member: Member, token_signer: TokenSigner
    ) -> None:
        long_ago = datetime.now(UTC) - timedelta(days=30)
        expired = token_signer.issue(member.id, now=long_ago)
        response = users_api.get("/api/me", headers={"Authorization": f"Bearer {expired}"})
        assert response.status_code == 401

    def test_a_token_for_a_user_that_does_not_exist_is_unauthorized(
        self, users_api: ContractClient, token_signer: TokenSigner
    ) -> None:
        ghost = token_signer.issue(999_999_999_999)
        response = users_api.get("/api/me", headers={"Authorization": f"Bearer {ghost}"})
        assert response.status_code == 401


class TestProfiles:
    def test_a_member_changes_their_display_name_and_bio(
        self, users_api: ContractClient, member: Member
    ) -> None:
        response = users_api.patch(
            f"/api/users/{member.id}",
            json={"display_name": "New Name", "bio": "I like polls."},
            headers=member.headers,
        )
        assert response.status_code == 200
        assert (response.json()["display_name"], response.json()["bio"]) == (
            "New Name",
            "I like polls.",
        )
        stored = users_api.get(f"/api/users/{member.id}").json()
        assert (stored["display_name"], stored["bio"]) == ("New Name", "I like polls.")

    def test_omitted_or_null_fields_are_left_unchanged(
        self, users_api: ContractClient, member: Member
    ) -> None:
        users_api.patch(f"/api/users/{member.id}", json={"bio": "first"}, headers=member.headers)
        response = users_api.patch(
            f"/api/users/{member.id}", json={"display_name": None}, headers=member.headers
        )
        assert response.status_code == 200
        assert (response.json()["display_name"], response.json()["bio"]) == (
            member.display_name,
            "first",
        )

    def test_a_bio_may_be_emptied_and_may_hold_500_characters(
        self, users_api: ContractClient, member: Member
    ) -> None:
        for bio in ("b" * 500, ""):
            response = users_api.patch(
                f"/api/users/{member.id}", json={"bio": bio}, headers=member.headers
            )
            assert response.status_code == 200
            assert response.json()["bio"] == bio

    @pytest.mark.parametrize(
        ("field", "value"), [("bio", "b" * 501), ("display_name", ""), ("display_name", "d" * 65)]
    )
    def test_an_invalid_change_is_a_validation_error_and_changes_nothing(
        self, users_api: ContractClient, member: Member, field: str, value: str
    ) -> None:
        response = users_api.patch(
            f"/api/users/{member.id}", json={field: value}, headers=member.headers
        )
        assert response.status_code == 422
        assert problem_fields(response) == [field]
        assert_profile_unchanged(users_api, member)

    def test_changing_another_users_profile_is_forbidden(
        self, users_api: ContractClient, member: Member, other_member: Member
    ) -> None:
        response = users_api.patch(
            f"/api/users/{other_member.id}", json={"bio": "hijacked"}, headers=member.headers
        )
        assert response.status_code == 403
        assert response.json()["type"] == "urn:strangler:problem:forbidden"
        assert_profile_unchanged(users_api, other_member)

    def test_changing_a_profile_without_a_token_is_unauthorized(
        self, users_api: ContractClient, member: Member
    ) -> None:
        response = users_api.patch(f"/api/users/{member.id}", json={"bio": "anonymous"})
        assert response.status_code == 401
        assert_profile_unchanged(users_api, member)

    def test_changing_an_unknown_user_is_not_found(
        self, users_api: ContractClient, member: Member
    ) -> None:
        response = users_api.patch(
            "/api/users/999999999999", json={"bio": "nobody"}, headers=member.headers
        )
        assert response.status_code == 404

    def test_the_token_is_checked_before_the_body(
        self, users_api: ContractClient, member: Member
    ) -> None:
        response = users_api.patch(f"/api/users/{member.id}", json={"bio": 5})
        assert response.status_code == 401

    def test_the_body_is_checked_before_the_user_and_the_permission(
        self, users_api: ContractClient, member: Member, other_member: Member
    ) -> None:
        for user_id in (other_member.id, 999999999999):
            response = users_api.patch(
                f"/api/users/{user_id}", json={"bio": 5}, headers=member.headers
            )
            assert response.status_code == 422

    def test_the_user_is_looked_up_before_the_permission(
        self, users_api: ContractClient, member: Member
    ) -> None:
        response = users_api.patch(
            "/api/users/999999999999", json={"bio": "x"}, headers=member.headers
        )
        assert response.status_code == 404


class TestReadingUsers:
    def test_an_unknown_user_is_not_found(self, users_api: ContractClient) -> None:
        response = users_api.get("/api/users/999999999999")
        assert response.status_code == 404
        assert response.json()["type"] == "urn:strangler:problem:not-found"

    def test_the_list_is_oldest_first_and_pages_have_no_gaps_or_duplicates(
        self, users_api: ContractClient
    ) -> None:
        created = [users_api.sign_up()["id"] for _ in range(3)]
        ids = [user["id"] for user in walk(users_api, "/api/users", limit=37)]
        assert ids == sorted(set(ids)), "oldest first, each user once"
        assert ids[-3:] == created
        assert ids == [user["id"] for user in walk(users_api, "/api/users", limit=100)]

    def test_the_default_page_holds_twenty_users(self, users_api: ContractClient) -> None:
        for _ in range(21 - len(users_api.get("/api/users?limit=21").json()["items"])):
            users_api.sign_up()
        page = users_api.get("/api/users").json()
        assert len(page["items"]) == 20
        assert page["next_cursor"] is not None

    @pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", "", "99999999999999999999"])
    def test_a_limit_outside_1_to_100_is_a_validation_error(
        self, users_api: ContractClient, limit: str
    ) -> None:
        response = users_api.get("/api/users", params={"limit": limit})
        assert response.status_code == 422
        assert problem_fields(response) == ["limit"]

    @pytest.mark.parametrize("cursor", ["", "!!!", "bm90IGpzb24", "Im5vdCBhbiBpZCI", "x" * 201])
    def test_a_cursor_the_list_did_not_issue_is_a_validation_error(
        self, users_api: ContractClient, cursor: str
    ) -> None:
        response = users_api.get("/api/users", params={"cursor": cursor})
        assert response.status_code == 422
        assert problem_fields(response) == ["cursor"]


def uuid_tail(length: int) -> str:
    return unique_username()[-length:]


def sign_up_document(**overrides: str) -> dict[str, str]:
    username = overrides.get("username") or unique_username()
    return {
        "username": username,
        "email": f"{username}@example.org",
        "password": PASSWORD,
        "display_name": "Somebody",
        **overrides,
    }


def assert_username_is_free(users_api: ContractClient, username: str) -> None:
    """A rejected sign-up created nobody: its username cannot sign in."""
    response = users_api.post("/api/sessions", json={"username": username, "password": PASSWORD})
    assert response.status_code in (401, 422)


def assert_profile_unchanged(users_api: ContractClient, member: Member) -> None:
    stored = users_api.get(f"/api/users/{member.id}").json()
    assert (stored["display_name"], stored["bio"]) == (member.display_name, "")
