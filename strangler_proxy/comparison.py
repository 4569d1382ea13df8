"""Comparing two JSON answers field by field, with ignore rules.

Fields are named by dotted paths (`items.0.created_at`); a rule names fields with `*` standing
for any one key or index (`items.*.created_at`) and matches that field and everything below it.
Pure functions only: this module must never perform I/O nor know where answers came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_INDEX = re.compile(r"^\d+$")


def differing_fields(expected: Any, actual: Any, prefix: str = "") -> list[str]:
    """The dotted paths where two JSON documents differ (a missing key is a difference)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[str] = []
        for key in sorted(set(expected) | set(actual), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in expected or key not in actual:
                found.append(path)
            else:
                found.extend(differing_fields(expected[key], actual[key], path))
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        found = []
        for index in range(max(len(expected), len(actual))):
            path = f"{prefix}.{index}" if prefix else str(index)
            if index >= len(expected) or index >= len(actual):
                found.append(path)
            else:
                found.extend(differing_fields(expected[index], actual[index], path))
        return found
    if type(expected) is not type(actual) or expected != actual:
        return [prefix or "$"]
    return []


def generalise(path: str) -> str:
    """A field path with list indices replaced by `*`, so one learned rule covers every item."""
    return ".".join("*" if _INDEX.match(part) else part for part in path.split("."))


def is_ignored(path: str, patterns: Iterable[str]) -> bool:
    """Whether a pattern covers this field or one of its parents."""
    parts = path.split(".")
    for pattern in patterns:
        wanted = pattern.split(".")
        if len(wanted) > len(parts):
            continue
        if all(want in ("*", part) for want, part in zip(wanted, parts, strict=False)):
            return True
    return False


def unexplained(expected: Any, actual: Any, patterns: Iterable[str]) -> list[str]:
    """The differing fields that no pattern explains."""
    rules = list(patterns)
    return [path for path in differing_fields(expected, actual) if not is_ignored(path, rules)]
