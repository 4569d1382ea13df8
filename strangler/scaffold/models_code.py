"""The models of a scaffolded service: its tables from the monolith's, rendered as Python code.

`service_tables` derives each table the service will own from the monolith's, as the
workspace maps it (the service's table name, the columns copied under their service names,
the key), keeping only the references between the service's own tables: a reference to
another context's table stays a plain column. `render` writes them as SQLAlchemy 2.0 typed
mappings over a `Base` with named constraints, each column of the type the monolith declares
(dialect types made generic), so that the data path copies rows across unchanged. This
module must never write a file.
"""

from __future__ import annotations

import datetime
import decimal
import json
import keyword
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine

from strangler.datapath.keys import python_type
from strangler.workspace.model import TableMapSpec

ANNOTATIONS: dict[type, str] = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    bytes: "bytes",
    decimal.Decimal: "decimal.Decimal",
    datetime.datetime: "datetime.datetime",
    datetime.date: "datetime.date",
    datetime.time: "datetime.time",
    datetime.timedelta: "datetime.timedelta",
    uuid.UUID: "uuid.UUID",
}


def _pairs(spec: TableMapSpec, table: Table) -> list[tuple[str, str]]:
    if isinstance(spec.columns, dict):
        return list(spec.columns.items())
    names = spec.columns or [column.name for column in table.columns]
    return [(name, name) for name in names]


def service_tables(monolith: MetaData, specs: Sequence[TableMapSpec]) -> list[Table]:
    """The service's tables, as the workspace maps the monolith's onto them."""
    scratch = MetaData()
    renamed: dict[tuple[str, str], tuple[str, str]] = {}  # (table, column) both sides
    for spec in specs:
        for name, service_name in _pairs(spec, monolith.tables[spec.monolith]):
            renamed[(spec.monolith, name)] = (spec.service_name, service_name)
    made = []
    for spec in specs:
        source = monolith.tables[spec.monolith]
        key = set(spec.key or (column.name for column in source.primary_key.columns))
        columns = []
        for name, service_name in _pairs(spec, source):
            column = source.c[name]
            references = [
                ForeignKey(".".join(renamed[(fk.column.table.name, fk.column.name)]))
                for fk in column.foreign_keys
                if (fk.column.table.name, fk.column.name) in renamed
            ]
            columns.append(
                Column(
                    service_name,
                    _generic(column.type),
                    *references,
                    primary_key=name in key,
                    nullable=column.nullable and name not in key,
                    server_default=getattr(column.server_default, "arg", None),
                    unique=_is_unique_alone(source, name),
                    index=_is_indexed_alone(source, name),
                    autoincrement=column.autoincrement,
                )
            )
        made.append(Table(spec.service_name, scratch, *columns))
    return made


def _generic(column_type: TypeEngine[Any]) -> TypeEngine[Any]:
    if isinstance(column_type, Enum):
        return column_type
    try:
        generic = column_type.as_generic()
    except NotImplementedError:
        generic = column_type
    if isinstance(generic, String) and generic.collation:
        generic = String(length=generic.length)  # a collation is one backend's, not the data's
    return generic


def _is_unique_alone(table: Table, name: str) -> bool:
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and [c.name for c in constraint.columns] == [
            name
        ]:
            return True
    return any(
        index.unique and [c.name for c in index.columns] == [name] for index in table.indexes
    )


def _is_indexed_alone(table: Table, name: str) -> bool:
    return any(
        not index.unique and [c.name for c in index.columns] == [name] for index in table.indexes
    )


def class_name(table: str) -> str:
    """`book_tags` -> `BookTag`: CamelCase, each word made singular the simple way."""
    words = [word for word in re.split(r"[^A-Za-z0-9]+", table) if word]
    singular = [
        word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
        for word in words
    ]
    name = "".join(word[:1].upper() + word[1:] for word in singular) or "Row"
    return name if name[0].isalpha() else f"T{name}"


def _attribute(name: str) -> str:
    plain = re.sub(r"\W", "_", name)
    plain = plain if plain and not plain[0].isdigit() else f"c_{plain}"
    return f"{plain}_" if keyword.iskeyword(plain) else plain


