"""HTTP layer of the polls context (docs/openapi.yaml, polls). No SQL here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from contract.requests import NewPoll, NewVote
from monolith import database
from monolith.auth import current_user_id
from monolith.models import Poll
from monolith.polls import service
from monolith.web import body
from strangler.plumbing.clock import to_iso

blueprint = Blueprint("polls", __name__)


def present_poll(poll: Poll) -> dict[str, Any]:
    return {
        "id": poll.id,
        "question": poll.question,
        "options": [{"id": option.id, "text": option.text} for option in poll.options],
        "author_id": poll.author_id,
        "created_at": to_iso(poll.created_at),
    }


def present_results(results: service.Results) -> dict[str, Any]:
    return {
        "poll_id": results.poll_id,
        "total": results.total,
        "options": [{"id": o.id, "text": o.text, "votes": o.votes} for o in results.options],
        "as_of": to_iso(results.as_of),
    }


@blueprint.post("/api/polls")
def create_poll() -> tuple[dict[str, Any], int]:
    author_id = current_user_id()
    return present_poll(service.create_poll(database.session(), author_id, body(NewPoll))), 201


@blueprint.get("/api/polls/<id:poll_id>")
def get_poll(poll_id: int) -> dict[str, Any]:
    return present_poll(service.get_poll(database.session(), poll_id))


@blueprint.post("/api/polls/<id:poll_id>/votes")
def vote(poll_id: int) -> tuple[dict[str, Any], int]:
    user_id = current_user_id()
    ballot = service.vote(database.session(), user_id, poll_id, body(NewVote))
    return {
        "poll_id": ballot.poll_id,
        "option_id": ballot.option_id,
        "user_id": ballot.user_id,
    }, 201


@blueprint.get("/api/polls/<id:poll_id>/results")
def results(poll_id: int) -> dict[str, Any]:
    return present_results(service.results(database.session(), poll_id))


@blueprint.get("/results/<id:poll_id>.html")
def results_page(poll_id: int) -> str:
    results = service.results(database.session(), poll_id)
    return render_template("results.html", results=results, as_of=to_iso(results.as_of))
