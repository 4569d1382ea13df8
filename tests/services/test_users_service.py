"""The users service: what it adds to the contract (which the contract and parity suites prove).

Every change records its event in the service's outbox in the same transaction: the event
exists if and only if the change committed. Tokens are the shared-key tokens every side accepts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from contract.passwords import Passwords
from contract.requests import ProfileChange, SignUp
from extracted.users import service
from extracted.users.models import User, outbox
from strangler.datapath.schemas import upgrade
from strangler.plumbing.database import make_engine
from strangler.plumbing.tokens import TokenSigner
from tests.services.conftest import RunningService, StartService
from tests.support.databases import fresh_database

PASSWORD = "a long enough password"


@pytest.fixture
def users(session_service: StartService) -> RunningService:
    return session_service("users")


def _events(database_url: str, user_id: int) -> list[tuple[str, dict[str, Any]]]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(outbox.c.topic, outbox.c.payload)
                .where(outbox.c.aggregate_id == str(user_id))
                .order_by(outbox.c.id)
            ).all()
    finally:
        engine.dispose()
    return [(row.topic, json.loads(row.payload)) for row in rows]


def _sign_up(http: httpx.Client, users: RunningService, **fields: str) -> dict[str, Any]:
    username = fields.pop("username", f"u_{uuid.uuid4().hex[:20]}")
    document = {
        "username": username,
        "email": f"{username}@Example.org",
        "password": PASSWORD,
        "display_name": "Ann",
        **fields,
    }
    response = http.post(f"{users.url}/api/users", json=document)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _headers(token_for: Callable[[int], str], user_id: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user_id)}"}


def test_signing_up_records_user_registered_with_the_whole_row(
    http: httpx.Client, users: RunningService
) -> None:
    user = _sign_up(http, users, display_name="Ann")
    [(topic, payload)] = _events(users.database_url, user["id"])
    assert topic == "users.user_registered"
    assert payload["password_hash"].startswith("$argon2id$")
    assert Passwords().matches(payload.pop("password_hash"), PASSWORD)
    assert payload == {**user, "email": f"{user['username']}@example.org"}


def test_a_refused_sign_up_records_no_event(http: httpx.Client, users: RunningService) -> None:
    user = _sign_up(http, users)
    email_in_other_case = f"{user['username']}@EXAMPLE.ORG"
    again = {"username": "someone_else", "email": email_in_other_case, "password": PASSWORD}
    response = http.post(f"{users.url}/api/users", json={**again, "display_name": "Bo"})
    assert response.status_code == 409
    assert [topic for topic, _ in _events(users.database_url, user["id"])] == [
        "users.user_registered"
    ]
    listed = http.get(f"{users.url}/api/users", params={"limit": 100}).json()["items"]
    assert "someone_else" not in {item["username"] for item in listed}


def test_renaming_records_user_renamed_and_profile_changed(
    http: httpx.Client, users: RunningService, token_for: Callable[[int], str]
) -> None:
    user = _sign_up(http, users, display_name="Ann")
    response = http.patch(
        f"{users.url}/api/users/{user['id']}",
        json={"display_name": "Annie", "bio": "hello"},
        headers=_headers(token_for, user["id"]),
    )
    assert response.status_code == 200
    assert _events(users.database_url, user["id"])[1:] == [
        (
            "users.user_renamed",
            {"id": user["id"], "display_name": "Annie", "previous_display_name": "Ann"},
        ),
        ("users.profile_changed", {"id": user["id"], "display_name": "Annie", "bio": "hello"}),
    ]


def test_changing_only_the_bio_is_not_a_rename(
    http: httpx.Client, users: RunningService, token_for: Callable[[int], str]
) -> None:
    user = _sign_up(http, users, display_name="Ann")
    response = http.patch(
        f"{users.url}/api/users/{user['id']}",
        json={"display_name": "Ann", "bio": "only the bio"},
        headers=_headers(token_for, user["id"]),
    )
    assert response.status_code == 200
    assert [topic for topic, _ in _events(users.database_url, user["id"])] == [
        "users.user_registered",
        "users.profile_changed",
    ]


def test_a_refused_profile_change_records_no_event(
    http: httpx.Client, users: RunningService, token_for: Callable[[int], str]
) -> None:
    owner = _sign_up(http, users)
    intruder = _sign_up(http, users)
    response = http.patch(
        f"{users.url}/api/users/{owner['id']}",
        json={"display_name": "Taken over"},
        headers=_headers(token_for, intruder["id"]),
    )
    assert response.status_code == 403
    assert len(_events(users.database_url, owner["id"])) == 1


def test_a_token_the_service_issued_signs_the_user_in(
    http: httpx.Client, users: RunningService
) -> None:
    user = _sign_up(http, users)
    signed_in = http.post(
        f"{users.url}/api/sessions", json={"username": user["username"], "password": PASSWORD}
    ).json()
    assert signed_in["user_id"] == user["id"]
    me = http.get(f"{users.url}/api/me", headers={"Authorization": f"Bearer {signed_in['token']}"})
    assert me.json() == user


def test_a_token_signed_with_another_key_is_unauthorized(
    http: httpx.Client, users: RunningService
) -> None:
    user = _sign_up(http, users)
    forged = TokenSigner("some-other-signing-key-0123456789abcdef").issue(user["id"])
    response = http.get(f"{users.url}/api/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_an_event_is_not_recorded_when_its_change_does_not_commit(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path, "users") as database_url:
        upgrade("users", database_url)
        engine = make_engine(database_url)
        passwords = Passwords(time_cost=1, memory_cost_kib=1024)
        request = SignUp(
            username="ann", email="ann@example.org", password=PASSWORD, display_name="A"
        )
        with Session(engine) as db:
            user_id = service.sign_up(db, passwords, request).id

        def refuse(_: Session) -> None:
            raise RuntimeError("the database went away at commit")

        with Session(engine) as db:
            event.listen(db, "before_commit", refuse)
            with pytest.raises(RuntimeError):
                service.change_profile(db, user_id, user_id, ProfileChange(display_name="Annie"))
        with Session(engine) as db:
            assert db.get_one(User, user_id).display_name == "A"
            assert db.scalars(select(outbox.c.topic)).all() == ["users.user_registered"]
        engine.dispose()
