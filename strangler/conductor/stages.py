"""The migration's stages as data: `stages/stages.toml` and one route table per stage.

`load_migration()` validates the stage list (numbers in order, each context extracted once and
after what it needs, the data each stage says the services own) and every stage's route table
(with the proxy's own parser), then checks that they agree: stage N's table serves exactly the
contexts extracted by stage N from their services, with `data_owner = "service"`, everything
else from the monolith, and once the monolith retires not even unmatched paths go to it. Every
problem names the file and line. This module must never start a process or touch a database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from strangler.plumbing.toml_document import (
    DocumentError,
    LineLocator,
    load_toml,
    validation_problems,
)
from strangler_proxy.table import MONOLITH, DataOwner, Mode, RouteTable, TableError, parse_table

_STAGE_NUMBER = re.compile(r"stage #(\d+)")
STAGES = Path(__file__).resolve().parents[2] / "stages"
CATALOGUE = "stages.toml"


class StageFileError(ValueError):
    """The stage files cannot be used; one `file:line: where: message` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShadowSkip(_Strict):
    """A read route whose shadow comparison is shown but not judged, and why."""

    route: Annotated[str, Field(min_length=1)]
    reason: Annotated[str, Field(min_length=10, max_length=300)]


class ContextSpec(_Strict):
    """What extracting a context brings along."""

    moves_data: bool
    needs: list[str] = []
    shadow_skips: list[ShadowSkip] = []

    @property
    def unjudged_routes(self) -> set[str]:
        return {skip.route for skip in self.shadow_skips}


class StageSpec(_Strict):
    """One entry of `[[stages]]`."""

    number: Annotated[int, Field(ge=0)]
    title: Annotated[str, Field(min_length=1, max_length=80)]
    summary: Annotated[str, Field(min_length=1, max_length=300)]
    extracts: str | None = None
    services_own: list[str] = []
    monolith_serves: bool = True


