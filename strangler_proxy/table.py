"""The route table as data: its file format (TOML), its typed models and its validation.

A table names upstreams, lists routes (method set + path template -> context, mode, timeouts,
fallback, shadow ignore rules, canary analysis) and is validated as a whole; every problem is
reported with the line of the file it comes from. This module must never perform network I/O
nor decide where a live request goes (that is `routing`).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from strangler.plumbing.toml_document import DocumentError, LineLocator, load_toml

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
MONOLITH = "monolith"
_ROUTE_NUMBER = re.compile(r"route #(\d+)")
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TEMPLATE_SEGMENT = re.compile(r"(?:[A-Za-z0-9._~:@!$&'()*+,;=-]|\{[A-Za-z_][A-Za-z0-9_]*\})+")


class Mode(StrEnum):
    """Who answers a route: the monolith, the monolith with a shadow copy, a split, the service."""

    MONOLITH = "monolith"
    SHADOW = "shadow"
    CANARY = "canary"
    SERVICE = "service"


class Fallback(StrEnum):
    """What a safe request does when the service fails: retry on the monolith, or fail."""

    MONOLITH = "monolith"
    NONE = "none"


class DataOwner(StrEnum):
    """Who owns a context's data, and so takes its writes."""

    MONOLITH = "monolith"
    SERVICE = "service"

    def other(self) -> DataOwner:
        return DataOwner.SERVICE if self is DataOwner.MONOLITH else DataOwner.MONOLITH


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IgnoreRule(StrictModel):
    """A JSON field the shadow comparison ignores (`items.*.created_at`), and why."""

    field: Annotated[str, Field(min_length=1, max_length=200)]
    reason: Annotated[str, Field(min_length=3, max_length=300)]


class Analysis(StrictModel):
    """Automatic canary analysis: the percentages to step through and the limits to stay in."""

    steps: Annotated[list[float], Field(min_length=1, max_length=20)] = [1, 10, 50, 100]
    min_requests: Annotated[int, Field(ge=1)] = 20
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_p95_ratio: Annotated[float, Field(gt=0)] = 1.5
    max_mismatch_rate: Annotated[float, Field(ge=0, le=1)] = 0.01

    @field_validator("steps")
    @classmethod
    def _rising_percentages(cls, steps: list[float]) -> list[float]:
        if any(not 0 < step <= 100 for step in steps):
            raise ValueError("every step must be a percentage in (0, 100]")
        if steps != sorted(set(steps)):
            raise ValueError("steps must rise strictly")
        return steps


class Route(StrictModel):
    """One entry of the table: which requests it covers and how they are served."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")]
    methods: Annotated[list[str], Field(min_length=1)]
    path: Annotated[str, Field(min_length=1, max_length=300)]
    context: str = MONOLITH
    mode: Mode = Mode.MONOLITH
    canary_percent: Annotated[float, Field(ge=0, le=100)] = 0
    active: bool = True
    connect_timeout: Annotated[float, Field(gt=0, le=60)] | None = None
    read_timeout: Annotated[float, Field(gt=0, le=600)] | None = None
    fallback: Fallback = Fallback.MONOLITH
    data_owner: DataOwner | None = None
    # The upstream of its service side when not the one named after its context: a context
    # served by functions and a bucket of pages has two (`polls`, `polls-pages`).
    upstream: Annotated[str, Field(min_length=1)] | None = None
    shadow_ignore: list[IgnoreRule] = []
    analysis: Analysis | None = None

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: list[str]) -> list[str]:
        upper = [method.upper() for method in methods]
        unknown = sorted(set(upper) - KNOWN_METHODS - {"*"})
        if unknown:
            raise ValueError(f"unknown HTTP methods {unknown}")
        if "*" in upper and len(upper) > 1:
            raise ValueError("'*' means every method and stands alone")
        return sorted(set(upper))

    @field_validator("path")
    @classmethod
    def _template(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError("a path template starts with '/'")
        if path == "/":
            return path
        segments = path.strip("/").split("/")
        for segment in segments:
            if not _TEMPLATE_SEGMENT.fullmatch(segment):
                raise ValueError(f"bad path segment {segment!r}")
        names = _PARAMETER.findall(path)
        if len(names) != len(set(names)):
            raise ValueError("a parameter name is used twice")
        return path

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        unsafe = set(self.methods) - SAFE_METHODS
        if self.mode in (Mode.SHADOW, Mode.CANARY) and unsafe:
            raise ValueError(
                f"mode {self.mode.value} only serves safe methods; writes move at cutover"
                f" (remove {sorted(unsafe)} or use mode service)"
            )
        if self.mode is not Mode.MONOLITH and self.context == MONOLITH:
            raise ValueError(f"mode {self.mode.value} needs a service context, not the monolith")
        if self.analysis is not None and self.mode is not Mode.CANARY:
            raise ValueError("analysis only applies to mode canary")
        return self

    @property
    def owner(self) -> DataOwner:
        """Who owns this route's data: stated, else the service once it serves alone."""
        if self.data_owner is not None:
            return self.data_owner
        return DataOwner.SERVICE if self.mode is Mode.SERVICE else DataOwner.MONOLITH

    @property
    def service_upstream(self) -> str:
        """The upstream its service side is."""
        return self.upstream or self.context

    @property
    def is_wildcard_method(self) -> bool:
        return self.methods == ["*"]


