"""HTTP layer of the users service (docs/openapi.yaml, users). No SQL here.

Endpoints are async. A read runs right on the event loop, one prebuilt Core query on the
loop's own connection (`read`): a worker thread and a Session would cost more than the query.
A write checks the token and reads the body on the loop, then runs the domain in a worker
thread with one session (`in_session`), since it may wait for a lock or hash a password.
Checks come in the contract's order: 401, then the body (400/413/422), then 404, then
403/409/422.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Request

from contract.pagination import id_after, keyset_page, page
from contract.passwords import Passwords
from contract.requests import ProfileChange, SignIn, SignUp
from extracted.users import service
from extracted.users.models import User
from strangler.plumbing.clock import to_iso
from strangler.plumbing.fastapi import JSONResponse, body, caller_id, in_session, read
from strangler.plumbing.tokens import TokenSigner

Result = TypeVar("Result")

router = APIRouter()


def present(user: User | service.UserView) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "bio": user.bio,
        "created_at": to_iso(user.created_at),
    }


@router.post("/api/users")
async def sign_up(request: Request) -> JSONResponse:
    passwords: Passwords = request.app.state.passwords
    new_user = await body(request, SignUp)
    user = await in_session(request, lambda db: present(service.sign_up(db, passwords, new_user)))
    return JSONResponse(user, status_code=201)


@router.post("/api/sessions")
async def sign_in(request: Request) -> JSONResponse:
    passwords: Passwords = request.app.state.passwords
    signer: TokenSigner = request.app.state.signer
    credentials = await body(request, SignIn)
    user_id = await in_session(request, lambda db: service.sign_in(db, passwords, credentials).id)
    return JSONResponse({"token": signer.issue(user_id), "user_id": user_id})


@router.get("/api/users/{user_id:id}")
async def get_user(request: Request, user_id: int) -> JSONResponse:
    return JSONResponse(read(request, lambda db: present(service.get_user(db, user_id))))


@router.get("/api/users")
async def list_users(request: Request) -> JSONResponse:
    wanted = page(request)
    after = id_after(wanted)
    users = read(
        request,
        lambda db: keyset_page(service.list_users(db, after, wanted.limit), wanted.limit, present),
    )
    return JSONResponse(users)


@router.patch("/api/users/{user_id:id}")
async def change_profile(request: Request, user_id: int) -> JSONResponse:
    actor_id = caller_id(request)
    change = await body(request, ProfileChange)
    user = await in_session(
        request, lambda db: present(service.change_profile(db, actor_id, user_id, change))
    )
    return JSONResponse(user)


@router.get("/api/me")
async def me(request: Request) -> JSONResponse:
    actor_id = caller_id(request)
    return JSONResponse(read(request, lambda db: present(service.signed_in_user(db, actor_id))))
