"""Turning raw request bytes into a validated contract model, with the contract's errors.

Every implementation parses bodies through `parse_body`, so the same bad input gets the same
problem everywhere: 413 over 1 MiB, 400 for bytes that are not UTF-8 JSON, 422 naming each field.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from strangler.plumbing.errors import (
    MAX_BODY_BYTES,
    BadRequest,
    FieldError,
    PayloadTooLarge,
    ValidationFailed,
)

Model = TypeVar("Model", bound=BaseModel)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(raw: bytes) -> Any:
    """Decode a JSON document strictly: UTF-8 only, no NaN/Infinity, bounded size and depth."""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest("the body is not valid UTF-8") from error
    if not text.strip():
        raise BadRequest("a JSON body is required")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as error:
        raise BadRequest("the JSON body is nested too deeply") from error
    except ValueError as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from error


def field_errors(error: ValidationError) -> list[FieldError]:
    """Pydantic's errors as the contract's `[{field, message}]`, in a stable order."""
    found = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        field = ".".join(str(part) for part in item["loc"]) or "body"
        message = item["msg"].removeprefix("Value error, ")
        found.append(FieldError(field, message))
    return found


def validate(model: type[Model], document: Any) -> Model:
    """Validate a decoded JSON document against a contract model, or raise a 422."""
    if not isinstance(document, dict):
        raise ValidationFailed([FieldError("body", "must be a JSON object")])
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise ValidationFailed(field_errors(error)) from error


def parse_body(model: type[Model], raw: bytes) -> Model:
    """Decode and validate in one step: what an endpoint with a JSON body calls."""
    return validate(model, decode_json(raw))
