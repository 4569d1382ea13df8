"""TOML documents that remember their lines: parse them, and point a problem at its line.

The project's data files (route tables, load scenarios) are TOML, validated into typed models;
a person fixing one needs `file:line: field: message`, and tomllib keeps no positions. This
module parses and locates; it must never know what any document means.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from pydantic import ValidationError

_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)|\(at end of document\)")


class DocumentError(ValueError):
    """A document that cannot be used, with one message per problem naming its line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_toml(text: str, source: str) -> dict[str, Any]:
    """Parse TOML text, or raise DocumentError naming the line tomllib stopped at."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = _TOML_POSITION.search(str(error))
        line = int(found.group(1)) if found and found.group(1) else max(1, len(text.splitlines()))
        message = _TOML_POSITION.sub("", str(error)).strip()
        raise DocumentError([f"{source}:{line}: not valid TOML: {message}"]) from error


def validation_problems(error: ValidationError, text: str, source: str) -> list[str]:
    """One `source:line: field.path: message` per problem pydantic found in the document."""
    locator = LineLocator(text)
    problems = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        location = tuple(item["loc"])
        where = ".".join(str(part) for part in location) or "document"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{source}:{locator.line_of(location)}: {where}: {message}")
    return problems


class LineLocator:
    """Maps a validation location like ('routes', 2, 'mode') to a line of the TOML text.

    It scans headers (`[[routes]]`, `[routes.analysis]`, `[[routes.shadow_ignore]]`) and
    `key =` lines: good enough to point a human at the problem.
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
