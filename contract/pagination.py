"""Keyset pagination: `?limit=` (1..100, default 20) and an opaque `?cursor=`.

A cursor is the url-safe base64 of a short JSON value chosen by the list (usually the last id
seen). Clients must treat it as opaque; a cursor that does not decode is a 422 on `cursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from strangler.plumbing.errors import invalid

Row = TypeVar("Row")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 10_000  # how deep an offset-paged list (search) may be walked


@dataclass(frozen=True)
class PageRequest:
    """A parsed list request: how many items, and where the previous page ended."""

    limit: int
    after: Any | None


def encode_cursor(position: Any) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as error:
        raise invalid("cursor", "is not a cursor this list issued") from error


def parse_page(query: Mapping[str, str]) -> PageRequest:
    """Read `limit` and `cursor` from a query mapping, raising 422 for bad values."""
    raw_limit = query.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not raw_limit.isascii() or not raw_limit.isdigit() or len(raw_limit) > 4:
            raise invalid("limit", f"must be an integer from 1 to {MAX_LIMIT}")
        limit = int(raw_limit)
        if not 1 <= limit <= MAX_LIMIT:
            raise invalid("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    raw_cursor = query.get("cursor")
    after = None
    if raw_cursor is not None:
        if not raw_cursor or len(raw_cursor) > 200:
            raise invalid("cursor", "is not a cursor this list issued")
        after = decode_cursor(raw_cursor)
    return PageRequest(limit=limit, after=after)


def id_after(page: PageRequest) -> int | None:
    """The cursor of an id-keyed list: a positive integer, or None on the first page."""
    if page.after is None:
        return None
    if not isinstance(page.after, int) or isinstance(page.after, bool) or page.after < 1:
        raise invalid("cursor", "is not a cursor this list issued")
    return page.after


def offset_after(page: PageRequest) -> int:
    """The cursor of an offset-paged list: 0..MAX_OFFSET, 0 on the first page."""
    offset = page.after or 0
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise invalid("cursor", "is not a cursor this list issued")
    return offset


def page_body(items: list[dict[str, Any]], next_position: Any | None) -> dict[str, Any]:
    """The contract's list shape."""
    cursor = None if next_position is None else encode_cursor(next_position)
    return {"items": items, "next_cursor": cursor}


def keyset_page(
    rows: Sequence[Row],
    limit: int,
    present: Callable[[Row], dict[str, Any]],
    position: Callable[[Row], Any] = operator.attrgetter("id"),
) -> dict[str, Any]:
    """The page body for `rows` fetched with one extra row beyond `limit` (the look-ahead)."""
    shown = rows[:limit]
    next_position = position(shown[-1]) if len(rows) > limit else None
    return page_body([present(row) for row in shown], next_position)


def offset_page(
    rows: Sequence[Row], offset: int, limit: int, present: Callable[[Row], dict[str, Any]]
) -> dict[str, Any]:
    """The page body for `rows` fetched from `offset` with one extra row beyond `limit`."""
    shown = rows[:limit]
    next_offset = offset + len(shown) if len(rows) > limit else None
    return page_body([present(row) for row in shown], next_offset)


def page(request: Any) -> PageRequest:
    """A FastAPI dependency: the request's `limit` and `cursor` (422 for bad values), the first
    value of a repeated parameter winning, as in the monolith."""
    return parse_page(dict(reversed(request.query_params.multi_items())))