class Catalogue(_Strict):
    """The whole `stages.toml`, checked as a sequence."""

    contexts: dict[str, ContextSpec]
    stages: Annotated[list[StageSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _a_coherent_sequence(self) -> Self:
        extracted: list[str] = []
        retired = False
        for index, stage in enumerate(self.stages):
            where = f"stage #{index + 1}"
            if stage.number != index:
                raise ValueError(f"{where}: stages are numbered 0, 1, 2... in order")
            if retired:
                raise ValueError(f"{where}: nothing comes after the monolith retires")
            if stage.extracts is not None:
                self._check_extraction(where, stage.extracts, extracted)
                extracted.append(stage.extracts)
            owned = [context for context in extracted if self.contexts[context].moves_data]
            if sorted(stage.services_own) != sorted(owned):
                raise ValueError(
                    f"{where}: services_own must be the data-moving contexts extracted so far,"
                    f" {owned}"
                )
            if not stage.monolith_serves:
                unextracted = sorted(set(self.contexts) - set(extracted))
                if unextracted:
                    raise ValueError(f"{where}: the monolith still serves {unextracted}")
                retired = True
        return self

    def _check_extraction(self, where: str, context: str, extracted: list[str]) -> None:
        if context not in self.contexts:
            raise ValueError(f"{where}: unknown context {context!r}; have {sorted(self.contexts)}")
        if context in extracted:
            raise ValueError(f"{where}: {context} is extracted twice")
        missing = [need for need in self.contexts[context].needs if need not in extracted]
        if missing:
            raise ValueError(f"{where}: {context} needs {missing} extracted first")


@dataclass(frozen=True)
class Stage:
    """One stage, resolved: what runs where, and its validated route table."""

    number: int
    title: str
    summary: str
    extracts: str | None
    services: tuple[str, ...]
    services_own: tuple[str, ...]
    monolith_serves: bool
    table_path: Path
    table: RouteTable

    @property
    def label(self) -> str:
        return f"stage {self.number}: {self.title}"


@dataclass(frozen=True)
class Migration:
    """The stages in order, and what each context needs."""

    contexts: dict[str, ContextSpec]
    stages: tuple[Stage, ...]

    def stage(self, number: int) -> Stage:
        if not 0 <= number < len(self.stages):
            raise StageFileError([f"there is no stage {number}; stages are 0..{self.last}"])
        return self.stages[number]

    @property
    def last(self) -> int:
        return len(self.stages) - 1

    def stage_extracting(self, context: str) -> Stage:
        """The stage at which `context` is extracted."""
        for stage in self.stages:
            if stage.extracts == context:
                return stage
        known = [stage.extracts for stage in self.stages if stage.extracts]
        raise StageFileError([f"no stage extracts {context!r}; contexts: {', '.join(known)}"])

    @cached_property
    def retiring_stage(self) -> Stage | None:
        return next((stage for stage in self.stages if not stage.monolith_serves), None)


def load_migration(folder: Path = STAGES) -> Migration:
    """Read and cross-check `stages.toml` and every `stage<N>.toml`, or raise StageFileError."""
    catalogue = _load_catalogue(folder / CATALOGUE)
    stages: list[Stage] = []
    services: list[str] = []
    problems: list[str] = []
    for spec in catalogue.stages:
        if spec.extracts:
            services.append(spec.extracts)
        path = folder / f"stage{spec.number}.toml"
        text = _read(path)
        try:
            table = parse_table(text, str(path), known_upstreams=catalogue.contexts)
        except TableError as error:
            problems.extend(error.problems)
            continue
        stage = Stage(
            spec.number,
            spec.title,
            spec.summary,
            spec.extracts,
            tuple(services),
            tuple(spec.services_own),
            spec.monolith_serves,
            path,
            table,
        )
        problems.extend(table_disagreements(stage, LineLocator(text)))
        stages.append(stage)
    if stages:
        problems.extend(_unknown_skips(catalogue, stages[0].table, folder / CATALOGUE))
    if problems:
        raise StageFileError(problems)
    return Migration(catalogue.contexts, tuple(stages))


def _unknown_skips(catalogue: Catalogue, table: RouteTable, path: Path) -> list[str]:
    """Shadow skips must name read routes of their own context."""
    lines = LineLocator(_read(path))
    problems = []
    for name, spec in catalogue.contexts.items():
        for index, skip in enumerate(spec.shadow_skips):
            route = table.route(skip.route)
            if route is None or route.context != name:
                line = lines.line_of(("contexts", name, "shadow_skips", index, "route"))
                problems.append(
                    f"{path}:{line}: contexts.{name}.shadow_skips.{index}.route:"
                    f" {skip.route!r} is not a route of {name}"
                )
    return problems


def _load_catalogue(path: Path) -> Catalogue:
    text = _read(path)
    try:
        return Catalogue.model_validate(load_toml(text, str(path)))
    except DocumentError as error:
        raise StageFileError(error.problems) from error
    except ValidationError as error:
        problems = validation_problems(error, text, str(path))
        # A sequence error names its stage ("stage #3: ..."): point at that stage's lines.
        lines = LineLocator(text)
        for index, problem in enumerate(problems):
            numbered = _STAGE_NUMBER.search(problem)
            if numbered and problem.startswith(f"{path}:1: document:"):
                line = lines.line_of(("stages", int(numbered.group(1)) - 1))
                problems[index] = problem.replace(f"{path}:1: document:", f"{path}:{line}:", 1)
        raise StageFileError(problems) from error


def table_disagreements(stage: Stage, lines: LineLocator) -> list[str]:
    """Where a stage's route table does not serve what the stage says, each with its line."""
    problems = []
    source = str(stage.table_path)
    for index, route in enumerate(stage.table.routes):
        is_extracted = route.context in stage.services
        mode = Mode.SERVICE if is_extracted else Mode.MONOLITH
        owner = DataOwner.SERVICE if is_extracted else DataOwner.MONOLITH
        if route.mode is not mode or route.owner is not owner or not route.active:
            line = lines.line_of(("routes", index, "mode"))
            problems.append(
                f"{source}:{line}: routes.{index}: {route.name} must be active in mode"
                f" {mode.value} with data_owner {owner.value} at {stage.label}"
            )
    should_retire = not stage.monolith_serves
    if should_retire and stage.table.unmatched == MONOLITH:
        problems.append(
            f"{source}:1: unmatched: the monolith receives no traffic at {stage.label};"
            " name a service"
        )
    if not should_retire and stage.table.unmatched != MONOLITH:
        problems.append(
            f"{source}:{lines.line_of(('unmatched',))}: unmatched: the monolith still serves"
            f" at {stage.label}"
        )
    return problems


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise StageFileError([f"{path}: cannot be read: {error.strerror}"]) from error
