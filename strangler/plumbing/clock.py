"""Time as the contract writes it: UTC, ISO 8601, `Z` suffix, microseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (how every database here stores it)."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_iso(moment: datetime) -> str:
    """Render a naive-UTC or aware datetime as `YYYY-MM-DDTHH:MM:SS.ffffffZ`."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"
