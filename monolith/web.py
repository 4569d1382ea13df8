"""Small helpers the monolith's blueprints share: the request body, the page request."""

from __future__ import annotations

from typing import TypeVar

from flask import current_app, request
from pydantic import BaseModel

from contract.pagination import PageRequest, parse_page
from contract.passwords import Passwords
from strangler.plumbing.bodies import parse_body

Model = TypeVar("Model", bound=BaseModel)


def body(model: type[Model]) -> Model:
    """The request's JSON body validated as `model` (400/413/422 otherwise)."""
    return parse_body(model, request.get_data(cache=False))


def page() -> PageRequest:
    return parse_page(request.args)


def passwords() -> Passwords:
    return current_app.extensions["passwords"]  # type: ignore[no-any-return]
