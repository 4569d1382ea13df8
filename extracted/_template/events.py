"""The events the template service publishes (through its outbox) and their payloads.

It consumes none. `template.note_written` tells whoever needs notes (nobody yet) about a new one.
Adding a field is compatible; removing or renaming one needs a new topic.
"""

from __future__ import annotations

from typing import TypedDict

from extracted._template.models import Note
from strangler.plumbing.clock import to_iso

NOTE_WRITTEN = "template.note_written"


class NoteWritten(TypedDict):
    id: int
    text: str
    author_id: int
    created_at: str


def note_written(note: Note) -> NoteWritten:
    return NoteWritten(
        id=note.id, text=note.text, author_id=note.author_id, created_at=to_iso(note.created_at)
    )
