"""HTTP layer of the users context (docs/openapi.yaml, users). No SQL here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from contract.pagination import id_after, keyset_page
from contract.requests import ProfileChange, SignIn, SignUp
from monolith import database
from monolith.auth import current_user_id, signer
from monolith.models import User
from monolith.users import service
from monolith.web import body, page, passwords
from strangler.plumbing.clock import to_iso

blueprint = Blueprint("users", __name__)


def present(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "bio": user.bio,
        "created_at": to_iso(user.created_at),
    }


@blueprint.post("/api/users")
def sign_up() -> tuple[dict[str, Any], int]:
    user = service.sign_up(database.session(), passwords(), body(SignUp))
    return present(user), 201


@blueprint.post("/api/sessions")
def sign_in() -> dict[str, Any]:
    user = service.sign_in(database.session(), passwords(), body(SignIn))
    return {"token": signer().issue(user.id), "user_id": user.id}


@blueprint.get("/api/users/<id:user_id>")
def get_user(user_id: int) -> dict[str, Any]:
    return present(service.get_user(database.session(), user_id))


@blueprint.get("/api/users")
def list_users() -> dict[str, Any]:
    request_page = page()
    users = service.list_users(database.session(), id_after(request_page), request_page.limit)
    return keyset_page(users, request_page.limit, present)


@blueprint.patch("/api/users/<id:user_id>")
def change_profile(user_id: int) -> dict[str, Any]:
    actor_id = current_user_id()
    change = body(ProfileChange)
    return present(service.change_profile(database.session(), actor_id, user_id, change))


@blueprint.get("/api/me")
def me() -> dict[str, Any]:
    # The monolith answers /api/me only while it owns users: no row is ever on its way then.
    return present(service.signed_in_user(database.session(), current_user_id(), patience=0))
