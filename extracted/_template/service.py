"""Notes: write one, read one, list them. Domain logic over a Session; no web framework.

Each change records its event in the outbox within the change's own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
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


def get_note(db: Session, note_id: int) -> Note:
    note = db.get(Note, note_id)
    if note is None:
        raise NotFound(f"note {note_id} does not exist")
    return note


def list_notes(db: Session, before_id: int | None, limit: int) -> Sequence[Note]:
    """Newest first; one row more than asked, so the caller knows if there is a next page."""
    query = select(Note).order_by(Note.id.desc()).limit(limit + 1)
    if before_id is not None:
        query = query.where(Note.id < before_id)
    return db.scalars(query).all()
