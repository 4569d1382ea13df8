"""Specification: verify names the ranges and keys where the items differ from the rows, and
repair makes them equal.

After a backfill, one vote's item is changed, one option's item is deleted and an item of a
poll the monolith never had is added: verify names each one's table, range and key (changed,
missing, extra), with the counts of both sides, and repair re-puts or deletes exactly those
keys, through the forward feed's conditioned transaction (the position moves one version on).
"""

from __future__ import annotations

from sqlalchemy import func, select

from strangler.serverless.data import backfill, forward, verify
from strangler.serverless.data.link import ItemsLink


def test_verify_names_a_changed_a_missing_and_an_extra_item_and_repair_makes_them_equal(
    items_link: ItemsLink,
) -> None:
    link = items_link
    forward.start(link)
    backfill.backfill(link)
    items = {
        forward.row_key_of_item(link, item)[0]: item  # type: ignore[index]
        for item in forward.scan_items(link)
        if forward.row_key_of_item(link, item) is not None
    }
    with link.monolith.connect() as connection:
        vote = int(connection.scalar(select(func.min(link.tables["votes"].c.id))) or 0)
        option = int(connection.scalar(select(func.max(link.tables["poll_options"].c.id))) or 0)
    changed = dict(items[("votes", (vote,))])
    changed["created_at"] = {"S": "2001-01-01T00:00:00.000000Z"}
    link.dynamodb.put_item(TableName=link.table_name, Item=changed)
    link.dynamodb.delete_item(
        TableName=link.table_name, Key=link.key_of(items[("poll_options", (option,))])
    )
    extra = link.mapping.item_of_row(
        "polls", {"id": 9999, "question": "Never?", "author_id": 1,
                  "created_at": link.mapping.row_of_item(changed)[1]["created_at"]},  # type: ignore[index]
    )  # fmt: skip
    link.dynamodb.put_item(TableName=link.table_name, Item=extra)

    report = verify.verify(link, range_rows=10)
    assert not report.is_equal
    found = {(d.table, d.missing, d.extra, d.changed) for d in report.differences}
    assert found == {
        ("votes", (), (), ((vote,),)),
        ("poll_options", ((option,),), (), ()),
        ("polls", (), ((9999,),), ()),
    }
    by_table = {difference.table: difference for difference in report.differences}
    assert by_table["votes"].after is None and by_table["votes"].upto is not None  # the first
    assert by_table["polls"].upto is None  # past every row: the last, open-ended range
    assert by_table["poll_options"].upto is None
    counts = report.counts
    assert counts["polls"].items == counts["polls"].rows + 1
    assert counts["poll_options"].items == counts["poll_options"].rows - 1
    assert counts["votes"].items == counts["votes"].rows

    before = forward.read_position(link)
    repaired = verify.repair(link, report)
    assert (repaired.put, repaired.deleted, repaired.refused) == (2, 1, 0)
    after = forward.read_position(link)
    assert before is not None and after is not None
    assert after.version == before.version + 1 and after.position == before.position
    again = verify.verify(link, range_rows=10)
    assert again.is_equal, [difference.describe() for difference in again.differences]


def test_an_item_under_a_key_other_than_its_rows_is_changed_and_repair_removes_it(
    items_link: ItemsLink,
) -> None:
    link = items_link
    forward.start(link)
    backfill.backfill(link)
    vote = next(item for item in forward.scan_items(link, ["votes"]))
    moved = {**vote, "SK": {"S": "VOTE#999999"}}  # the same row, held by a second item
    link.dynamodb.put_item(TableName=link.table_name, Item=moved)
    report = verify.verify(link)
    key = forward.row_key_of_item(link, vote)
    assert key is not None
    assert [(d.table, d.changed) for d in report.differences] == [("votes", (key[0][1],))]
    verify.repair(link, report)
    assert verify.verify(link).is_equal
    found = link.dynamodb.get_item(TableName=link.table_name, Key=link.key_of(moved))
    assert "Item" not in found
