"""HTTP layer of the template service: `POST /api/notes`, `GET /api/notes[/{id}]`. No SQL here.

Endpoints are async: they check the token and read the body on the event loop, then run the
synchronous domain code in the thread pool with one session per request. Checks come in the
contract's order: 401, then the body (400/413/422), then 404, then the domain's rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from extracted._template import service
from extracted._template.models import Note
from plumbing.clock import to_iso
from plumbing.fastapi import body
from plumbing.pagination import PageRequest, id_after, keyset_page, parse_page
from plumbing.tokens import TokenSigner, bearer_token

Result = TypeVar("Result")

router = APIRouter()


def present(note: Note) -> dict[str, Any]:
    return {
        "id": note.id,
        "text": note.text,
        "author_id": note.author_id,
        "created_at": to_iso(note.created_at),
    }


async def in_session(request: Request, work: Callable[[Session], Result]) -> Result:
    """Run `work` with a fresh session in the thread pool; the session closes afterwards."""
    sessions: sessionmaker[Session] = request.app.state.sessions

    def run() -> Result:
        with sessions() as db:
            return work(db)

    return await run_in_threadpool(run)


def caller_id(request: Request) -> int:
    """The user id of the request's valid bearer token, or Unauthorized (401)."""
    signer: TokenSigner = request.app.state.signer
    return signer.verify(bearer_token(request.headers.get("authorization")))


def page(request: Request) -> PageRequest:
    # The first value of a repeated parameter wins, as in the monolith (werkzeug).
    query = dict(reversed(request.query_params.multi_items()))
    return parse_page(query)


@router.post("/api/notes")
async def write_note(request: Request) -> JSONResponse:
    author_id = caller_id(request)
    new_note = await body(request, service.NewNote)
    note = await in_session(
        request, lambda db: present(service.write_note(db, author_id, new_note))
    )
    return JSONResponse(note, status_code=201)


@router.get("/api/notes/{note_id:id}")
async def get_note(request: Request, note_id: int) -> JSONResponse:
    return JSONResponse(
        await in_session(request, lambda db: present(service.get_note(db, note_id)))
    )


@router.get("/api/notes")
async def list_notes(request: Request) -> JSONResponse:
    wanted = page(request)
    before = id_after(wanted)
    notes = await in_session(
        request,
        lambda db: keyset_page(service.list_notes(db, before, wanted.limit), wanted.limit, present),
    )
    return JSONResponse(notes)
