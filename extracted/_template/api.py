"""HTTP layer of the template service: `POST /api/notes`, `GET /api/notes[/{id}]`. No SQL here.

Endpoints are async. A read runs right on the event loop, one prebuilt Core query on the
loop's own connection (`read`): a worker thread and a Session would cost more than the query.
A write checks the token and reads the body on the loop, then runs the domain in a worker
thread with one session (`in_session`), since it may wait for a lock. Checks come in the
contract's order: 401, then the body (400/413/422), then 404, then the domain's rules.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Request

from contract.pagination import id_after, keyset_page, page
from extracted._template import service
from extracted._template.models import Note
from strangler.plumbing.clock import to_iso
from strangler.plumbing.fastapi import JSONResponse, body, caller_id, in_session, read

Result = TypeVar("Result")

router = APIRouter()


def present(note: Note | service.NoteView) -> dict[str, Any]:
    return {
        "id": note.id,
        "text": note.text,
        "author_id": note.author_id,
        "created_at": to_iso(note.created_at),
    }


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
    return JSONResponse(read(request, lambda db: present(service.get_note(db, note_id))))


@router.get("/api/notes")
async def list_notes(request: Request) -> JSONResponse:
    wanted = page(request)
    before = id_after(wanted)
    notes = read(
        request,
        lambda db: keyset_page(service.list_notes(db, before, wanted.limit), wanted.limit, present),
    )
    return JSONResponse(notes)
