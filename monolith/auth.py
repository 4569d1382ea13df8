"""Who is calling: the bearer token of the current Flask request, verified."""

from __future__ import annotations

from flask import current_app, request

from strangler.plumbing.tokens import TokenSigner, bearer_token


def signer() -> TokenSigner:
    return current_app.extensions["token_signer"]  # type: ignore[no-any-return]


def current_user_id() -> int:
    """The user id of a valid bearer token, or Unauthorized (401)."""
    return signer().verify(bearer_token(request.headers.get("Authorization")))
