"""Members and their loans: plain routes on the app (no blueprint), pages and JSON."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import abort, jsonify, render_template, request
from sqlalchemy import select

from bookshelf import app
from bookshelf.auth import librarian_only
from bookshelf.models import Book, Loan, Member, db, now

LOAN_DAYS = 21


def _error(status: int, message: str) -> Any:
    answer = jsonify(error=message)
    answer.status_code = status
    return answer


def _loans_of(member: Member) -> list[Loan]:
    query = select(Loan).where(Loan.member_id == member.id).order_by(Loan.id)
    return list(db.session.scalars(query))


@app.get("/members/<uuid:member_id>")
def member_page(member_id: uuid.UUID) -> str:
    member = db.session.get(Member, member_id) or abort(404)
    return render_template("member.html", member=member, loans=_loans_of(member))


@app.post("/api/members")
@librarian_only
def add_member() -> Any:
    name = str((request.get_json(silent=True) or {}).get("name") or "")
    if not name:
        return _error(400, "a member needs a name")
    member = Member(name=name)
    db.session.add(member)
    db.session.commit()
    return jsonify(member.as_json()), 201


@app.get("/api/members/<uuid:member_id>")
def get_member(member_id: uuid.UUID) -> Any:
    member = db.session.get(Member, member_id)
    return jsonify(member.as_json()) if member else _error(404, "no such member")


@app.get("/api/members/<uuid:member_id>/loans")
def member_loans(member_id: uuid.UUID) -> Any:
    member = db.session.get(Member, member_id)
    if member is None:
        return _error(404, "no such member")
    return jsonify(items=[loan.as_json() for loan in _loans_of(member)])


@app.post("/api/loans")
@librarian_only
def lend() -> Any:
    body = request.get_json(silent=True) or {}
    try:
        member = db.session.get(Member, uuid.UUID(str(body.get("member_id"))))
    except ValueError:
        member = None
    book = db.session.get(Book, str(body.get("isbn") or ""))
    if member is None or book is None:
        return _error(404, "no such member or book")
    loan = Loan(member_id=member.id, isbn=book.isbn, due_on=(now() + timedelta(LOAN_DAYS)).date())
    db.session.add(loan)
    db.session.commit()
    return jsonify(loan.as_json()), 201


@app.get("/health")
def health() -> Any:
    """For the load balancer: the database answers."""
    db.session.execute(select(1))
    return jsonify(status="ok")
