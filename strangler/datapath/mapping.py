"""One table's mapping between the two sides, checked against both schemas.

From a `[[contexts.*.tables]]` entry of the workspace and both sides' SQLAlchemy tables it
works out which columns are copied and under which name on each side, the key (the primary key
unless the entry names one), and how the columns only one side has are filled: the entry's
`service_defaults` (written on every copy into the service) and `monolith_defaults` (on copies
back), else the column's own default (server default, or the model's default on insert), else
NULL where allowed. Everything a copy would trip over later is refused here, with the fix: a
column missing on one side, columns whose values are not of one kind on both sides, a key the
data path cannot order or that the target cannot upsert by, a NOT NULL column with no value.
This module must never run a query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Index, Table, UniqueConstraint

from strangler.datapath.keys import KeyColumns, UnsupportedKey, python_type
from strangler.plumbing.clock import utcnow
from strangler.workspace.model import TableMapSpec

Make = Callable[[], Any]


class MappingError(ValueError):
    """A table mapping that cannot work, and what to write instead."""


@dataclass(frozen=True)
class ColumnPlan:
    """The checked mapping of one table (monolith names unless said otherwise)."""

    columns: tuple[str, ...]
    service_columns: tuple[str, ...]
    key: tuple[str, ...]
    service_filled: tuple[tuple[str, Make], ...]  # workspace values: every copy forward
    service_initial: tuple[tuple[str, Make], ...]  # model defaults: inserts forward only
    monolith_filled: tuple[tuple[str, Make], ...]
    monolith_initial: tuple[tuple[str, Make], ...]


def plan_columns(
    spec: TableMapSpec, monolith: Table, service: Table, reversible: bool
) -> ColumnPlan:
    """The columns, key and fillers of `spec`, or MappingError."""
    pairs = _pairs(spec, monolith, service)
    for name, service_name in pairs:
        _same_kind(monolith.c[name], service.c[service_name])
    columns = tuple(name for name, _ in pairs)
    service_columns = tuple(service_name for _, service_name in pairs)
    key = tuple(spec.key or (column.name for column in monolith.primary_key.columns))
    if not key:
        raise MappingError(
            f"{monolith.name} has no primary key: name the columns that identify a row"
            f" (`key = [...]`)"
        )
    outside = [name for name in key if name not in columns]
    if outside:
        raise MappingError(f"the key columns {outside} of {monolith.name} are not copied")
    renamed = dict(pairs)
    try:
        KeyColumns(monolith, key)
        KeyColumns(service, [renamed[name] for name in key])
    except UnsupportedKey as error:
        raise MappingError(str(error)) from error
    _upserts_by(service, [renamed[name] for name in key], "service")
    if reversible:
        _upserts_by(monolith, key, "monolith")
    service_filled, service_initial = _fillers(
        service, set(service_columns), spec.service_defaults, "service"
    )
    monolith_filled: tuple[tuple[str, Make], ...] = ()
    monolith_initial: tuple[tuple[str, Make], ...] = ()
    if reversible:
        monolith_filled, monolith_initial = _fillers(
            monolith, set(columns), spec.monolith_defaults, "monolith"
        )
    elif spec.monolith_defaults:
        raise MappingError(f"{monolith.name}: a replica never copies back; drop monolith_defaults")
    return ColumnPlan(
        columns, service_columns, key, service_filled, service_initial, monolith_filled,
        monolith_initial,
    )  # fmt: skip


def _pairs(spec: TableMapSpec, monolith: Table, service: Table) -> list[tuple[str, str]]:
    if isinstance(spec.columns, dict):
        pairs = list(spec.columns.items())
    elif spec.columns is not None:
        pairs = [(name, name) for name in spec.columns]
    else:
        pairs = [(column.name, column.name) for column in monolith.columns]
        missing = [name for name, _ in pairs if name not in service.c]
        if missing:
            raise MappingError(
                f"the service's {service.name} lacks the monolith's columns {missing}: add them"
                f" to the service's table, map them to other names (`columns = {{ {missing[0]}"
                f' = "..." }}`), or list the columns to copy (`columns = [...]`)'
            )
    unknown = [name for name, _ in pairs if name not in monolith.c]
    if unknown:
        raise MappingError(f"the monolith's {monolith.name} has no columns {unknown}")
    absent = [service_name for _, service_name in pairs if service_name not in service.c]
    if absent:
        raise MappingError(f"the service's {service.name} has no columns {absent}")
    targets = [service_name for _, service_name in pairs]
    doubled = sorted({name for name in targets if targets.count(name) > 1})
    if doubled:
        raise MappingError(f"two columns of {monolith.name} map onto {doubled} of the service")
    return pairs


def _same_kind(monolith: Column[Any], service: Column[Any]) -> None:
    """Both columns hold values of one Python type (else a copy would change them)."""
    ours, theirs = python_type(monolith.type), python_type(service.type)
    if object in (ours, theirs) or issubclass(ours, theirs) or issubclass(theirs, ours):
        return
    raise MappingError(
        f"the monolith's {monolith.table.name}.{monolith.name} holds {ours.__name__}"
        f" ({monolith.type}), the service's {service.table.name}.{service.name} holds"
        f" {theirs.__name__} ({service.type}): declare one kind on both sides"
    )


def _upserts_by(table: Table, key: Sequence[str], side: str) -> None:
    """The copy writes `INSERT ... ON CONFLICT (key)`: the key must be unique on that side."""
    wanted = set(key)
    unique = [{column.name for column in table.primary_key.columns}]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            unique.append({column.name for column in constraint.columns})
    for index in table.indexes:
        if isinstance(index, Index) and index.unique:
            unique.append({column.name for column in index.columns})  # type: ignore[attr-defined]
    if wanted not in unique:
        raise MappingError(
            f"the {side}'s {table.name} has no primary key or unique constraint on"
            f" {sorted(wanted)}: rows are copied by key, so the key must be unique on both sides"
        )


def _fillers(
    table: Table, mapped: set[str], given: dict[str, Any], side: str
) -> tuple[tuple[tuple[str, Make], ...], tuple[tuple[str, Make], ...]]:
    """Values for the columns only this side has: (every copy, inserts only)."""
    wrong = sorted(name for name in given if name in mapped or name not in table.c)
    if wrong:
        raise MappingError(
            f"{side}_defaults of {table.name} name {wrong}: only columns the {side}'s table has"
            " and the other side's does not can take a default"
        )
    filled = tuple((name, _constant_or_now(value)) for name, value in given.items())
    initial = []
    for column in table.columns:
        if column.name in mapped or column.name in given:
            continue
        if column.server_default is not None or column.nullable or _is_generated(column):
            continue
        default = _model_default(column)
        if default is None:
            raise MappingError(
                f"the {side}'s {table.name}.{column.name} is NOT NULL with no default, and the"
                f" other side has no such column: give it a value (`{side}_defaults ="
                f' {{ {column.name} = ... }}`, "now" for the time of the copy), map a column'
                " onto it, or give it a default"
            )
        initial.append((column.name, default))
    return filled, tuple(initial)


def _is_generated(column: Column[Any]) -> bool:
    return (
        column.identity is not None
        or column.computed is not None
        or (column.primary_key and column.autoincrement is True)
    )


def _model_default(column: Column[Any]) -> Make | None:
    default = column.default
    if default is None or not hasattr(default, "arg"):
        return None
    argument = default.arg
    if callable(argument):
        return lambda: argument(None)
    return _constant(argument)


def _constant_or_now(value: Any) -> Make:
    return utcnow if value == "now" else _constant(value)


def _constant(value: Any) -> Make:
    return lambda: value