def _type_code(column: Column[Any], names: set[str]) -> str:
    is_only_key = column.primary_key and len(column.table.primary_key.columns) == 1
    if is_only_key and isinstance(column.type, Integer) and column.autoincrement is not False:
        names.add("Id")
        return "Id"  # BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite
    code = repr(column.type)
    names.update(re.findall(r"\b([A-Z][A-Za-z]+)\(", code))
    return code


def _column_code(column: Column[Any], names: set[str]) -> str:
    kind = python_type(column.type)
    annotation = ANNOTATIONS.get(kind, "Any")
    if column.nullable:
        annotation += " | None"
    arguments = [] if _attribute(column.name) == column.name else [_string(column.name)]
    arguments.append(_type_code(column, names))
    for key in column.foreign_keys:
        names.add("ForeignKey")
        arguments.append(f"ForeignKey({_string(key.target_fullname)})")
    if column.primary_key:
        arguments.append("primary_key=True")
        if column.autoincrement is False:
            arguments.append("autoincrement=False")
    else:
        arguments.append(f"nullable={column.nullable}")
    if column.unique:
        arguments.append("unique=True")
    if column.index:
        arguments.append("index=True")
    server_default = getattr(column.server_default, "arg", None)
    if server_default is not None:
        names.add("text")
        arguments.append(
            f"server_default=text({_string(str(getattr(server_default, 'text', server_default)))})"
        )
    line = f"    {_attribute(column.name)}: Mapped[{annotation}] = mapped_column("
    if len(line) + len(", ".join(arguments)) + 1 <= 99:
        return f"{line}{', '.join(arguments)})"
    return f"{line}\n        {', '.join(arguments)}\n    )"


def _string(text: str) -> str:
    """A Python string literal in double quotes (JSON's escapes are Python's)."""
    return json.dumps(text, ensure_ascii=False)


def _table_arguments(table: Table, names: set[str]) -> list[str]:
    extra = []
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and len(constraint.columns) > 1:
            names.add("UniqueConstraint")
            names_text = ", ".join(_string(c.name) for c in constraint.columns)
            extra.append(f"UniqueConstraint({names_text})")
    for index in table.indexes:
        if isinstance(index, Index) and len(index.columns) > 1:
            names.add("Index")
            columns = ", ".join(_string(c.name) for c in index.columns)  # type: ignore[attr-defined]
            extra.append(
                f"Index({_string(str(index.name))}, {columns}, unique={bool(index.unique)})"
            )
    if not extra:
        return []
    return ["    __table_args__ = (", *(f"        {item}," for item in extra), "    )", ""]


def render(tables: Iterable[Table], header: str) -> str:
    """A models module: `header` (its docstring), the imports it needs, `Base`, one class per
    table."""
    names: set[str] = {"MetaData"}
    classes = []
    for table in tables:
        body = [
            f"class {class_name(table.name)}(Base):",
            f"    __tablename__ = {_string(table.name)}",
            "",
        ]
        body.extend(_table_arguments(table, names))
        body.extend(_column_code(column, names) for column in table.columns)
        classes.append("\n".join(body))
    plumbing = ["NAMING_CONVENTION", *(["Id"] if "Id" in names else [])]
    from_sqlalchemy = sorted(names - {"Id"})
    return "\n".join(
        [
            header.rstrip() + "\n",
            "from __future__ import annotations\n",
            "import datetime  # noqa: F401",
            "import decimal  # noqa: F401",
            "import uuid  # noqa: F401",
            "from typing import Any  # noqa: F401\n",
            f"from sqlalchemy import {', '.join(from_sqlalchemy)}",
            "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n",
            f"from strangler.plumbing.database import {', '.join(plumbing)}\n\n",
            "class Base(DeclarativeBase):",
            "    # Named constraints, so that later migrations (batch mode on SQLite) can address"
            " them.",
            "    metadata = MetaData(naming_convention=NAMING_CONVENTION)\n\n",
            "\n\n\n".join(classes),
            "",
        ]
    )
