"""TOML files validated into typed models, with every problem pointing at a line of the file.

The route table and the stage files are data under version control; a person editing one needs
`stages/stage3.toml:41: routes.6.mode: ...`, not a traceback. `tomllib` keeps no positions, so
`TomlLines` finds them by scanning the text. This module must never read files or know what the
documents mean.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)|\(at end of document\)")

Model = TypeVar("Model", bound=BaseModel)


class TomlProblems(ValueError):
    """A document that cannot be used, with one `source:line: where: message` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """The TOML document, or TomlProblems naming the line where it stops being TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = _TOML_POSITION.search(str(error))
        line = int(found.group(1)) if found and found.group(1) else max(1, len(text.splitlines()))
        message = _TOML_POSITION.sub("", str(error)).strip()
        raise TomlProblems([f"{source}:{line}: not valid TOML: {message}"]) from error


def validation_problems(
    error: ValidationError, lines: TomlLines, source: str, location_hint: Any = None
) -> list[str]:
    """One `source:line: where: message` per pydantic error; `location_hint(message)` may name a
    location for a model-level error (e.g. `route #3` -> ('routes', 2))."""
    problems = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        location = tuple(item["loc"])
        if not location and location_hint is not None:
            location = location_hint(item["msg"]) or ()
        where = ".".join(str(part) for part in location) or "document"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{source}:{lines.line_of(location)}: {where}: {message}")
    return problems


def load_model(text: str, model: type[Model], source: str) -> Model:
    """Parse TOML text and validate it into `model`, or raise TomlProblems naming lines."""
    document = parse_toml(text, source)
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise TomlProblems(validation_problems(error, TomlLines(text), source)) from error


class TomlLines:
    """Maps a validation location like ('routes', 2, 'mode') to a line of the TOML text.

    tomllib keeps no positions, so this scans headers (`[[routes]]`, `[routes.analysis]`,
    `[[routes.shadow_ignore]]`) and `key =` lines; good enough to point a human at the problem.
    """

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(?:#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")

    def __init__(self, text: str) -> None:
        self.entries: list[tuple[int, tuple[Any, ...]]] = []
        counters: dict[str, int] = {}
        prefix: tuple[Any, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                prefix = self._header_path(header.group(1) == "[[", header.group(2), counters)
                self.entries.append((number, prefix))
                continue
            key = self._KEY.match(line)
            if key:
                self.entries.append((number, (*prefix, key.group(1))))

    @staticmethod
    def _header_path(is_array: bool, dotted: str, counters: dict[str, int]) -> tuple[Any, ...]:
        parts = [part.strip().strip("\"'") for part in dotted.split(".")]
        path: list[Any] = []
        for depth, part in enumerate(parts):
            path.append(part)
            key = ".".join(str(piece) for piece in path)
            is_last = depth == len(parts) - 1
            if is_last and is_array:
                counters[key] = counters.get(key, -1) + 1
                for stale in [name for name in counters if name.startswith(key + ".")]:
                    del counters[stale]
                path.append(counters[key])
            elif key in counters:
                path.append(counters[key])
        return tuple(path)

    def line_of(self, location: tuple[Any, ...]) -> int:
        """The line whose path is the longest prefix of `location` (1 when nothing matches)."""
        best_line, best_length = 1, -1
        for number, path in self.entries:
            is_prefix = len(path) <= len(location) and location[: len(path)] == path
            if is_prefix and len(path) > best_length:
                best_line, best_length = number, len(path)
        return best_line
