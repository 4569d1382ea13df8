"""Notes: write one, read one, list them. Domain logic over a Session; no web framework.

Each change records its event in the outbox within the change's own transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from contract.requests import ContractModel, Text
from extracted._template import events
from extracted._template.models import Note, outbox
from strangler.events.outbox import record
from strangler.plumbing.errors import NotFound


class NewNote(ContractModel):
    """The request body of `POST /api/notes`.

    A real context's bodies are part of the public contract and live in `contract.requests`,
    shared with the monolith; the toy resource has no monolith counterpart.
    """

    text: Text(1, 500)  # type: ignore[valid-type]


def write_note(db: Session, author_id: int, request: NewNote) -> Note:
    note = Note(text=request.text, author_id=author_id)
    db.add(note)
    db.flush()  # the id and created_at the event carries
    record(db, outbox, events.NOTE_WRITTEN, note.id, dict(events.note_written(note)))
    db.commit()
    return note


class NoteView(NamedTuple):
    """A note as a read shows it."""

    id: int
    text: str
    author_id: int
    created_at: datetime


# Reads are Core statements built once and run on a plain connection on the event loop: no
# Session, no identity map, no statement built per request. Writes keep the ORM and a Session
# in the thread pool (docs/services.md, "making a service fast").
_NOTES = select(Note.id, Note.text, Note.author_id, Note.created_at)
_NOTE = _NOTES.where(Note.id == bindparam("note_id"))
_NOTES_BEFORE = (
    _NOTES.where(Note.id < bindparam("before_id"))
    .order_by(Note.id.desc())
    .limit(bindparam("limit"))
)
# Past every id: the cursor of a newest-first list's first page.
_NO_ID_YET = 2**63 - 1


def get_note(db: Connection, note_id: int) -> NoteView:
    row = db.execute(_NOTE, {"note_id": note_id}).first()
    if row is None:
        raise NotFound(f"note {note_id} does not exist")
    return NoteView._make(row)


def list_notes(db: Connection, before_id: int | None, limit: int) -> list[NoteView]:
    """Newest first; one row more than asked, so the caller knows if there is a next page."""
    page = {"before_id": _NO_ID_YET if before_id is None else before_id, "limit": limit + 1}
    return [NoteView._make(row) for row in db.execute(_NOTES_BEFORE, page)]
