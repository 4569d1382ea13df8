"""HTTP basic auth for the librarian: every write needs it, reads do not."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, jsonify, request

USER = "librarian"


def librarian_only(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        given = request.authorization
        password = current_app.config["LIBRARIAN_PASSWORD"]
        if (
            given is None
            or given.type != "basic"
            or given.username != USER
            or not hmac.compare_digest(str(given.password), password)
        ):
            answer = jsonify(error="sign in as the librarian")
            answer.status_code = 401
            answer.headers["WWW-Authenticate"] = 'Basic realm="bookshelf"'
            return answer
        return view(*args, **kwargs)

    return checked
