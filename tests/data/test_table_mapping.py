"""Specification of a table's mapping and a feed's copy order, and of what is refused: logic
only, on SQLAlchemy schemas built in the test (no database).

Every refusal says what is wrong and what to write instead; through the workspace file it also
names the file's line.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    create_engine,
)

from strangler.datapath.contexts import describe
from strangler.datapath.keys import KeyColumns
from strangler.datapath.mapping import MappingError, plan_columns
from strangler.datapath.ordering import NoCopyOrder, SideTables, copy_order, references
from strangler.workspace import Workspace, WorkspaceError, load_workspace
from strangler.workspace.model import TableMapSpec


def _pair(*columns: Column[object], name: str = "things") -> tuple[Table, Table]:
    return (
        Table(name, MetaData(), *(column._copy() for column in columns)),
        Table(name, MetaData(), *(column._copy() for column in columns)),
    )


def test_columns_may_be_renamed_and_the_key_follows_the_rename() -> None:
    monolith = Table("posts", MetaData(), Column("id", Integer, primary_key=True),
                     Column("title", Text))  # fmt: skip
    service = Table("posts", MetaData(), Column("post_id", Integer, primary_key=True),
                    Column("heading", Text))  # fmt: skip
    spec = TableMapSpec(monolith="posts", columns={"id": "post_id", "title": "heading"})
    plan = plan_columns(spec, monolith, service, reversible=True)
    assert plan.columns == ("id", "title") and plan.service_columns == ("post_id", "heading")
    assert plan.key == ("id",)


def test_a_column_the_service_lacks_is_refused_with_the_ways_out() -> None:
    monolith, service = _pair(Column("id", Integer, primary_key=True), Column("a", Text))
    monolith.append_column(Column("legacy", Text))
    with pytest.raises(MappingError, match=r"lacks the monolith's columns \['legacy'\].*map them"):
        plan_columns(TableMapSpec(monolith="things"), monolith, service, reversible=True)


def test_columns_holding_different_kinds_of_value_are_refused() -> None:
    monolith = Table("t", MetaData(), Column("id", Integer, primary_key=True),
                     Column("ref", String(36)))  # fmt: skip
    service = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("ref", Uuid))
    with pytest.raises(MappingError, match=r"t\.ref holds str .* holds UUID"):
        plan_columns(TableMapSpec(monolith="t"), monolith, service, reversible=True)


def test_a_not_null_column_only_one_side_has_needs_a_value() -> None:
    monolith, service = _pair(Column("id", Integer, primary_key=True))
    service.append_column(Column("origin", String(10), nullable=False))
    with pytest.raises(
        MappingError, match=r"service's things\.origin is NOT NULL.*service_defaults"
    ):
        plan_columns(TableMapSpec(monolith="things"), monolith, service, reversible=True)
    given = TableMapSpec(monolith="things", service_defaults={"origin": "monolith"})
    plan = plan_columns(given, monolith, service, reversible=True)
    assert [(name, make()) for name, make in plan.service_filled] == [("origin", "monolith")]


def test_a_one_sided_column_with_a_model_default_is_filled_on_insert_only() -> None:
    monolith, service = _pair(Column("id", Integer, primary_key=True))
    service.append_column(Column("imported", Integer, nullable=False, default=lambda: 7))
    monolith.append_column(Column("flags", Integer, nullable=False, server_default="0"))
    plan = plan_columns(TableMapSpec(monolith="things", columns=["id"]), monolith, service, True)
    assert [(name, make()) for name, make in plan.service_initial] == [("imported", 7)]
    assert plan.service_filled == () and plan.monolith_initial == ()  # the server fills `flags`


def test_a_key_the_target_cannot_upsert_by_is_refused() -> None:
    monolith = Table("t", MetaData(), Column("a", Integer, primary_key=True), Column("b", Text))
    service = Table("t", MetaData(), Column("a", Integer), Column("b", Text, primary_key=True))
    with pytest.raises(MappingError, match=r"service's t has no primary key or unique constraint"):
        plan_columns(TableMapSpec(monolith="t"), monolith, service, reversible=True)


def test_a_table_without_a_key_must_name_one() -> None:
    monolith, service = _pair(Column("a", Integer), Column("b", Text))
    with pytest.raises(MappingError, match=r"no primary key: name the columns"):
        plan_columns(TableMapSpec(monolith="things"), monolith, service, reversible=True)


def test_keys_of_kinds_no_order_is_shared_for_are_refused() -> None:
    monolith, service = _pair(Column("blob", LargeBinary, primary_key=True))
    with pytest.raises(MappingError, match=r"orders keys of integers, text, UUIDs"):
        plan_columns(TableMapSpec(monolith="things"), monolith, service, reversible=True)
    monolith, service = _pair(Column("doc", JSON, primary_key=True))
    with pytest.raises(MappingError):
        plan_columns(TableMapSpec(monolith="things"), monolith, service, reversible=True)


def test_keys_round_trip_through_their_text_whatever_their_kinds() -> None:
    table = Table(
        "t",
        MetaData(),
        Column("a", Uuid, primary_key=True),
        Column("b", String, primary_key=True),
        Column("c", DateTime, primary_key=True),
    )
    keys = KeyColumns(table, ["a", "b", "c"])
    key = (uuid.uuid4(), 'é "quoted" \\ 👍', datetime(2026, 1, 2, 3, 4, 5, 600))
    assert keys.decode(keys.encode(key)) == key
    # What the capture triggers write: SQLite's json_array and PostgreSQL's json_build_array.
    assert keys.decode(f'["{key[0].hex}","x","2026-01-02 03:04:05.000600"]')[2] == key[2]
    assert keys.decode(f'["{key[0]}", "x", "2026-01-02T03:04:05.0006"]')[0] == key[0]


def _feed(*tables: Table) -> list[SideTables]:
    """The same tables on both sides, columns under the same names."""
    return [SideTables(table, table, {c.name: c.name for c in table.columns}) for table in tables]


def test_tables_are_copied_parents_first_whatever_order_they_are_listed_in() -> None:
    schema = MetaData()
    Table("a", schema, Column("id", Integer, primary_key=True))
    Table("b", schema, Column("id", Integer, primary_key=True), Column("a_id", ForeignKey("a.id")))
    Table("c", schema, Column("b_id", ForeignKey("b.id"), primary_key=True),
          Column("a_id", ForeignKey("a.id"), primary_key=True))  # fmt: skip
    found = references(_feed(*schema.tables.values()))
    order = copy_order(["c", "b", "a"], found)
    assert order.tables == ("a", "b", "c") and order.deferred == ()


def test_a_reference_only_the_service_declares_orders_the_copy_too() -> None:
    monolith, service = MetaData(), MetaData()
    for schema in (monolith, service):
        Table("parent", schema, Column("id", Integer, primary_key=True))
    Table("child", monolith, Column("id", Integer, primary_key=True), Column("parent_id", Integer))
    Table("child", service, Column("id", Integer, primary_key=True),
          Column("pid", ForeignKey("parent.id")))  # fmt: skip
    sides = [
        SideTables(monolith.tables["child"], service.tables["child"],
                   {"id": "id", "pid": "parent_id"}),
        SideTables(monolith.tables["parent"], service.tables["parent"], {"id": "id"}),
    ]  # fmt: skip
    assert copy_order(["child", "parent"], references(sides)).tables == ("parent", "child")


def test_a_table_that_references_itself_defers_that_reference() -> None:
    schema = MetaData()
    Table("nodes", schema, Column("id", Integer, primary_key=True),
          Column("parent_id", ForeignKey("nodes.id"), nullable=True))  # fmt: skip
    order = copy_order(["nodes"], references(_feed(schema.tables["nodes"])))
    assert order.deferred_columns("nodes") == ("parent_id",)


def test_a_self_reference_that_may_not_be_null_is_refused() -> None:
    schema = MetaData()
    Table("nodes", schema, Column("id", Integer, primary_key=True),
          Column("root_id", ForeignKey("nodes.id"), nullable=False))  # fmt: skip
    with pytest.raises(NoCopyOrder, match=r"must allow NULL on both sides: nodes\.root_id"):
        copy_order(["nodes"], references(_feed(schema.tables["nodes"])))


def test_a_loop_of_tables_is_broken_where_a_reference_may_be_null() -> None:
    schema = MetaData()
    Table("teams", schema, Column("id", Integer, primary_key=True),
          Column("captain_id", ForeignKey("players.id"), nullable=True))  # fmt: skip
    Table("players", schema, Column("id", Integer, primary_key=True),
          Column("team_id", ForeignKey("teams.id"), nullable=False))  # fmt: skip
    order = copy_order(["players", "teams"], references(_feed(*schema.tables.values())))
    assert order.tables == ("teams", "players")
    assert order.deferred_columns("teams") == ("captain_id",)


def test_a_loop_no_reference_of_which_may_be_null_is_reported_with_its_references() -> None:
    schema = MetaData()
    Table("a", schema, Column("id", Integer, primary_key=True),
          Column("b_id", ForeignKey("b.id"), nullable=False))  # fmt: skip
    Table("b", schema, Column("id", Integer, primary_key=True),
          Column("a_id", ForeignKey("a.id"), nullable=False))  # fmt: skip
    with pytest.raises(NoCopyOrder) as refused:
        copy_order(["a", "b"], references(_feed(*schema.tables.values())))
    assert "a.b_id -> b" in str(refused.value) and "b.a_id -> a" in str(refused.value)
    assert "Let one of these columns be NULL" in str(refused.value)


def test_a_mapping_refused_through_the_workspace_names_its_line(
    tmp_path: Path, shapes: Workspace
) -> None:
    text = shapes.file.read_text().replace('title = "heading"', 'title = "headline"')
    path = tmp_path / "strangler.toml"
    path.write_text(text)
    workspace = load_workspace(path)  # its models are the shapes workspace's, importable
    engine = create_engine("sqlite://")
    with pytest.raises(WorkspaceError) as refused:
        describe(workspace, "library", engine, engine)
    [problem] = refused.value.problems
    line = text[: text.index("headline")].count("\n") + 1
    assert problem.startswith(f"{path}:{line}: contexts.library.tables.2:")
    assert "the service's documents has no columns ['headline']" in problem
