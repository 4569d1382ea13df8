"""The polls table's row <-> item mapping in process: what the data path will rely on to move
rows between the SQL tables and the items, both ways."""

from __future__ import annotations

from datetime import datetime

import pytest

from extracted.polls.serverless.table import COLUMNS, item_of_row, key_of_row, row_of_item

CREATED = datetime(2026, 1, 2, 3, 4, 5, 678901)
ROWS = {
    "polls": {"id": 9, "question": "Tabs?", "author_id": 4, "created_at": CREATED},
    "poll_options": {"id": 31, "poll_id": 9, "position": 2, "text": "spaces"},
    "votes": {"id": 77, "poll_id": 9, "option_id": 31, "user_id": 4, "created_at": CREATED},
}


@pytest.mark.parametrize("table", sorted(ROWS))
def test_a_row_comes_back_from_its_item_unchanged(table: str) -> None:
    item = item_of_row(table, ROWS[table])
    assert item["table"] == {"S": table}
    assert row_of_item(item) == (table, ROWS[table])
    assert set(item) == {"PK", "SK", "table", *COLUMNS[table]}


def test_a_polls_items_share_its_partition_and_sort_options_by_position() -> None:
    keys = {table: key_of_row(table, row) for table, row in ROWS.items()}
    assert {key["PK"]["S"] for key in keys.values()} == {"POLL#9"}
    assert [keys[t]["SK"]["S"] for t in ("poll_options", "polls", "votes")] == [
        "OPTION#0002",
        "POLL",
        "VOTE#4",
    ]
    later = key_of_row("poll_options", {**ROWS["poll_options"], "position": 10})
    assert keys["poll_options"]["SK"]["S"] < later["SK"]["S"]


def test_a_table_of_another_context_has_no_items() -> None:
    with pytest.raises(ValueError, match="threads"):
        key_of_row("threads", {"id": 1})
