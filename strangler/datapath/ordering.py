"""The order a feed copies its tables in, computed from the foreign keys of both sides.

A table is copied after every table of the feed it references (on either side), so a row's
parent is on the target before the row. A table that references itself (a reply's parent
reply), or tables whose references form a cycle, cannot be put in such an order: where the
columns that close the loop may be NULL on both sides, those references are *deferred*: a row
is first written without them, and they are set once their parent is there. A loop with no
column that may be NULL has no order at all, and is reported with the references that form it.
References to tables outside the feed are not the feed's to order. This module must never run
a query: it reads schemas only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Table


class NoCopyOrder(ValueError):
    """Foreign keys that no copy order can satisfy, named."""


@dataclass(frozen=True)
class Reference:
    """One foreign key between two tables of a feed, in monolith names."""

    child: str  # the monolith name of the referencing table
    columns: tuple[str, ...]  # its referencing columns (monolith names)
    parent: str
    is_nullable: bool  # every referencing column may be NULL on both sides

    def describe(self) -> str:
        return f"{self.child}.{', '.join(self.columns)} -> {self.parent}"


@dataclass(frozen=True)
class SideTables:
    """One table of a feed on both sides, with its column names mapped to the monolith's."""

    monolith: Table
    service: Table
    service_to_monolith: Mapping[str, str]  # every mapped column: service name -> monolith name


def references(tables: Sequence[SideTables]) -> list[Reference]:
    """Every foreign key between tables of the feed, from both sides, once each."""
    by_monolith = {side.monolith.name: side for side in tables}
    by_service = {side.service.name: side.monolith.name for side in tables}
    found: dict[tuple[str, tuple[str, ...], str], bool] = {}
    for side in tables:
        for constraint in side.monolith.foreign_key_constraints:
            parent = constraint.referred_table.name
            if parent in by_monolith:
                names = tuple(column.name for column in constraint.columns)
                _add(found, side, names, parent)
        for constraint in side.service.foreign_key_constraints:
            parent_service = constraint.referred_table.name
            if parent_service not in by_service:
                continue
            names = tuple(
                side.service_to_monolith.get(column.name, "") for column in constraint.columns
            )
            if all(names):  # a reference through columns the feed does not copy is not ours
                _add(found, side, names, by_service[parent_service])
    return [
        Reference(child, columns, parent, nullable)
        for (child, columns, parent), nullable in found.items()
    ]


def _add(
    found: dict[tuple[str, tuple[str, ...], str], bool],
    side: SideTables,
    columns: tuple[str, ...],
    parent: str,
) -> None:
    monolith_to_service = {m: s for s, m in side.service_to_monolith.items()}
    nullable = all(
        side.monolith.c[name].nullable
        and (
            monolith_to_service.get(name) is None
            or side.service.c[monolith_to_service[name]].nullable
        )
        for name in columns
        if name in side.monolith.c
    )
    key = (side.monolith.name, columns, parent)
    found[key] = found.get(key, True) and bool(nullable)


@dataclass(frozen=True)
class CopyOrder:
    """Tables parents first (monolith names), and the references written after their rows."""

    tables: tuple[str, ...]
    deferred: tuple[Reference, ...]

    def deferred_columns(self, table: str) -> tuple[str, ...]:
        return tuple(
            column
            for reference in self.deferred
            if reference.child == table
            for column in reference.columns
        )


def copy_order(names: Sequence[str], found: Sequence[Reference]) -> CopyOrder:
    """Parents before children; loops broken at references that may be NULL, else refused.

    Tables keep the order they were listed in wherever the references leave it free.
    """
    deferred = [reference for reference in found if reference.child == reference.parent]
    for loop in _loops(names, [r for r in found if r not in deferred]):
        breakable = [reference for reference in loop if reference.is_nullable]
        if not breakable:
            raise NoCopyOrder(
                "these foreign keys form a loop that no copy order satisfies: "
                + "; ".join(reference.describe() for reference in loop)
                + ". Let one of these columns be NULL (on both sides), or drop that foreign key"
                " on the service's side"
            )
        deferred.extend(breakable)
    refused = [r for r in deferred if not r.is_nullable]
    if refused:
        raise NoCopyOrder(
            "a table that references itself is copied with that reference set afterwards, so"
            " the column must allow NULL on both sides: "
            + "; ".join(reference.describe() for reference in refused)
        )
    return CopyOrder(_sorted(names, [r for r in found if r not in deferred]), tuple(deferred))


def _loops(names: Sequence[str], found: Sequence[Reference]) -> list[list[Reference]]:
    """The references inside each strongly connected group of tables (Tarjan's algorithm)."""
    children: dict[str, list[str]] = {name: [] for name in names}
    for reference in found:
        children[reference.parent].append(reference.child)
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(name: str) -> None:
        index[name] = lowest[name] = len(index)
        stack.append(name)
        for child in children[name]:
            if child not in index:
                visit(child)
                lowest[name] = min(lowest[name], lowest[child])
            elif child in stack:
                lowest[name] = min(lowest[name], index[child])
        if lowest[name] == index[name]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == name:
                    break
            if len(group) > 1:
                groups.append(group)

    for name in names:
        if name not in index:
            visit(name)
    return [[r for r in found if r.child in group and r.parent in group] for group in groups]


def _sorted(names: Sequence[str], found: Sequence[Reference]) -> tuple[str, ...]:
    """A topological order, stable with respect to `names`."""
    parents = {name: {r.parent for r in found if r.child == name} for name in names}
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= set(ordered)]
        ordered.append(ready[0])  # a loop was broken or refused above, so one is ready
    return tuple(ordered)
