"""Edits `strangler new service` makes to a workspace file's text, keeping every comment.

The context's `[contexts.NAME.service]` table goes right after the context's own lines, and a
`[[stages]]` entry extracting it after the last stage (before one that retires the monolith).
The edited text is checked against the workspace model before anyone writes it. This module
must never write a file.
"""

from __future__ import annotations

import re
import tomllib

from strangler.plumbing.toml_document import load_toml
from strangler.workspace.model import WorkspaceFile

_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(?:#.*)?$")


class EditError(ValueError):
    """The file cannot take the edit; the message says why."""


def _headers(lines: list[str]) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(lines):
        match = _HEADER.match(line)
        if match:
            found.append((number, match.group(1).replace('"', "").replace("'", "")))
    return found


def _block_end(lines: list[str], after: int) -> int:
    """Where the block starting at line `after` ends: before the next header, and before the
    comment lines just above that header (they introduce it)."""
    following = next((n for n, _ in _headers(lines) if n > after), len(lines))
    end = following
    while end - 1 > after and lines[end - 1].lstrip().startswith("#"):
        end -= 1
    while end - 1 > after and not lines[end - 1].strip():
        end -= 1
    return end


def add_service(text: str, context: str, service_lines: list[str], stage_lines: list[str]) -> str:
    """The file with the context's service table and its stage added."""
    document = tomllib.loads(text)
    contexts = document.get("contexts", {})
    if context not in contexts:
        raise EditError(f"strangler.toml has no context {context!r}")
    if "service" in contexts[context]:
        raise EditError(f"the context {context} has a service already")
    lines = text.splitlines()
    header = next((n for n, name in _headers(lines) if name == f"contexts.{context}"), None)
    if header is None:
        raise EditError(
            f"the context {context} is not written as a [contexts.{context}] table; add its"
            " service by hand"
        )
    end = _block_end(lines, header)
    lines[end:end] = ["", *service_lines]
    lines = _with_stage(lines, document, stage_lines)
    edited = "\n".join(lines).rstrip("\n") + "\n"
    WorkspaceFile.model_validate(load_toml(edited, "strangler.toml"))
    return edited


def _with_stage(lines: list[str], document: dict[str, object], stage_lines: list[str]) -> list[str]:
    stages = [n for n, name in _headers(lines) if name == "stages"]
    existing = document.get("stages", [])
    retiring = isinstance(existing, list) and bool(existing) and existing[-1].get("retire_monolith")
    if retiring:
        place = _comment_start(lines, stages[-1])
    elif stages:
        place = _block_end(lines, stages[-1])
    else:
        place = next((n for n, name in _headers(lines) if name in ("check", "routes")), len(lines))
        place = _comment_start(lines, place) if place < len(lines) else place
    return [*lines[:place], *stage_lines, "", *lines[place:]]


def _comment_start(lines: list[str], header: int) -> int:
    start = header
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    return start
