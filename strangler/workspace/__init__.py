"""A workspace: a project described by its `strangler.toml`, loaded, validated and resolved.

`find_workspace()` reads `strangler.toml` from the current folder (or the file
`STRANGLER_WORKSPACE` names); without one, the bundled forum example's file, which stands at the
root of a checkout of this repository. Every error names the file and line. A loaded
`Workspace` answers what the rest of the toolkit asks: the contexts and their specs, each
database's URL variable and alembic folder, the stages (`migration()`), and the objects its
import paths name (with the workspace root importable, as in the user's own project). This
module must never start a process or open a database.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from strangler.plumbing.imports import resolve
from strangler.plumbing.toml_document import (
    DocumentError,
    LineLocator,
    load_toml,
    validation_problems,
)
from strangler.workspace.model import ContextSpec, DatabaseSpec, WorkspaceFile

if TYPE_CHECKING:
    from strangler.workspace.stages import Migration

FILENAME = "strangler.toml"
VARIABLE = "STRANGLER_WORKSPACE"
# A checkout of this repository: the toolkit's folder sits beside the bundled example's file.
BUNDLED = Path(__file__).resolve().parents[2] / FILENAME
BUS = "bus"
MONOLITH = "monolith"


class WorkspaceError(ValueError):
    """The workspace file cannot be used; one `file:line: where: message` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, eq=False)
class Workspace:
    """One project: its root folder, its workspace file, and what the file says."""

    root: Path
    file: Path
    spec: WorkspaceFile
    is_bundled: bool = False

    @property
    def contexts(self) -> dict[str, ContextSpec]:
        return self.spec.contexts

    @property
    def context_names(self) -> tuple[str, ...]:
        return tuple(self.spec.contexts)

    @property
    def databases(self) -> tuple[str, ...]:
        """Every database a system of this workspace has: the monolith's, each service's, and
        the embedded event bus's."""
        return (MONOLITH, *self.spec.contexts, BUS)

    def database(self, name: str) -> DatabaseSpec:
        if name == MONOLITH:
            return self.spec.monolith.database
        if name in self.spec.contexts:
            service = self.spec.contexts[name].service
            return DatabaseSpec() if service is None else service.database
        if name == BUS:
            return DatabaseSpec(url_variable="STRANGLER_BUS_URL")
        raise KeyError(f"no database named {name!r}; have {', '.join(self.databases)}")

    def url_variable(self, name: str) -> str:
        """The environment variable a process reads database `name`'s URL from."""
        return self.database(name).url_variable or f"{name.upper()}_DATABASE_URL"

    def alembic_folder(self, name: str) -> Path | None:
        """Database `name`'s alembic environment, if it has one."""
        folder = self.database(name).alembic
        return None if folder is None else (self.root / folder).resolve()

    def resolve(self, import_path: str) -> Any:
        """The object an import path (`package.module:attribute.attribute`) names, imported
        with the workspace root importable."""
        self.make_importable()
        return resolve(import_path)

    def make_importable(self) -> None:
        """Put the workspace root first on this process's import path (once)."""
        root = str(self.root)
        if root not in sys.path:
            sys.path.insert(0, root)

    def python_path(self) -> str:
        """PYTHONPATH for a child process: the workspace root before whatever was there."""
        current = os.environ.get("PYTHONPATH")
        return str(self.root) if not current else f"{self.root}{os.pathsep}{current}"

    def problem(self, path: tuple[str | int, ...], message: str) -> WorkspaceError:
        """A problem with the part of the file at `path` (`("contexts", "shop", "tables", 1)`),
        naming its line: `file:line: contexts.shop.tables.1: message`."""
        try:
            text = self.file.read_text(encoding="utf-8")
        except OSError:
            text = ""
        line = _element_line(text, path)
        where = ".".join(str(part) for part in path)
        return WorkspaceError([f"{self.file}:{line}: {where}: {message}"])

    @cached_property
    def _migration(self) -> Migration:
        from strangler.workspace.stages import build_migration

        return build_migration(self)

    def migration(self) -> Migration:
        """The stages in order, each with its route table."""
        return self._migration


def load_workspace(file: Path, is_bundled: bool = False) -> Workspace:
    """Read and validate a workspace file, or raise WorkspaceError naming its lines."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise WorkspaceError([f"{file}: cannot be read: {error.strerror}"]) from error
    try:
        document = load_toml(text, str(file))
        spec = WorkspaceFile.model_validate(document)
    except DocumentError as error:
        raise WorkspaceError(error.problems) from error
    except ValidationError as error:
        raise WorkspaceError(_located(validation_problems(error, text, str(file)), text)) from error
    workspace = Workspace(file.resolve().parent, file.resolve(), spec, is_bundled)
    workspace.make_importable()
    return workspace


def _element_line(text: str, path: tuple[str | int, ...]) -> int:
    """The line of `path`; for an item of an array of inline tables written one per line
    (`tables = [` then `{ ... },` lines), that item's own line."""
    lines = LineLocator(text)
    if not path or not isinstance(path[-1], int):
        return lines.line_of(path)
    line = lines.line_of(path)
    if lines.line_of(path[:-1]) != line:
        return line
    items = [
        number
        for number, content in enumerate(text.splitlines()[line:], start=line + 1)
        if content.lstrip().startswith("{")
    ]
    following = text.splitlines()[line - 1].rstrip().endswith("[")
    return items[path[-1]] if following and path[-1] < len(items) else line


_WHOLE = re.compile(r"^(?P<file>.*?):1: document: (?P<path>[a-z_]+(?:\.[A-Za-z0-9_-]+)*): ")


def _located(problems: list[str], text: str) -> list[str]:
    """A check of the whole file names its place (`stages.2: ...`): point at that line."""
    lines = LineLocator(text)
    located = []
    for problem in problems:
        found = _WHOLE.match(problem)
        if found is None:
            located.append(problem)
            continue
        path = tuple(int(part) if part.isdigit() else part for part in found["path"].split("."))
        rest = problem[found.end() :]
        located.append(f"{found['file']}:{lines.line_of(path)}: {found['path']}: {rest}")
    return located


def find_workspace(folder: Path | None = None) -> Workspace:
    """The workspace of `folder` (default: the current one): its `strangler.toml`, the file
    `STRANGLER_WORKSPACE` names, or else the bundled forum example."""
    named = os.environ.get(VARIABLE)
    if named:
        return load_workspace(Path(named))
    here = (folder or Path.cwd()) / FILENAME
    if here.exists():
        return load_workspace(here, is_bundled=here.resolve() == BUNDLED)
    if not BUNDLED.exists():
        raise WorkspaceError(
            [
                f"{here}: no workspace file here, and this installation carries no bundled"
                " example; write one with `strangler init --app IMPORT`"
            ]
        )
    return load_workspace(BUNDLED, is_bundled=True)
