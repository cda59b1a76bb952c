"""Dates and times as the tests write them: ISO text, in UTC."""
from __future__ import annotations

from datetime import datetime, timezone


def day(text: str) -> datetime:
    """'2013-01-15' or '2013-01-15T15:00:00' as an aware datetime in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
