"""The one exception hierarchy of the project and its RFC 9457 problem+json form.

Domain code raises these; each web framework translates them in exactly one place
(`strangler.plumbing.flask`, `strangler.plumbing.fastapi`). Nothing here knows about HTTP
frameworks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

PROBLEM_CONTENT_TYPE = "application/problem+json"
# The contract's body limit: past it a request is a 413, whoever answers.
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FieldError:
    """One invalid field of a request: where it is and what is wrong with it."""

    field: str
    message: str


class AppError(Exception):
    """Base of every error a client may see; carries its HTTP status and problem type."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 body of this error."""
        return problem_body(self.status, self.slug, self.title, self.detail)


class BadRequest(AppError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(AppError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class ValidationFailed(AppError):
    status, slug, title = 422, "validation", "Validation failed"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors

    def problem(self) -> dict[str, Any]:
        body = super().problem()
        body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return body


class NotImplementedYet(AppError):
    """A route a scaffolded service declares but whose handler is still to be written."""

    status, slug, title = 501, "not-implemented", "Not implemented yet"


class ServiceUnavailable(AppError):
    status, slug, title = 503, "unavailable", "Service unavailable"


def problem_body(status: int, slug: str, title: str, detail: str) -> dict[str, Any]:
    """Build a problem+json body; `type` is a stable URN per kind of problem."""
    return {
        "type": f"urn:strangler:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }


def invalid(field: str, message: str) -> ValidationFailed:
    """A 422 for a single field, the common case in domain checks."""
    return ValidationFailed([FieldError(field, message)])


_ROUTING_PROBLEMS = {
    400: ("bad-request", "Bad Request"),
    404: ("not-found", "Not Found"),
    405: ("method-not-allowed", "Method Not Allowed"),
    413: ("payload-too-large", PayloadTooLarge.title),
}


def routing_problem(status: int, method: str, path: str, title: str, detail: str) -> dict[str, Any]:
    """The body of an error a web framework raised before our code ran (unknown path, wrong
    method, body too large), worded the same whichever framework raised it; `title` and
    `detail` are the framework's own, used for any other status."""
    slug, title = _ROUTING_PROBLEMS.get(status, ("http-error", title))
    detail = {
        404: f"no resource at {path}",
        405: f"{method} is not allowed on {path}",
        413: f"the body is larger than {MAX_BODY_BYTES} bytes",
    }.get(status, detail)
    return problem_body(status, slug, title, detail)