FUNCTION = "function:"
BUCKET = "bucket:"
_FUNCTION_TARGET = re.compile(r"^function:[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_BUCKET_TARGET = re.compile(r"^bucket:[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^/].*$")


def target_problem(url: str) -> str | None:
    """What is wrong with a `function:` or `bucket:` upstream, or None."""
    if url.startswith(FUNCTION) and not _FUNCTION_TARGET.match(url):
        return f"{url!r}: a function is `function:package.module:handler`"
    if url.startswith(BUCKET) and not _BUCKET_TARGET.match(url):
        return f"{url!r}: a bucket target is `bucket:NAME/key/template/{{name}}.html`"
    return None


class RouteTable(StrictModel):
    """A whole table: upstream URLs known to the file, default ignore rules, and routes."""

    # An app's URL, or a function (`function:module:handler`) or bucket (`bucket:NAME/KEY`).
    upstreams: dict[str, Annotated[str, Field(pattern=r"^(https?://|function:|bucket:)")]] = {}
    shadow_ignore: list[IgnoreRule] = []
    # The upstream answering requests no route matches; a service once the monolith retires.
    unmatched: Annotated[str, Field(min_length=1)] = MONOLITH
    routes: list[Route] = []

    @field_validator("upstreams")
    @classmethod
    def _targets(cls, upstreams: dict[str, str]) -> dict[str, str]:
        for url in upstreams.values():
            problem = target_problem(url)
            if problem is not None:
                raise ValueError(problem)
        return upstreams

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names: set[str] = set()
        keys: set[tuple[str, str]] = set()
        for number, route in enumerate(self.routes, start=1):
            if route.name in names:
                raise ValueError(f"route #{number}: name {route.name!r} is used twice")
            names.add(route.name)
            shape = _PARAMETER.sub("{}", route.path.rstrip("/") or "/").lower()
            for method in route.methods:
                if (method, shape) in keys:
                    raise ValueError(f"route #{number}: {method} {route.path} is claimed twice")
                keys.add((method, shape))
        return self

    def route(self, name: str) -> Route | None:
        return next((route for route in self.routes if route.name == name), None)

    def contexts(self) -> set[str]:
        return {route.context for route in self.routes}


class TableError(ValueError):
    """A table that cannot be used, with one message per problem naming its line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_table(
    text: str, source: str = "<table>", known_upstreams: Collection[str] = ()
) -> RouteTable:
    """Parse and validate TOML text into a RouteTable, or raise TableError naming lines.

    `known_upstreams` are the upstream names configured outside the file (settings); a route
    whose context is neither there nor in the file's `[upstreams]` is an error.
    """
    try:
        document = load_toml(text, source)
    except DocumentError as error:
        raise TableError(error.problems) from error
    try:
        table = RouteTable.model_validate(document)
    except ValidationError as error:
        locator = LineLocator(text)
        problems = []
        for item in error.errors(include_url=False, include_input=False, include_context=False):
            location = tuple(item["loc"])
            numbered = _ROUTE_NUMBER.search(item["msg"])
            if not location and numbered:
                location = ("routes", int(numbered.group(1)) - 1)
            line = locator.line_of(location)
            where = ".".join(str(part) for part in location) or "table"
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{source}:{line}: {where}: {message}")
        raise TableError(problems) from error
    missing = unknown_contexts(table, known_upstreams)
    if missing:
        locator = LineLocator(text)
        raise TableError(
            [
                f"{source}:{locator.line_of(location)}: {'.'.join(map(str, location))}:"
                f" no upstream URL is configured for context {context!r}"
                for location, context in missing
            ]
        )
    return table


def unknown_contexts(
    table: RouteTable, known_upstreams: Collection[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """(location, context) of every place sending traffic to a context with no URL: a route's
    `context`, or the table's `unmatched`.

    A route in mode `monolith` only names its future context, so it needs no URL yet.
    """
    known = {MONOLITH, *known_upstreams, *table.upstreams}
    missing: list[tuple[tuple[str | int, ...], str]] = [
        (("routes", index, "upstream" if route.upstream else "context"), route.service_upstream)
        for index, route in enumerate(table.routes)
        if route.mode is not Mode.MONOLITH and route.service_upstream not in known
    ]
    if table.unmatched not in known:
        missing.append((("unmatched",), table.unmatched))
    return missing


def validate_document(document: dict[str, Any], known_upstreams: Collection[str]) -> RouteTable:
    """Validate a table given as data (an admin change), or raise TableError (no lines here)."""
    try:
        table = RouteTable.model_validate(document)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False, include_input=False, include_context=False):
            where = ".".join(str(part) for part in item["loc"]) or "table"
            problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
        raise TableError(problems) from error
    missing = unknown_contexts(table, known_upstreams)
    if missing:
        raise TableError(
            [
                f"{'.'.join(map(str, location))}: no upstream URL for {context!r}"
                for location, context in missing
            ]
        )
    return table


def table_document(table: RouteTable) -> dict[str, Any]:
    """The table as plain JSON-able data (what the admin API serves)."""
    return table.model_dump(mode="json", exclude_none=True)
